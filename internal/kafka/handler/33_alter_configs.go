package handler

import (
	"context"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// AlterConfigs (the legacy form): replaces a topic's whole set of config
// overrides, or a broker resource's dynamic configs, with the request's.
//
// Behavior:
//   - TOPIC: the listed configs become the topic's overrides; every other
//     override is removed (back to the broker's value or the default). A
//     null value leaves that config unset. Each name and value is validated
//     (INVALID_CONFIG with a message) before anything changes; a config
//     named twice is INVALID_REQUEST. An unknown topic is
//     UNKNOWN_TOPIC_OR_PARTITION. The change is persisted and applied to
//     the topic's open logs before the answer.
//   - BROKER (this broker's id, or "" for the cluster-wide default): the
//     listed configs replace the resource's dynamic broker configs (see
//     broker_configs.go: which are dynamic, how the others are refused).
//   - Other resource types: INVALID_REQUEST. A resource named twice in one
//     request is INVALID_REQUEST for each of its entries, as Kafka does.
//   - ValidateOnly runs every check and changes nothing.
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible.
func init() { register(33, 0, 2, handleAlterConfigs) }

// configAlterMu serializes this process's config changes: an incremental
// alter reads a topic's overrides, edits them and writes them back, and two
// of those on different connections must not lose one another's edit.
var configAlterMu sync.Mutex

// configResource identifies a resource of an alter request.
type configResource struct {
	t    kmsg.ConfigResourceType
	name string
}

func handleAlterConfigs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.AlterConfigsRequest)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	times := map[configResource]int{}
	for _, rr := range r.Resources {
		times[configResource{rr.ResourceType, rr.ResourceName}]++
	}
	for i := range r.Resources {
		rr := &r.Resources[i]
		st := kmsg.NewAlterConfigsResponseResource()
		st.ResourceType, st.ResourceName = rr.ResourceType, rr.ResourceName
		err := h.alterResource(times, rr.ResourceType, rr.ResourceName, func() error {
			return h.replaceTopicConfigs(rr, r.ValidateOnly)
		}, func() error {
			return h.replaceBrokerConfigs(rr, r.ValidateOnly)
		})
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, st)
	}
	return now(resp)
}

// alterResource decides one resource of an AlterConfigs or
// IncrementalAlterConfigs request: a resource named twice is refused, a
// topic goes to alterTopic, a broker to alterBroker, other types are not
// served.
func (h *Handler) alterResource(times map[configResource]int, t kmsg.ConfigResourceType, name string, alterTopic, alterBroker func() error) error {
	switch {
	case times[configResource{t, name}] > 1:
		return duplicateResource(t, name)
	case t == kmsg.ConfigResourceTypeTopic:
		return alterTopic()
	case t == kmsg.ConfigResourceTypeBroker:
		return alterBroker()
	default:
		return unsupportedResource(t)
	}
}

func (h *Handler) replaceTopicConfigs(rr *kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	if err := metadata.ValidTopicName(rr.ResourceName); err != nil {
		return err
	}
	cfg, err := alterConfigsMap(rr.Configs)
	if err != nil {
		return err
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	return h.c.SetTopicConfigs(rr.ResourceName, cfg, validateOnly)
}

// alterConfigsMap is AlterConfigs' list of a resource's configs as the
// overrides that replace the old ones (a null value leaves the config
// unset); a config named twice is INVALID_REQUEST.
func alterConfigsMap(configs []kmsg.AlterConfigsRequestResourceConfig) (map[string]string, error) {
	seen := map[string]bool{}
	cfg := map[string]string{}
	for _, c := range configs {
		if seen[c.Name] {
			return nil, duplicateConfig(c.Name)
		}
		seen[c.Name] = true
		if c.Value != nil {
			cfg[c.Name] = *c.Value
		}
	}
	return cfg, nil
}

func duplicateResource(t kmsg.ConfigResourceType, name string) error {
	return adminFail(kerr.InvalidRequest, "resource %s %q is named more than once in the request", t, name)
}

func duplicateConfig(name string) error {
	return adminFail(kerr.InvalidRequest, "config %q is given more than once for one resource", name)
}
