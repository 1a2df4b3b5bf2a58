package metadata

import (
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// BrokerSettings are the broker's own settings, typed and resolved once at
// start: code reads fields, so a misspelt name is a compile error, and a
// setting without a field (or a field naming no setting) fails
// TestBrokerSettingsCoverEverySetting. The `config` tag names the Kafka
// setting; durations are milliseconds, except where the tag says
// "minutes". Topic defaults (log.retention.ms, ...) are not here: they are
// resolved per topic (Resolve, TopicSettings), with their dynamic values.
type BrokerSettings struct {
	NodeID                   int32 `config:"node.id"`
	NumPartitions            int32 `config:"num.partitions"`
	DefaultReplicationFactor int16 `config:"default.replication.factor"`
	AutoCreateTopics         bool  `config:"auto.create.topics.enable"`

	SocketRequestMaxBytes    int64         `config:"socket.request.max.bytes"`
	ConnectionsMaxIdle       time.Duration `config:"connections.max.idle.ms"`
	MaxConnections           int           `config:"max.connections"`
	MaxConnectionsPerIP      int           `config:"max.connections.per.ip"`
	QueuedMaxRequestBytes    int64         `config:"queued.max.request.bytes"`
	FetchMaxBytes            int           `config:"fetch.max.bytes"`
	SocketRequestReadTimeout time.Duration `config:"socket.request.read.timeout.ms"`
	MaxBrokerPartitions      int64         `config:"max.broker.partitions"`

	HTTPAllowedHosts            []string `config:"http.allowed.hosts"`
	HTTPPprof                   bool     `config:"http.pprof.enable"`
	HTTPSSL                     bool     `config:"http.ssl.enable"`
	HTTPProduceMaxInflightBytes int64    `config:"http.produce.max.inflight.bytes"`

	LogRetentionCheckInterval        time.Duration `config:"log.retention.check.interval.ms"`
	LogFlushOffsetCheckpointInterval time.Duration `config:"log.flush.offset.checkpoint.interval.ms"`

	LogCleanerEnable         bool          `config:"log.cleaner.enable"`
	LogCleanerThreads        int           `config:"log.cleaner.threads"`
	LogCleanerDedupeBuffer   int64         `config:"log.cleaner.dedupe.buffer.size"`
	LogCleanerIOMaxBytesPerS float64       `config:"log.cleaner.io.max.bytes.per.second"`
	LogCleanerBackoff        time.Duration `config:"log.cleaner.backoff.ms"`

	TransactionMaxTimeout            time.Duration `config:"transaction.max.timeout.ms"`
	TransactionAbortTimedOutInterval time.Duration `config:"transaction.abort.timed.out.transaction.cleanup.interval.ms"`
	TransactionVersion               int16         `config:"transaction.version"`

	GroupMinSessionTimeout         time.Duration `config:"group.min.session.timeout.ms"`
	GroupMaxSessionTimeout         time.Duration `config:"group.max.session.timeout.ms"`
	GroupInitialRebalanceDelay     time.Duration `config:"group.initial.rebalance.delay.ms"`
	GroupConsumerSessionTimeout    time.Duration `config:"group.consumer.session.timeout.ms"`
	GroupConsumerHeartbeatInterval time.Duration `config:"group.consumer.heartbeat.interval.ms"`
	OffsetsRetention               time.Duration `config:"offsets.retention.minutes,minutes"`
	OffsetsRetentionCheckInterval  time.Duration `config:"offsets.retention.check.interval.ms"`
	OffsetMetadataMaxBytes         int           `config:"offset.metadata.max.bytes"`

	ProcessRoles                []string      `config:"process.roles"`
	ControllerQuorumVoters      []string      `config:"controller.quorum.voters"`
	ControllerListenerNames     []string      `config:"controller.listener.names"`
	Listeners                   []string      `config:"listeners"`
	AdvertisedListeners         []string      `config:"advertised.listeners"`
	InterBrokerListenerName     string        `config:"inter.broker.listener.name"`
	ListenerSecurityProtocolMap []string      `config:"listener.security.protocol.map"`
	LogDirs                     []string      `config:"log.dirs"`
	LogDir                      string        `config:"log.dir"`
	BrokerRack                  string        `config:"broker.rack"`
	BrokerSessionTimeout        time.Duration `config:"broker.session.timeout.ms"`
	BrokerHeartbeatInterval     time.Duration `config:"broker.heartbeat.interval.ms"`
	ReplicaLagTimeMax           time.Duration `config:"replica.lag.time.max.ms"`
	AutoLeaderRebalanceEnable   bool          `config:"auto.leader.rebalance.enable"`

	SSLKeystoreType             string        `config:"ssl.keystore.type"`
	SSLKeystoreLocation         string        `config:"ssl.keystore.location"`
	SSLKeystoreCertificateChain string        `config:"ssl.keystore.certificate.chain"`
	SSLKeystoreKey              string        `config:"ssl.keystore.key"`
	SSLKeyPassword              string        `config:"ssl.key.password"`
	SSLTruststoreType           string        `config:"ssl.truststore.type"`
	SSLTruststoreLocation       string        `config:"ssl.truststore.location"`
	SSLTruststoreCertificates   string        `config:"ssl.truststore.certificates"`
	SSLClientAuth               string        `config:"ssl.client.auth"`
	SSLPrincipalMappingRules    string        `config:"ssl.principal.mapping.rules"`
	SSLEnabledProtocols         []string      `config:"ssl.enabled.protocols"`
	SASLEnabledMechanisms       []string      `config:"sasl.enabled.mechanisms"`
	FailedAuthenticationDelay   time.Duration `config:"connection.failed.authentication.delay.ms"`
	DelegationTokenSecretKey    string        `config:"delegation.token.secret.key"`
	DelegationTokenMasterKey    string        `config:"delegation.token.master.key"`
	DelegationTokenMaxLifetime  time.Duration `config:"delegation.token.max.lifetime.ms"`
	DelegationTokenExpiryTime   time.Duration `config:"delegation.token.expiry.time.ms"`
	DelegationTokenExpiryCheck  time.Duration `config:"delegation.token.expiry.check.interval.ms"`
	ConnectionsMaxReauth        time.Duration `config:"connections.max.reauth.ms"`
	OAuthJWKSURL                string        `config:"sasl.oauthbearer.jwks.endpoint.url"`
	OAuthJWKSRefresh            time.Duration `config:"sasl.oauthbearer.jwks.endpoint.refresh.ms"`
	OAuthJWKSRetryBackoff       time.Duration `config:"sasl.oauthbearer.jwks.endpoint.retry.backoff.ms"`
	OAuthJWKSRetryBackoffMax    time.Duration `config:"sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms"`
	OAuthExpectedAudience       []string      `config:"sasl.oauthbearer.expected.audience"`
	OAuthExpectedIssuer         string        `config:"sasl.oauthbearer.expected.issuer"`
	OAuthSubClaim               string        `config:"sasl.oauthbearer.sub.claim.name"`
	OAuthClockSkewSeconds       int           `config:"sasl.oauthbearer.clock.skew.seconds"`
	SASLMechanismInterBroker    string        `config:"sasl.mechanism.inter.broker.protocol"`
	SASLMechanismController     string        `config:"sasl.mechanism.controller.protocol"`
	SASLJAASConfig              string        `config:"sasl.jaas.config"`
	AuthorizerClassName         string        `config:"authorizer.class.name"`
	SuperUsers                  string        `config:"super.users"`
	AllowEveryoneIfNoACLFound   bool          `config:"allow.everyone.if.no.acl.found"`

	NumNetworkThreads                    int   `config:"num.network.threads"`
	NumIOThreads                         int   `config:"num.io.threads"`
	NumRecoveryThreadsPerDataDir         int   `config:"num.recovery.threads.per.data.dir"`
	SocketSendBufferBytes                int   `config:"socket.send.buffer.bytes"`
	SocketReceiveBufferBytes             int   `config:"socket.receive.buffer.bytes"`
	OffsetsTopicReplicationFactor        int16 `config:"offsets.topic.replication.factor"`
	TransactionStateLogReplicationFactor int16 `config:"transaction.state.log.replication.factor"`
	TransactionStateLogMinISR            int   `config:"transaction.state.log.min.isr"`
}

// topicSynonymSettings are broker settings that only derive topic defaults
// (log.retention.ms's hours and minutes forms): Resolve reads them.
var topicSynonymSettings = map[string]bool{"log.retention.hours": true, "log.retention.minutes": true, "log.roll.hours": true}

// Settings returns the broker's typed settings, resolved by
// NewBrokerConfig (a nil BrokerConfig has the defaults).
func (b *BrokerConfig) Settings() BrokerSettings {
	if b == nil || b.settings == nil {
		s, err := b.resolveSettings()
		if err != nil {
			panic(err) // the defaults always resolve: TestBrokerSettingsCoverEverySetting
		}
		return s
	}
	return *b.settings
}

// resolveSettings fills a BrokerSettings from the values. They were
// validated by NewBrokerConfig; an error is a value out of its field's
// range, or a field's tag or type that does not fit its setting (a bug the
// tests catch).
func (b *BrokerConfig) resolveSettings() (BrokerSettings, error) {
	var s BrokerSettings
	v := reflect.ValueOf(&s).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, unit := splitTag(t.Field(i).Tag.Get("config"))
		if _, ok := brokerSettingByName(name); !ok {
			return s, fmt.Errorf("metadata: BrokerSettings.%s names no broker setting %q", t.Field(i).Name, name)
		}
		f := v.Field(i)
		raw := b.value(name)
		switch f.Interface().(type) {
		case bool:
			f.SetBool(raw == "true")
		case string:
			f.SetString(raw)
		case []string:
			f.Set(reflect.ValueOf(b.list(name)))
		case float64:
			x, err := strconv.ParseFloat(raw, 64)
			if err != nil {
				return s, fmt.Errorf("%w: %s=%q: not a number", ErrInvalidConfig, name, raw)
			}
			f.SetFloat(x)
		case time.Duration:
			n, err := parseSettingInt(name, raw)
			if err != nil {
				return s, err
			}
			d := time.Millisecond
			if unit == "minutes" {
				d = time.Minute
			}
			f.SetInt(n * int64(d))
		case int, int16, int32, int64:
			n, err := parseSettingInt(name, raw)
			if err != nil {
				return s, err
			}
			if f.OverflowInt(n) {
				return s, fmt.Errorf("%w: %s=%d is out of range", ErrInvalidConfig, name, n)
			}
			f.SetInt(n)
		default:
			return s, fmt.Errorf("metadata: BrokerSettings.%s has a type Settings cannot fill", t.Field(i).Name)
		}
	}
	return s, nil
}

func splitTag(tag string) (name, unit string) {
	for i := 0; i < len(tag); i++ {
		if tag[i] == ',' {
			return tag[:i], tag[i+1:]
		}
	}
	return tag, ""
}

func parseSettingInt(name, raw string) (int64, error) {
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %s=%q: not an integer", ErrInvalidConfig, name, raw)
	}
	return n, nil
}
