package handler

import (
	"context"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// DescribeConfigs: the configs of topics and of this broker, every one with
// its value and where the value comes from.
//
// Behavior:
//   - TOPIC (2): every topic config, defaults included (librdkafka and the
//     Java admin expect them, see notes/compat.md), each resolved as topic
//     override (DYNAMIC_TOPIC_CONFIG), else the broker's dynamic value
//     (DYNAMIC_BROKER_CONFIG, then DYNAMIC_DEFAULT_BROKER_CONFIG), else the
//     broker's --config file (STATIC_BROKER_CONFIG), else Kafka's default
//     (DEFAULT_CONFIG). Topic configs are never read-only. An invalid name
//     is INVALID_TOPIC_EXCEPTION, an unknown topic
//     UNKNOWN_TOPIC_OR_PARTITION.
//   - BROKER (4) named by this node's id: every broker config Strom reads,
//     with its source in the same order; read-only unless dynamic (the
//     topic configs' broker synonyms, see broker_configs.go). The empty
//     name is the cluster-wide dynamic defaults: only those that are set
//     (an empty list when none is), as Kafka answers. Another broker id,
//     or a name that is not a number, is INVALID_REQUEST.
//   - BROKER_LOGGER (8) and any other type: INVALID_REQUEST with a message.
//   - ConfigNames null or empty asks for every config; otherwise only the
//     named ones, unknown names skipped (as Kafka does).
//   - Synonyms (when asked) list every source in precedence order: the
//     topic override, then the broker's dynamic values (this broker's, then
//     the cluster default), then each broker config set in the --config
//     file that feeds it (log.retention.ms, then log.retention.minutes and
//     log.retention.hours for retention.ms), then the default, named by the
//     broker synonym. The first synonym's source is the config's source.
//   - PASSWORD configs (ssl.keystore.key, ...) are sensitive: no value.
//
// Version notes: v0 has IsDefault (true when the value is not set on the
// resource itself) instead of a source; v1 ConfigSource and synonyms; v2
// throttle; v3 ConfigType, and Documentation when IncludeDocumentation; v4+
// flexible.
func init() { register(32, 0, 4, handleDescribeConfigs) }

func handleDescribeConfigs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeConfigsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeConfigsResponse)
	opts := describeOpts{synonyms: req.Version >= 1 && r.IncludeSynonyms, docs: req.Version >= 3 && r.IncludeDocumentation}
	for i := range r.Resources {
		rr := &r.Resources[i]
		st := kmsg.NewDescribeConfigsResponseResource()
		st.ResourceType, st.ResourceName = rr.ResourceType, rr.ResourceName
		opts.names = nil
		if len(rr.ConfigNames) > 0 {
			opts.names = map[string]bool{}
			for _, n := range rr.ConfigNames {
				opts.names[n] = true
			}
		}
		var err error
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			st.Configs, err = h.describeTopicConfigs(rr.ResourceName, opts)
		case kmsg.ConfigResourceTypeBroker:
			st.Configs, err = h.describeBrokerConfigs(rr.ResourceName, opts)
		default:
			err = unsupportedResource(rr.ResourceType)
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
		}
		resp.Resources = append(resp.Resources, st)
	}
	return now(resp)
}

type describeOpts struct {
	names    map[string]bool // nil: all
	synonyms bool
	docs     bool
}

func (o describeOpts) wants(name string) bool { return o.names == nil || o.names[name] }

// derivedBrokerSynonyms are the broker configs that also set a topic
// default, after its main broker synonym, in precedence order (see
// metadata.BrokerConfig's topicDefault).
var derivedBrokerSynonyms = map[string][]string{
	"log.retention.ms": {"log.retention.minutes", "log.retention.hours"},
	"log.roll.ms":      {"log.roll.hours"},
}

func (h *Handler) describeTopicConfigs(topic string, o describeOpts) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	if err := metadata.ValidTopicName(topic); err != nil {
		return nil, err
	}
	vals, err := h.c.TopicConfigs(topic)
	if err != nil {
		return nil, err
	}
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	for _, v := range vals {
		if !o.wants(v.Name) {
			continue
		}
		c := describedConfig(v, o)
		c.IsDefault = v.Source != metadata.SourceTopic
		if o.synonyms {
			if v.Source == metadata.SourceTopic {
				c.ConfigSynonyms = append(c.ConfigSynonyms, synonym(v.Name, kmsg.StringPtr(v.Value), metadata.SourceTopic))
			}
			c.ConfigSynonyms = append(c.ConfigSynonyms, h.brokerSynonyms(v.Broker, v.Default)...)
		}
		out = append(out, c)
	}
	return out, nil
}

func (h *Handler) describeBrokerConfigs(name string, o describeOpts) ([]kmsg.DescribeConfigsResponseResourceConfig, error) {
	out := []kmsg.DescribeConfigsResponseResourceConfig{}
	if name == "" {
		for _, v := range h.c.Broker().ClusterDefaultValues() {
			if !o.wants(v.Name) {
				continue
			}
			c := describedConfig(v, o)
			if o.synonyms {
				c.ConfigSynonyms = []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{
					synonym(v.Name, kmsg.StringPtr(v.Value), metadata.SourceDynamicDefaultBroker)}
			}
			out = append(out, c)
		}
		return out, nil
	}
	if err := h.checkBrokerName(name); err != nil {
		return nil, err
	}
	for _, v := range h.c.Broker().BrokerValues() {
		if !o.wants(v.Name) {
			continue
		}
		c := describedConfig(v, o)
		if v.Value == "" && v.Source == metadata.SourceDefault {
			c.Value = nil // Kafka's "no value" (log.retention.minutes)
		}
		c.ReadOnly = !metadata.IsDynamicBrokerConfig(v.Name)
		c.IsDefault = v.Source == metadata.SourceDefault
		if o.synonyms {
			c.ConfigSynonyms = h.brokerSynonyms(v.Name, v.Default)
		}
		out = append(out, c)
	}
	return out, nil
}

// describedConfig fills what topic and broker entries share.
func describedConfig(v metadata.ConfigValue, o describeOpts) kmsg.DescribeConfigsResponseResourceConfig {
	c := kmsg.NewDescribeConfigsResponseResourceConfig()
	c.Name = v.Name
	c.Value = kmsg.StringPtr(v.Value)
	c.Source = kmsg.ConfigSource(v.Source)
	c.ConfigType = kmsg.ConfigType(v.Type)
	if o.docs {
		c.Documentation = kmsg.StringPtr(v.Doc)
	}
	if v.Type == metadata.TypePassword {
		// Keys and inline certificates are never shown, as Kafka's
		// PASSWORD configs.
		c.Value, c.IsSensitive = nil, true
	}
	return c
}

// brokerSynonyms lists a broker config's dynamic values, then the --config
// file's values for it and the configs it derives from, then its default
// (when it has one).
func (h *Handler) brokerSynonyms(name, def string) []kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	out := h.dynamicSynonyms(name)
	bc := h.c.Broker()
	for _, n := range append([]string{name}, derivedBrokerSynonyms[name]...) {
		if v, ok := bc.Static(n); ok {
			val := kmsg.StringPtr(v)
			if metadata.IsSensitiveConfig(n) {
				val = nil
			}
			out = append(out, synonym(n, val, metadata.SourceStaticBroker))
		}
	}
	if def != "" {
		out = append(out, synonym(name, kmsg.StringPtr(def), metadata.SourceDefault))
	}
	return out
}

func synonym(name string, value *string, src metadata.Source) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	s := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
	s.Name, s.Value, s.Source = name, value, kmsg.ConfigSource(src)
	return s
}

// checkBrokerName accepts this node's id, as Kafka names broker resources.
func (h *Handler) checkBrokerName(name string) error {
	id, err := strconv.ParseInt(name, 10, 32)
	if node := h.c.NodeID(); err != nil || int32(id) != node {
		return adminFail(kerr.InvalidRequest, "unexpected broker id, expected %d or empty string, but received %q", node, name)
	}
	return nil
}

// unsupportedResource refuses config resource types Strom does not serve.
func unsupportedResource(t kmsg.ConfigResourceType) error {
	if t == kmsg.ConfigResourceTypeBrokerLogger {
		return adminFail(kerr.InvalidRequest, "BROKER_LOGGER resources are not supported: Strom's log level is set at start (--log-level)")
	}
	return adminFail(kerr.InvalidRequest, "unsupported config resource type %s (%d): Strom serves TOPIC and BROKER", t, int8(t))
}
