package handler

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/metadata"
)

// Dynamic broker configs (KIP-226), shared by AlterConfigs and
// IncrementalAlterConfigs on the BROKER resource.
//
// Behavior:
//   - The resource is this broker's id (DYNAMIC_BROKER_CONFIG) or "" (the
//     cluster-wide default, DYNAMIC_DEFAULT_BROKER_CONFIG); another id is
//     INVALID_REQUEST.
//   - Dynamic are the broker synonyms of the topic configs
//     (log.retention.ms, log.retention.bytes, log.segment.bytes,
//     log.roll.ms, message.max.bytes, log.flush.interval.*, ...), as in
//     Kafka (DynamicLogConfig). Strom applies a change to every open log
//     before answering, persists it in the metadata log (a restart keeps
//     it), and topics without their own override follow it.
//   - A config Strom reads only at start (num.partitions,
//     log.retention.hours, auto.create.topics.enable, ...) is refused for
//     the whole resource with INVALID_REQUEST and Kafka's message, "Cannot
//     update these configs dynamically: [name, ...]". A config Strom does
//     not implement at all (log.cleaner.threads, num.io.threads, SASL and
//     SSL settings, ...), which Kafka may accept, is refused with
//     INVALID_CONFIG naming them: Strom does not pretend to apply them.
//   - A bad value is INVALID_REQUEST, as Kafka's broker answers it.

// brokerResourceKey checks a broker resource name and returns the key its
// dynamic configs are stored under: "" or this node's id.
func (h *Handler) brokerResourceKey(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	if err := h.checkBrokerName(name); err != nil {
		return "", err
	}
	return strconv.FormatInt(int64(h.c.NodeID()), 10), nil
}

// checkDynamicNames refuses a resource whose configs are not all dynamic.
func checkDynamicNames(names []string) error {
	var static, unknown []string
	for _, n := range names {
		switch {
		case metadata.IsDynamicBrokerConfig(n):
		case metadata.IsBrokerConfig(n):
			static = append(static, n)
		default:
			unknown = append(unknown, n)
		}
	}
	if len(static) > 0 {
		slices.Sort(static)
		return adminFail(kerr.InvalidRequest, "Cannot update these configs dynamically: [%s]", strings.Join(static, ", "))
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return adminFail(kerr.InvalidConfig, "Strom does not implement these broker configs and cannot update them: [%s] (its dynamic broker configs are the topic configs' broker synonyms, such as log.retention.ms and message.max.bytes)", strings.Join(unknown, ", "))
	}
	return nil
}

// setBrokerConfigs stores cfg as the resource's dynamic configs; a bad
// value is INVALID_REQUEST.
func (h *Handler) setBrokerConfigs(key string, cfg map[string]string, validateOnly bool) error {
	err := h.c.SetBrokerConfigs(key, cfg, validateOnly)
	if errors.Is(err, metadata.ErrInvalidConfig) {
		return adminFail(kerr.InvalidRequest, "%v", err)
	}
	return err
}

// replaceBrokerConfigs is AlterConfigs on a broker resource: the listed
// configs (null values left unset) replace the resource's dynamic configs.
func (h *Handler) replaceBrokerConfigs(rr *kmsg.AlterConfigsRequestResource, validateOnly bool) error {
	key, err := h.brokerResourceKey(rr.ResourceName)
	if err != nil {
		return err
	}
	cfg, err := alterConfigsMap(rr.Configs)
	if err != nil {
		return err
	}
	if err := checkDynamicNames(slices.Collect(maps.Keys(cfg))); err != nil {
		return err
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	return h.setBrokerConfigs(key, cfg, validateOnly)
}

// editBrokerConfigs is IncrementalAlterConfigs on a broker resource: SET,
// DELETE, APPEND and SUBTRACT on its dynamic configs, as for a topic.
func (h *Handler) editBrokerConfigs(rr *kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	key, err := h.brokerResourceKey(rr.ResourceName)
	if err != nil {
		return err
	}
	changed, err := incrementalNames(rr.Configs)
	if err != nil {
		return err
	}
	if err := checkDynamicNames(changed); err != nil {
		return err
	}
	configAlterMu.Lock()
	defer configAlterMu.Unlock()
	cfg := h.c.BrokerConfigs(key)
	if cfg == nil {
		cfg = map[string]string{}
	}
	current := func(name string) (string, bool, error) {
		v, ok := h.brokerValue(name)
		return v, ok && isListConfig(name), nil
	}
	if err := applyIncremental(cfg, rr.Configs, current); err != nil {
		return err
	}
	return h.setBrokerConfigs(key, cfg, validateOnly)
}

// brokerValue returns a broker config's current value on this broker.
func (h *Handler) brokerValue(name string) (string, bool) {
	for _, v := range h.c.Broker().BrokerValues() {
		if v.Name == name {
			return v.Value, true
		}
	}
	return "", false
}

// isListConfig reports whether a dynamic broker config holds a list.
func isListConfig(brokerName string) bool {
	for _, c := range metadata.TopicConfigs() {
		if c.Broker == brokerName {
			return c.Type == metadata.TypeList
		}
	}
	return false
}

// dynamicSynonyms lists a broker config's dynamic values, this broker's
// first, as DescribeConfigs synonyms.
func (h *Handler) dynamicSynonyms(name string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	var out []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym
	bc := h.c.Broker()
	if v, ok := bc.Dynamic(name, true); ok {
		out = append(out, synonym(name, kmsg.StringPtr(v), metadata.SourceDynamicBroker))
	}
	if v, ok := bc.Dynamic(name, false); ok {
		out = append(out, synonym(name, kmsg.StringPtr(v), metadata.SourceDynamicDefaultBroker))
	}
	return out
}
