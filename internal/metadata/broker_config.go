package metadata

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
)

// BrokerSetting describes one broker-level config Strom reads.
type BrokerSetting struct {
	Name    string
	Default string
	Type    ConfigType
	Doc     string
}

// brokerSettings are the broker configs Strom honours (besides the topic
// defaults' broker synonyms, which are listed with the topic configs).
var brokerSettings = []BrokerSetting{
	{"node.id", "0", TypeInt, "this broker's id"},
	{"num.partitions", "1", TypeInt, "partitions of an auto-created topic"},
	{"default.replication.factor", "1", TypeShort, "replication factor of an auto-created topic (single node: 1)"},
	{"auto.create.topics.enable", "true", TypeBoolean, "create a topic when a client asks for its metadata"},
	{"socket.request.max.bytes", "104857600", TypeInt, "largest request accepted"},
	{"connections.max.idle.ms", "600000", TypeLong, "close connections idle this long"},
	{"max.connections", "2147483647", TypeInt, "connection limit"},
	{"max.connections.per.ip", "2147483647", TypeInt, "connection limit per client address"},
	{"queued.max.request.bytes", "104857600", TypeLong, "request bytes held across all connections before readers stop reading; -1 for no limit, else at least socket.request.max.bytes (Kafka's default is -1)"},
	{"fetch.max.bytes", "16777216", TypeInt, "most record bytes one Fetch response carries, whatever the request asks (at least one batch is always returned, KIP-74); Kafka's default is 57671680: Strom reads a response's records into memory before it writes them, so a smaller one bounds what a catching-up consumer costs (a 4 GiB backlog read by one consumer: +55 MiB RSS instead of +135 MiB, at the same MB/s)"},
	{"socket.request.read.timeout.ms", "30000", TypeLong, "Strom only: time a request may take to arrive once its first byte has; -1 for no limit"},
	{"max.broker.partitions", "20000", TypeInt, "Strom only: most partitions this broker holds; the open-file limit may bound them lower (each idle partition keeps one file open); creating more is INVALID_PARTITIONS; -1 for no limit"},
	{"http.allowed.hosts", "", TypeList, "Strom only: host names (comma-separated) the console, HTTP API, /metrics and /debug/pprof answer to, besides localhost, IP addresses and the --http-addr host; others get 403 (the guard against DNS rebinding); * allows any (unsafe)"},
	{"http.ssl.enable", "false", TypeBoolean, "Strom only: serve the console, HTTP API, health and metrics over HTTPS with the ssl.keystore.* certificate (re-read when it changes; no client certificates asked)"},
	{"http.pprof.enable", "false", TypeBoolean, "Strom only: serve Go's profiler at /debug/pprof/ on the HTTP listener (as --pprof)"},
	{"http.produce.max.inflight.bytes", "33554432", TypeLong, "Strom only: body bytes of HTTP produce requests handled at once; a request waits for its share (at most the request timeout, then 503); -1 for no limit, else at least the 8 MiB body limit"},
	{"log.retention.check.interval.ms", "300000", TypeLong, "how often retention runs"},
	{"log.flush.offset.checkpoint.interval.ms", "1000", TypeLong, "how often recovery points are checkpointed, when they moved (Kafka: 60000); a restart after a crash re-validates what they do not cover"},
	{"log.retention.hours", "168", TypeInt, "retention.ms in hours (log.retention.ms wins)"},
	{"log.retention.minutes", "", TypeInt, "retention.ms in minutes (log.retention.ms wins)"},
	{"log.roll.hours", "168", TypeInt, "segment.ms in hours (log.roll.ms wins)"},
	{"log.cleaner.enable", "true", TypeBoolean, "run the log cleaner (compaction of topics with cleanup.policy=compact)"},
	{"log.cleaner.threads", "1", TypeInt, "cleaner workers: logs cleaned at once"},
	{"log.cleaner.dedupe.buffer.size", "134217728", TypeLong, "memory for the cleaners' key maps, shared by the workers; a log with more keys is cleaned in several passes"},
	{"log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", TypeDouble, "bytes per second the cleaners may read and write together"},
	{"log.cleaner.backoff.ms", "15000", TypeLong, "how often the cleaner looks for a log to clean"},
	{"offsets.retention.minutes", "10080", TypeInt, "how long committed offsets of an empty group are kept"},
	{"transaction.max.timeout.ms", "900000", TypeInt, "largest transaction timeout a producer may ask for"},
	{"transaction.version", "2", TypeShort, "the transaction.version feature clients see: 2 is KIP-890 part 2 (Produce v12+ and TxnOffsetCommit v5+ add their partition or group themselves, EndTxn v5+ bumps the epoch at every end); 1 keeps clients to AddPartitionsToTxn and one epoch per producer session (KIP-890 part 1 applies to both)"},
	{"transaction.abort.timed.out.transaction.cleanup.interval.ms", "10000", TypeInt, "how often transactions past their timeout are aborted (and unfinished ones completed)"},
	{"group.min.session.timeout.ms", "6000", TypeInt, "smallest consumer session timeout"},
	{"group.max.session.timeout.ms", "1800000", TypeInt, "largest consumer session timeout"},
	{"group.initial.rebalance.delay.ms", "3000", TypeInt, "delay before the first rebalance of a new group"},
	{"group.consumer.session.timeout.ms", "45000", TypeInt, "session timeout of KIP-848 consumer group members"},
	{"group.consumer.heartbeat.interval.ms", "5000", TypeInt, "heartbeat interval given to KIP-848 consumer group members"},
	{"offsets.retention.check.interval.ms", "600000", TypeLong, "how often expired committed offsets are removed"},
	{"offset.metadata.max.bytes", "4096", TypeInt, "largest metadata string of a committed offset"},

	// KRaft's node layout, under Kafka's names, so that the tutorials'
	// server.properties files work (see NodeLayout).
	{"process.roles", "broker,controller", TypeList, "broker, controller, or both (a node of Strom is both today)"},
	{"controller.quorum.voters", "", TypeList, "the metadata quorum, id@host:port,...; empty: this node alone"},
	{"controller.listener.names", "CONTROLLER", TypeList, "the listeners (names in listeners) that controllers speak on"},
	{"listeners", "", TypeList, "NAME://host:port,...: the client listeners (each PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL by listener.security.protocol.map) and the controller's; empty: --kafka-addr"},
	{"advertised.listeners", "", TypeList, "NAME://host:port,...: each client listener's address given to its clients; empty: --advertised-addr"},
	{"inter.broker.listener.name", "PLAINTEXT", TypeString, "the listener brokers use between them"},
	{"listener.security.protocol.map", "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", TypeList,
		"NAME:PROTOCOL,...: the security protocol of each listener name"},
	{"log.dirs", "", TypeList, "the data directory (one; Strom keeps one per node); empty: log.dir"},
	{"log.dir", "", TypeString, "the data directory when log.dirs is empty; empty: --data-dir"},
	{"broker.rack", "", TypeString, "this broker's rack, reported in Metadata"},
	{"broker.session.timeout.ms", "9000", TypeInt, "a broker the metadata quorum's leader has not heard from for this long is fenced"},
	{"broker.heartbeat.interval.ms", "2000", TypeInt, "how often the quorum's leader checks the brokers' sessions"},
	{"auto.leader.rebalance.enable", "true", TypeBoolean, "a partition's leader hands leadership to its preferred replica (the first) once that one has caught up; false: only an ElectLeaders request (strom topic elect-leaders) moves it"},
	{"replica.lag.time.max.ms", "30000", TypeInt, "a follower whose raft match index has not caught up with the leader within this long leaves the ISR"},

	// Security (docs/SECURITY.md). TLS material is PEM only
	// (ssl.keystore.type=PEM): a file with the key and the certificate
	// chain (ssl.keystore.location), or both inline as Kafka has them
	// (ssl.keystore.certificate.chain and ssl.keystore.key); the files are
	// re-read when they change. A listener overrides the ssl.* settings
	// and sasl.enabled.mechanisms with listener.name.<listener>.<setting>
	// (ListenerValue).
	{"ssl.keystore.type", "PEM", TypeString, "PEM only"},
	{"ssl.keystore.location", "", TypeString, "PEM file holding the private key and the certificate chain of TLS listeners; re-read when it changes"},
	{"ssl.keystore.certificate.chain", "", TypePassword, "the certificate chain in PEM, inline (instead of ssl.keystore.location)"},
	{"ssl.keystore.key", "", TypePassword, "the private key in PEM, inline (with ssl.keystore.certificate.chain)"},
	{"ssl.key.password", "", TypePassword, "decrypts ssl.keystore.key (or the keystore file's key) when it is an encrypted PKCS#8 block (ENCRYPTED PRIVATE KEY)"},
	{"ssl.truststore.type", "PEM", TypeString, "PEM only"},
	{"ssl.truststore.location", "", TypeString, "PEM file of the CA certificates client certificates are checked against; re-read when it changes"},
	{"ssl.truststore.certificates", "", TypePassword, "CA certificates in PEM, inline (instead of ssl.truststore.location)"},
	{"ssl.client.auth", "none", TypeString, "required, requested or none: whether TLS listeners ask clients for a certificate"},
	{"ssl.principal.mapping.rules", "DEFAULT", TypeString, "rules mapping a client certificate's subject to a principal name: RULE:pattern/replacement/[LU], ..., DEFAULT"},
	{"ssl.enabled.protocols", "TLSv1.2,TLSv1.3", TypeList, "TLS versions accepted (TLSv1.2, TLSv1.3)"},
	{"sasl.enabled.mechanisms", "GSSAPI", TypeList, "SASL mechanisms of SASL listeners: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 (Kafka's default GSSAPI is not supported and is dropped)"},
	{"sasl.mechanism.inter.broker.protocol", "GSSAPI", TypeString, "the SASL mechanism brokers authenticate to each other with when inter.broker.listener.name is a SASL listener: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default GSSAPI is not supported: transactions in a cluster are then refused)"},
	{"sasl.mechanism.controller.protocol", "GSSAPI", TypeString, "the SASL mechanism controllers authenticate to each other with when the controller listener is SASL_PLAINTEXT or SASL_SSL: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (Kafka's default GSSAPI is not supported: such a node refuses to start)"},
	{"sasl.jaas.config", "", TypePassword, "the broker's own credentials for the inter-broker client, as a JAAS login (PlainLoginModule or ScramLoginModule required username=\"...\" password=\"...\";); listener.name.<listener>.<mechanism>.sasl.jaas.config wins"},
	{"authorizer.class.name", "", TypeString, "org.apache.kafka.metadata.authorizer.StandardAuthorizer (or kafka.security.authorizer.AclAuthorizer) turns ACLs on; empty: no authorization"},
	{"super.users", "", TypeString, "principals allowed everything, separated by semicolons: User:admin;User:ops"},
	{"allow.everyone.if.no.acl.found", "false", TypeBoolean, "with ACLs on, allow a resource no ACL names to everyone"},
	{"sasl.oauthbearer.jwks.endpoint.url", "", TypeString, "OAUTHBEARER: the JWKS whose keys sign tokens: a file (path or file:// URL) read at start, or an http(s) URL fetched at start and every refresh, and again for a token whose kid it lacks"},
	{"sasl.oauthbearer.jwks.endpoint.refresh.ms", "3600000", TypeInt, "OAUTHBEARER: how often a JWKS at an http(s) URL is fetched again"},
	{"sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", "100", TypeInt, "OAUTHBEARER: the first wait after a failed JWKS fetch"},
	{"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms", "10000", TypeInt, "OAUTHBEARER: the waits after failed JWKS fetches double up to this"},
	{"sasl.oauthbearer.expected.audience", "", TypeList, "OAUTHBEARER: a token's aud must hold one of these (empty: not checked)"},
	{"sasl.oauthbearer.expected.issuer", "", TypeString, "OAUTHBEARER: a token's iss must be this (empty: not checked)"},
	{"sasl.oauthbearer.sub.claim.name", "sub", TypeString, "OAUTHBEARER: the claim naming the principal"},
	{"sasl.oauthbearer.clock.skew.seconds", "30", TypeInt, "OAUTHBEARER: leeway for exp and nbf"},
	{"connections.max.reauth.ms", "0", TypeLong, "SASL sessions last this long; clients (SaslAuthenticate v1+) re-authenticate before, else the connection closes at its next request (KIP-368); 0: forever"},
	{"delegation.token.secret.key", "", TypePassword, "enables delegation tokens (KIP-48): the key their HMACs are derived with, the same on every broker of a cluster"},
	{"delegation.token.master.key", "", TypePassword, "deprecated name of delegation.token.secret.key"},
	{"delegation.token.max.lifetime.ms", "604800000", TypeInt, "a delegation token cannot be renewed past this long after its creation"},
	{"delegation.token.expiry.time.ms", "86400000", TypeInt, "a delegation token's lifetime at creation and at each renewal that names none"},
	{"delegation.token.expiry.check.interval.ms", "3600000", TypeInt, "accepted for Kafka's files: an expired token is refused at once, and removed at the next change of tokens"},
	{"connection.failed.authentication.delay.ms", "100", TypeInt, "delay before a failed authentication is answered and the connection closed"},

	// Kafka settings of its thread pools and socket buffers, present in its
	// stock server.properties: accepted (and type-checked) so those files
	// start, with no effect: Strom has a goroutine per connection, no pools,
	// and leaves socket buffers to the kernel's autotuning.
	{"num.network.threads", "3", TypeInt, "accepted, no effect (no network thread pool)"},
	{"num.io.threads", "8", TypeInt, "accepted, no effect (no I/O thread pool)"},
	{"num.recovery.threads.per.data.dir", "1", TypeInt, "accepted, no effect (recovery opens partitions with its own bounded workers)"},
	{"socket.send.buffer.bytes", "102400", TypeInt, "accepted, no effect (the kernel sizes socket buffers)"},
	{"socket.receive.buffer.bytes", "102400", TypeInt, "accepted, no effect (the kernel sizes socket buffers)"},
	{"offsets.topic.replication.factor", "3", TypeShort, "replicas of __consumer_offsets, capped by the cluster's size (1 on a single node); not created while fewer brokers are alive"},
	{"transaction.state.log.replication.factor", "3", TypeShort, "replicas of __transaction_state, capped by the brokers alive (1 on a single node)"},
	{"transaction.state.log.min.isr", "2", TypeInt, "accepted; no effect on a single node (__transaction_state has one replica)"},
}

// BrokerConfig is the broker's configuration under Kafka's names: the
// static values of the --config file (server.properties format) and flags,
// and above them the dynamic ones set at run time by AlterConfigs on the
// broker resource (see SetDynamic), in Kafka's order: this broker's own
// dynamic value, then the cluster-wide dynamic default, then the static
// value, then the default.
//
// Safe for concurrent use once the broker runs: the static values are only
// written (Set) while flags are parsed, the dynamic layers are swapped
// whole.
type BrokerConfig struct {
	values   map[string]string
	settings *BrokerSettings // resolved from values by NewBrokerConfig and Set
	dyn      atomic.Pointer[dynamicLayers]
}

// dynamicLayers are the dynamic broker configs; the maps are never modified
// once stored.
type dynamicLayers struct {
	broker  map[string]string // set on this broker's id
	cluster map[string]string // set on "", the cluster-wide default
}

// IsDynamicBrokerConfig reports whether name may be changed at run time by
// AlterConfigs on the broker resource. Those are the broker synonyms of the
// topic configs (log.retention.ms, message.max.bytes, ...), which Kafka's
// DynamicLogConfig makes dynamic too and which Strom applies to every open
// log at once, as it applies a topic's overrides. Only the main synonym:
// log.retention.hours and log.retention.minutes stay static, as in Kafka;
// so does log.message.format.version, which Kafka 3.x excludes
// (DynamicLogConfig.ExcludedConfigs). Every other broker config is read
// once at start.
func IsDynamicBrokerConfig(name string) bool {
	_, ok := topicConfigByBroker(name)
	return ok && name != "log.message.format.version"
}

// IsBrokerConfig reports whether Strom knows name as a broker config.
func IsBrokerConfig(name string) bool {
	_, setting := brokerSettingByName(name)
	_, synonym := topicConfigByBroker(name)
	return setting || synonym
}

// ValidateDynamicBrokerConfig checks one dynamic broker config's value.
func ValidateDynamicBrokerConfig(name, value string) error {
	tc, ok := topicConfigByBroker(name)
	if !ok || !IsDynamicBrokerConfig(name) {
		return fmt.Errorf("%w: %q cannot be updated dynamically", ErrInvalidConfig, name)
	}
	if err := tc.validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	return nil
}

// SetDynamic replaces the dynamic configs: those set on this broker and the
// cluster-wide defaults. The caller validated them and gives up the maps.
func (b *BrokerConfig) SetDynamic(broker, cluster map[string]string) {
	b.dyn.Store(&dynamicLayers{broker: broker, cluster: cluster})
}

// Dynamic returns the dynamic value of name on this broker (perBroker) or
// as the cluster-wide default, and whether it is set.
func (b *BrokerConfig) Dynamic(name string, perBroker bool) (string, bool) {
	if b == nil {
		return "", false
	}
	d := b.dyn.Load()
	if d == nil {
		return "", false
	}
	m := d.cluster
	if perBroker {
		m = d.broker
	}
	v, ok := m[name]
	return v, ok
}

// dynamic returns name's dynamic value with its source, this broker's
// first.
func (b *BrokerConfig) dynamic(name string) (string, Source, bool) {
	if v, ok := b.Dynamic(name, true); ok {
		return v, SourceDynamicBroker, true
	}
	if v, ok := b.Dynamic(name, false); ok {
		return v, SourceDynamicDefaultBroker, true
	}
	return "", 0, false
}

// ParseProperties reads Java properties (key=value or key: value lines,
// # and ! comments). Continuation lines and escapes beyond \\ are not
// supported; a line that is neither blank, a comment nor a pair is an error.
func ParseProperties(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '!' {
			continue
		}
		i := strings.IndexAny(line, "=:")
		if i <= 0 {
			return nil, fmt.Errorf("line %d: want key=value, got %q", n, line)
		}
		out[strings.TrimSpace(line[:i])] = strings.TrimSpace(line[i+1:])
	}
	return out, sc.Err()
}

// NewBrokerConfig validates props: every name must be a broker setting or a
// topic config's broker synonym, and values must parse.
func NewBrokerConfig(props map[string]string) (*BrokerConfig, error) {
	b := &BrokerConfig{values: map[string]string{}}
	for k, v := range props {
		if s, ok := brokerSettingByName(k); ok {
			if err := checkType(s.Type, v); err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, k, v, err)
			}
		} else if tc, ok := topicConfigByBroker(k); ok {
			if err := tc.validate(v); err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, k, v, err)
			}
		} else if _, setting, ok := splitListenerSetting(k); ok {
			s, _ := brokerSettingByName(setting)
			if err := checkType(s.Type, v); err != nil {
				return nil, fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, k, v, err)
			}
		} else {
			return nil, fmt.Errorf("%w: unknown broker config %q", ErrInvalidConfig, k)
		}
		b.values[k] = v
	}
	s, err := b.resolveSettings()
	if err != nil {
		return nil, err
	}
	b.settings = &s
	return b, nil
}

func checkType(t ConfigType, v string) error {
	switch t {
	case TypeInt, TypeShort, TypeLong:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("not an integer")
		}
	case TypeBoolean:
		return boolean(v)
	}
	return nil
}

// listenerSettings are the settings a listener may override with Kafka's
// listener.name.<listener>.<setting> prefix.
var listenerSettings = map[string]bool{
	"ssl.keystore.location": true, "ssl.keystore.certificate.chain": true, "ssl.keystore.key": true,
	"ssl.truststore.location": true, "ssl.truststore.certificates": true, "ssl.client.auth": true,
	"ssl.principal.mapping.rules": true, "ssl.enabled.protocols": true, "sasl.enabled.mechanisms": true,
}

// jaasMechanisms are the SASL mechanisms (lower case) of Kafka's
// listener.name.<listener>.<mechanism>.sasl.jaas.config.
var jaasMechanisms = map[string]bool{"plain": true, "scram-sha-256": true, "scram-sha-512": true, "gssapi": true, "oauthbearer": true}

// splitListenerSetting splits listener.name.<listener>.<setting> for the
// settings a listener may override. Kafka's per-mechanism JAAS config,
// listener.name.<listener>.<mechanism>.sasl.jaas.config, is the setting
// sasl.jaas.config.
func splitListenerSetting(k string) (listener, setting string, ok bool) {
	rest, ok := strings.CutPrefix(k, "listener.name.")
	if !ok {
		return "", "", false
	}
	listener, setting, ok = strings.Cut(rest, ".")
	if mech, jaas, isJAAS := strings.Cut(setting, "."); ok && isJAAS && jaasMechanisms[mech] && jaas == "sasl.jaas.config" {
		return listener, jaas, listener != ""
	}
	if !ok || listener == "" || !listenerSettings[setting] {
		return "", "", false
	}
	return listener, setting, true
}

// ListenerJAAS is the JAAS login the broker uses as a client of listener
// with a SASL mechanism: listener.name.<listener>.<mechanism>.sasl.jaas.config
// (both lower case), else sasl.jaas.config. key names the setting the
// value came from (for errors); "" and "" when neither is set.
func (b *BrokerConfig) ListenerJAAS(listener, mechanism string) (value, key string) {
	key = "listener.name." + strings.ToLower(listener) + "." + strings.ToLower(mechanism) + ".sasl.jaas.config"
	if b != nil {
		if v, ok := b.values[key]; ok {
			return v, key
		}
		if v, ok := b.values["sasl.jaas.config"]; ok {
			return v, "sasl.jaas.config"
		}
	}
	return "", ""
}

// ListenerValue is setting's value for one listener: its
// listener.name.<listener, lower case>.<setting> override when given (as
// Kafka's per-listener configs), else the broker's value. Only the ssl.*
// settings and sasl.enabled.mechanisms may be overridden.
func (b *BrokerConfig) ListenerValue(listener, setting string) string {
	if b != nil {
		if v, ok := b.values["listener.name."+strings.ToLower(listener)+"."+setting]; ok {
			return v
		}
	}
	return b.value(setting)
}

// ListenerList is ListenerValue split at commas.
func (b *BrokerConfig) ListenerList(listener, setting string) []string {
	var out []string
	for _, v := range strings.Split(b.ListenerValue(listener, setting), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// IsSensitiveConfig reports whether name is a PASSWORD config, whose value
// is never shown.
func IsSensitiveConfig(name string) bool {
	if _, setting, ok := splitListenerSetting(name); ok {
		name = setting
	}
	s, ok := brokerSettingByName(name)
	return ok && s.Type == TypePassword
}

func brokerSettingByName(name string) (BrokerSetting, bool) {
	for _, s := range brokerSettings {
		if s.Name == name {
			return s, true
		}
	}
	return BrokerSetting{}, false
}

func topicConfigByBroker(name string) (TopicConfig, bool) {
	for _, c := range topicConfigs {
		if c.Broker == name {
			return c, true
		}
	}
	return TopicConfig{}, false
}

// Set sets one value after validating it (flags use it).
func (b *BrokerConfig) Set(name, value string) error {
	nb, err := NewBrokerConfig(map[string]string{name: value})
	if err != nil {
		return err
	}
	b.values[name] = nb.values[name]
	s, err := b.resolveSettings()
	if err != nil {
		delete(b.values, name)
		return err
	}
	b.settings = &s
	return nil
}

// value returns a broker setting's value or its default.
func (b *BrokerConfig) value(name string) string {
	if v, _, ok := b.dynamic(name); ok {
		return v
	}
	if b != nil {
		if v, ok := b.values[name]; ok {
			return v
		}
	}
	s, _ := brokerSettingByName(name)
	return s.Default
}

// Static returns the value the --config file (or a flag) gave name, and
// whether it gave one: no default, no derivation (log.retention.hours does
// not make log.retention.ms static). DescribeConfigs lists these as
// STATIC_BROKER_CONFIG synonyms.
func (b *BrokerConfig) Static(name string) (string, bool) {
	if b == nil {
		return "", false
	}
	v, ok := b.values[name]
	return v, ok
}

// list returns a list setting's comma-separated items, trimmed, without
// empty ones. Code outside this package reads Settings' typed fields.
func (b *BrokerConfig) list(name string) []string {
	var out []string
	for _, v := range strings.Split(b.value(name), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// topicDefault returns the broker's value for a topic config and its
// source, if one is set: dynamic (log.retention.ms set by AlterConfigs),
// else static (log.retention.ms, or its hours/minutes forms, in the file).
func (b *BrokerConfig) topicDefault(c TopicConfig) (string, Source, bool) {
	if b == nil {
		return "", 0, false
	}
	if v, src, ok := b.dynamic(c.Broker); ok {
		return v, src, true
	}
	if v, ok := b.values[c.Broker]; ok {
		return v, SourceStaticBroker, true
	}
	switch c.Name {
	case "retention.ms":
		if v, ok := b.values["log.retention.minutes"]; ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return strconv.FormatInt(n*60_000, 10), SourceStaticBroker, true
		}
		if v, ok := b.values["log.retention.hours"]; ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return strconv.FormatInt(n*3_600_000, 10), SourceStaticBroker, true
		}
	case "segment.ms":
		if v, ok := b.values["log.roll.hours"]; ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return strconv.FormatInt(n*3_600_000, 10), SourceStaticBroker, true
		}
	}
	return "", 0, false
}

// BrokerValues returns every broker config with its value and source, for
// DescribeConfigs on the broker resource.
func (b *BrokerConfig) BrokerValues() []ConfigValue {
	var out []ConfigValue
	for _, s := range brokerSettings {
		v := ConfigValue{TopicConfig: TopicConfig{Name: s.Name, Default: s.Default, Type: s.Type, Doc: s.Doc}, Value: s.Default, Source: SourceDefault}
		if bv, ok := b.values[s.Name]; ok {
			v.Value, v.Source = bv, SourceStaticBroker
		}
		out = append(out, v)
	}
	for _, c := range topicConfigs {
		v := ConfigValue{TopicConfig: TopicConfig{Name: c.Broker, Default: c.Default, Type: c.Type, Doc: c.Doc}, Value: c.Default, Source: SourceDefault}
		if bv, src, ok := b.topicDefault(c); ok {
			v.Value, v.Source = bv, src
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// ClusterDefaultValues returns the cluster-wide dynamic defaults, for
// DescribeConfigs on the broker resource "": only those that are set, as
// Kafka answers.
func (b *BrokerConfig) ClusterDefaultValues() []ConfigValue {
	var out []ConfigValue
	for _, c := range topicConfigs {
		if v, ok := b.Dynamic(c.Broker, false); ok {
			out = append(out, ConfigValue{TopicConfig: TopicConfig{Name: c.Broker, Default: c.Default, Type: c.Type, Doc: c.Doc},
				Value: v, Source: SourceDynamicDefaultBroker})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
