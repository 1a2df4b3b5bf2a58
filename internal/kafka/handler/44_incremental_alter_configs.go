package handler

import (
	"context"
	"fmt"
	"maps"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// IncrementalAlterConfigs: edits a topic's config overrides, or a broker
// resource's dynamic configs, one config at a time.
//
// Behavior:
//   - TOPIC: the operations apply in order to the topic's overrides: SET (0)
//     sets one (a null value is INVALID_REQUEST); DELETE (1) removes one,
//     back to the broker's value or the default (deleting a config that is
//     not set, or that Strom does not know, is a no-op, as in Kafka);
//     APPEND (2) and SUBTRACT (3) add or remove comma-separated items of a
//     list config (cleanup.policy), starting from its current value (the
//     override, else the broker's, else the default), with no duplicates.
//     APPEND or SUBTRACT on a config that is not a list is INVALID_REQUEST;
//     on an unknown config INVALID_CONFIG. The resulting set is validated
//     whole (INVALID_CONFIG with a message) before anything changes. A
//     config named twice in one resource is INVALID_REQUEST. An unknown
//     topic is UNKNOWN_TOPIC_OR_PARTITION.
//   - BROKER (this broker's id, or "" for the cluster-wide default): the
//     same operations on the resource's dynamic broker configs (see
//     broker_configs.go). Other types: INVALID_REQUEST. A resource named
//     twice is INVALID_REQUEST for each of its entries.
//   - ValidateOnly runs every check and changes nothing.
//
// Version notes: v1+ flexible.
func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.IncrementalAlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	times := map[configResource]int{}
	for _, rr := range r.Resources {
		times[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	for i := range r.Resources {
		rr := &r.Resources[i]
		st := kmsg.NewIncrementalAlterConfigsResponseResource()
		st.ResourceType, st.ResourceName = rr.ResourceType, rr.ResourceName
		err := h.alterResource(times, rr.ResourceType, rr.ResourceName, func() error {
			return h.editTopicConfigs(rr, r.ValidateOnly)
		}, func() error {
			return h.editBrokerConfigs(rr, r.ValidateOnly)
		})
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, st)
	}
	return now(resp)
}

func (h *Handler) editTopicConfigs(rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	name := rr.ResourceName
	if err := metadata.ValidTopicName(name); err != nil {
		return err
	}
	if _, err := incrementalNames(rr.Configs); err != nil {
		return err
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	t, ok := h.c.Topic(name)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", metadata.ErrUnknownTopic, name)
	}
	cfg := maps.Clone(t.Configs)
	if cfg == nil {
		cfg = map[string]string{}
	}
	resolved := metadata.Resolve(t.Configs, h.c.Broker())
	current := func(name string) (string, bool, error) {
		def, ok := metadata.LookupTopicConfig(name)
		if !ok {
			return "", false, fmt.Errorf("%w: unknown topic config %q", metadata.ErrInvalidConfig, name)
		}
		for _, v := range resolved {
			if v.Name == name {
				return v.Value, def.Type == metadata.TypeList, nil
			}
		}
		return "", def.Type == metadata.TypeList, nil
	}
	if err := applyIncremental(cfg, rr.Configs, current); err != nil {
		return err
	}
	return h.c.SetTopicConfigs(name, cfg, validateOnly)
}

// incrementalNames checks that no config is named twice, and returns the
// names that are set (not deleted).
func incrementalNames(configs []kmsg.IncrementalAlterConfigsRequestResourceConfig) ([]string, error) {
	seen := map[string]bool{}
	var changed []string
	for _, c := range configs {
		if seen[c.Name] {
			return nil, duplicateConfig(c.Name)
		}
		seen[c.Name] = true
		if c.Op != kmsg.IncrementalAlterConfigOpDelete {
			changed = append(changed, c.Name)
		}
	}
	return changed, nil
}

// applyIncremental applies IncrementalAlterConfigs' operations to cfg, a
// resource's overrides: SET, DELETE, and APPEND/SUBTRACT on list configs,
// which start from the override or, without one, the current value that
// current gives (with whether the config is a list).
func applyIncremental(cfg map[string]string, configs []kmsg.IncrementalAlterConfigsRequestResourceConfig,
	current func(name string) (value string, isList bool, err error)) error {
	for _, c := range configs {
		switch c.Op {
		case kmsg.IncrementalAlterConfigOpSet:
			if c.Value == nil {
				return adminFail(kerr.InvalidRequest, "SET of config %q has a null value", c.Name)
			}
			cfg[c.Name] = *c.Value
		case kmsg.IncrementalAlterConfigOpDelete:
			delete(cfg, c.Name)
		case kmsg.IncrementalAlterConfigOpAppend, kmsg.IncrementalAlterConfigOpSubtract:
			cur, isList, err := current(c.Name)
			if err != nil {
				return err
			}
			if !isList {
				return adminFail(kerr.InvalidRequest, "config value %s is not allowed for config key %s: it is not a list", c.Op, c.Name)
			}
			if c.Value == nil {
				return adminFail(kerr.InvalidRequest, "%s of config %q has a null value", c.Op, c.Name)
			}
			if v, set := cfg[c.Name]; set {
				cur = v
			}
			if c.Op == kmsg.IncrementalAlterConfigOpAppend {
				cfg[c.Name] = appendListItems(cur, *c.Value)
			} else {
				cfg[c.Name] = subtractListItems(cur, *c.Value)
			}
		default:
			return adminFail(kerr.InvalidRequest, "unknown operation %d on config %q", int8(c.Op), c.Name)
		}
	}
	return nil
}

// listItems splits a list config's value: comma-separated, spaces trimmed,
// empty items dropped.
func listItems(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// appendListItems adds the items of add that list lacks, in order.
func appendListItems(list, add string) string {
	items := listItems(list)
	for _, a := range listItems(add) {
		found := false
		for _, it := range items {
			found = found || it == a
		}
		if !found {
			items = append(items, a)
		}
	}
	return strings.Join(items, ",")
}

// subtractListItems removes every item of sub from list.
func subtractListItems(list, sub string) string {
	drop := map[string]bool{}
	for _, s := range listItems(sub) {
		drop[s] = true
	}
	var keep []string
	for _, it := range listItems(list) {
		if !drop[it] {
			keep = append(keep, it)
		}
	}
	return strings.Join(keep, ",")
}
