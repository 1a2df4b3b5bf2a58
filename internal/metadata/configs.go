package metadata

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// ErrInvalidConfig is returned for an unknown config name or a bad value.
var ErrInvalidConfig = errors.New("invalid config")

// ConfigType is a config's value type, as DescribeConfigs v3+ reports it.
type ConfigType int8

// Kafka's config types (DescribeConfigs ConfigType).
const (
	TypeBoolean ConfigType = 1
	TypeString  ConfigType = 2
	TypeInt     ConfigType = 3
	TypeShort   ConfigType = 4
	TypeLong    ConfigType = 5
	TypeDouble  ConfigType = 6
	TypeList    ConfigType = 7
	// TypePassword values are never shown: DescribeConfigs marks them
	// sensitive and returns no value.
	TypePassword ConfigType = 9
)

// Source says where a config's value came from (DescribeConfigs ConfigSource).
type Source int8

// Kafka's config sources.
const (
	SourceTopic                Source = 1 // DYNAMIC_TOPIC_CONFIG
	SourceDynamicBroker        Source = 2 // DYNAMIC_BROKER_CONFIG (AlterConfigs on this broker's id)
	SourceDynamicDefaultBroker Source = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG (AlterConfigs on "")
	SourceStaticBroker         Source = 4 // STATIC_BROKER_CONFIG (--config file)
	SourceDefault              Source = 5 // DEFAULT_CONFIG
)

// TopicConfig describes one topic-level config.
type TopicConfig struct {
	Name     string
	Broker   string // the broker-level synonym ("log.retention.ms")
	Default  string
	Type     ConfigType
	Doc      string
	validate func(string) error
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(vals, ", "))
	}
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		if n < lo || n > hi {
			return fmt.Errorf("must be in [%d, %d]", lo, hi)
		}
		return nil
	}
}

func gzipLevel(v string) error {
	if v == "-1" {
		return nil
	}
	if err := intRange(1, 9)(v); err != nil {
		return fmt.Errorf("must be -1 or in [1, 9]")
	}
	return nil
}

// cleanupPolicy accepts a non-empty list of delete and compact, each once.
func cleanupPolicy(v string) error {
	seen := map[string]bool{}
	for _, item := range strings.Split(v, ",") {
		item = strings.TrimSpace(item)
		if item != "delete" && item != "compact" {
			return fmt.Errorf("must be delete, compact or compact,delete")
		}
		if seen[item] {
			return fmt.Errorf("%s listed twice", item)
		}
		seen[item] = true
	}
	return nil
}

// CleanupPolicy parses a validated cleanup.policy into its two flags.
func CleanupPolicy(v string) (compact, del bool) {
	for _, item := range strings.Split(v, ",") {
		switch strings.TrimSpace(item) {
		case "compact":
			compact = true
		case "delete":
			del = true
		}
	}
	return compact, del
}

func ratio(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return fmt.Errorf("must be a number in [0, 1]")
	}
	return nil
}

// kafkaVersion accepts the forms of Kafka's MetadataVersion strings:
// "2.8", "0.10.2", "3.0-IV1", "0.10.0-IV1".
func kafkaVersion(v string) error {
	base, iv, hasIV := strings.Cut(v, "-IV")
	parts := strings.Split(base, ".")
	ok := len(parts) >= 2 && len(parts) <= 4
	for _, p := range parts {
		ok = ok && digits(p)
	}
	if !ok || hasIV && !digits(iv) {
		return fmt.Errorf("not a Kafka version (like 2.8 or 3.0-IV1)")
	}
	return nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

func boolean(v string) error {
	if v != "true" && v != "false" {
		return fmt.Errorf("must be true or false")
	}
	return nil
}

const maxLong = math.MaxInt64

// topicConfigs lists the topic configs Strom knows, with Kafka's defaults.
var topicConfigs = []TopicConfig{
	{"cleanup.policy", "log.cleanup.policy", "delete", TypeList, "delete old segments (delete), keep the latest record per key (compact), or both (compact,delete)",
		cleanupPolicy},
	{"retention.ms", "log.retention.ms", "604800000", TypeLong, "how long to keep a segment after its newest record; -1 forever", intRange(-1, maxLong)},
	{"retention.bytes", "log.retention.bytes", "-1", TypeLong, "size above which the oldest segments are deleted; -1 unlimited", intRange(-1, maxLong)},
	{"segment.bytes", "log.segment.bytes", "1073741824", TypeInt, "segment file size before rolling", intRange(14, math.MaxInt32)},
	{"segment.ms", "log.roll.ms", "604800000", TypeLong, "segment age before rolling", intRange(1, maxLong)},
	{"segment.index.bytes", "log.index.size.max.bytes", "10485760", TypeInt, "maximum size of an index file", intRange(4, math.MaxInt32)},
	{"index.interval.bytes", "log.index.interval.bytes", "4096", TypeInt, "bytes between offset index entries", intRange(0, math.MaxInt32)},
	{"flush.messages", "log.flush.interval.messages", "9223372036854775807", TypeLong, "fsync after this many records (acks=all always fsyncs)", intRange(1, maxLong)},
	{"flush.ms", "log.flush.interval.ms", "9223372036854775807", TypeLong, "fsync after this long (acks=all always fsyncs)", intRange(0, maxLong)},
	{"max.message.bytes", "message.max.bytes", "1048588", TypeInt, "largest record batch accepted", intRange(0, math.MaxInt32)},
	{"message.timestamp.type", "log.message.timestamp.type", "CreateTime", TypeString, "CreateTime or LogAppendTime", oneOf("CreateTime", "LogAppendTime")},
	{"min.insync.replicas", "min.insync.replicas", "1", TypeInt, "replicas that must have a record for acks=all", intRange(1, math.MaxInt32)},
	{"compression.type", "compression.type", "producer", TypeString, "the codec batches are stored with: producer keeps the producer's; uncompressed, gzip, snappy, lz4 or zstd recompress a batch sent with another", oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd")},
	{"compression.gzip.level", "compression.gzip.level", "-1", TypeInt, "gzip level when the broker recompresses (1-9, -1 the default)", gzipLevel},
	{"compression.lz4.level", "compression.lz4.level", "9", TypeInt, "lz4 level when the broker recompresses (1-17: the fast compressor at 9, the high-compression one at others, as Kafka)", intRange(1, 17)},
	{"compression.zstd.level", "compression.zstd.level", "3", TypeInt, "zstd level when the broker recompresses (-131072-22)", intRange(-131072, 22)},
	{"message.downconversion.enable", "log.message.downconversion.enable", "true", TypeBoolean, "serve old fetch versions by converting batches", boolean},
	{"unclean.leader.election.enable", "unclean.leader.election.enable", "false", TypeBoolean, "single node: no effect", boolean},
	{"delete.retention.ms", "log.cleaner.delete.retention.ms", "86400000", TypeLong, "compaction: how long a tombstone is kept after the cleaning pass that first found it the latest value of its key", intRange(0, maxLong)},
	{"min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms", "0", TypeLong, "compaction: a record stays uncompacted at least this long", intRange(0, maxLong)},
	{"max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms", "9223372036854775807", TypeLong, "compaction: a log whose oldest dirty segment is older than this is cleaned whatever its dirty ratio", intRange(1, maxLong)},
	{"min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio", "0.5", TypeDouble, "compaction: clean a log once this share of its cleanable bytes is dirty (not yet cleaned)", ratio},
	{"file.delete.delay.ms", "log.segment.delete.delay.ms", "60000", TypeLong, "segments are deleted at once in Strom", intRange(0, maxLong)},
	{"preallocate", "log.preallocate", "false", TypeBoolean, "preallocate segment files (not used)", boolean},
	// Deprecated in Kafka 3.x and ignored from inter.broker.protocol.version
	// 3.0 on (KIP-724); Kafka 3.x still accepts it, so clients written for
	// it (librdkafka's test 0092) set it. Accepted, stored, shown, ignored.
	{"message.format.version", "log.message.format.version", "3.0-IV1", TypeString, "ignored (deprecated in Kafka 3.x, removed in 4.0): every batch is stored as the producer sent it", kafkaVersion},
}

var topicConfigByName = func() map[string]*TopicConfig {
	m := map[string]*TopicConfig{}
	for i := range topicConfigs {
		m[topicConfigs[i].Name] = &topicConfigs[i]
	}
	return m
}()

// TopicConfigs returns the known topic configs sorted by name.
func TopicConfigs() []TopicConfig {
	out := append([]TopicConfig(nil), topicConfigs...)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LookupTopicConfig returns a topic config's definition.
func LookupTopicConfig(name string) (TopicConfig, bool) {
	c, ok := topicConfigByName[name]
	if !ok {
		return TopicConfig{}, false
	}
	return *c, true
}

// ValidateTopicConfig checks one name=value pair.
func ValidateTopicConfig(name, value string) error {
	c, ok := topicConfigByName[name]
	if !ok {
		return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, name)
	}
	if err := c.validate(value); err != nil {
		return fmt.Errorf("%w: %s=%q: %v", ErrInvalidConfig, name, value, err)
	}
	return nil
}

// ConfigValue is a resolved config with its source.
type ConfigValue struct {
	TopicConfig
	Value  string
	Source Source
}

// Resolve returns every topic config's value for a topic with overrides,
// falling back to the broker's configs (dynamic, then static), then to
// Kafka's defaults.
func Resolve(overrides map[string]string, broker *BrokerConfig) []ConfigValue {
	out := make([]ConfigValue, 0, len(topicConfigs))
	for _, c := range TopicConfigs() {
		v := ConfigValue{TopicConfig: c, Value: c.Default, Source: SourceDefault}
		if bv, src, ok := broker.topicDefault(c); ok {
			v.Value, v.Source = bv, src
		}
		if ov, ok := overrides[c.Name]; ok {
			v.Value, v.Source = ov, SourceTopic
		}
		out = append(out, v)
	}
	return out
}

// LogConfig turns resolved configs into the partition log's settings.
func LogConfig(vals []ConfigValue) seglog.Config {
	get := func(name string) int64 {
		for _, v := range vals {
			if v.Name == name {
				n, _ := strconv.ParseInt(v.Value, 10, 64)
				return n
			}
		}
		return 0
	}
	str := func(name string) string {
		for _, v := range vals {
			if v.Name == name {
				return v.Value
			}
		}
		return ""
	}
	ms := func(name string) time.Duration {
		n := get(name)
		if n < 0 {
			return -1
		}
		if n > math.MaxInt64/int64(time.Millisecond) {
			return 0 // effectively never
		}
		return time.Duration(n) * time.Millisecond
	}
	cfg := seglog.Config{
		SegmentBytes:       get("segment.bytes"),
		SegmentMs:          ms("segment.ms"),
		IndexIntervalBytes: get("index.interval.bytes"),
		IndexMaxBytes:      get("segment.index.bytes"),
		RetentionMs:        ms("retention.ms"),
		RetentionBytes:     get("retention.bytes"),
		MaxBatchBytes:      int(get("max.message.bytes")),
		LogAppendTime:      str("message.timestamp.type") == "LogAppendTime",
	}
	if cfg.SegmentMs == 0 {
		cfg.SegmentMs = time.Duration(math.MaxInt64)
	}
	cfg.Compaction = compactionConfig(str)
	cfg.Compression = compressionConfig(str("compression.type"), get)
	if cfg.Compaction.Enabled && !cfg.Compaction.AlsoDelete {
		// compact alone: segments are never deleted by age or size.
		cfg.RetentionMs, cfg.RetentionBytes = -1, -1
	}
	if cfg.RetentionMs == 0 {
		// retention.ms=0 in Kafka deletes at once; a log needs a positive
		// duration, so use the smallest.
		cfg.RetentionMs = time.Millisecond
	}
	if fm := get("flush.messages"); fm != maxLong {
		cfg.FlushMessages = fm
	}
	if fms := get("flush.ms"); fms != maxLong {
		cfg.FlushMs = ms("flush.ms")
		if cfg.FlushMs == 0 {
			cfg.FlushMessages = 1 // flush.ms=0: after every append
		}
	}
	if cfg.IndexIntervalBytes == 0 {
		cfg.IndexIntervalBytes = 1 // an entry per batch
	}
	return cfg
}

// compressionConfig reads compression.type and the level of its codec.
func compressionConfig(typ string, get func(string) int64) seglog.Compression {
	codecs := map[string]record.Codec{"uncompressed": record.CodecNone, "gzip": record.CodecGzip,
		"snappy": record.CodecSnappy, "lz4": record.CodecLZ4, "zstd": record.CodecZstd}
	c, ok := codecs[typ]
	if !ok {
		return seglog.Compression{} // producer
	}
	out := seglog.Compression{Recompress: true, Codec: c}
	switch c {
	case record.CodecGzip:
		out.Level = int(get("compression.gzip.level"))
	case record.CodecLZ4:
		out.Level = int(get("compression.lz4.level"))
	case record.CodecZstd:
		out.Level = int(get("compression.zstd.level"))
	}
	return out
}

// compactionConfig reads the cleaner's topic configs.
func compactionConfig(str func(string) string) seglog.Compaction {
	// Durations saturate: a huge value (max.compaction.lag.ms's default)
	// means never, not zero.
	ms := func(name string) time.Duration {
		n, _ := strconv.ParseInt(str(name), 10, 64)
		if n > math.MaxInt64/int64(time.Millisecond) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(max(n, 0)) * time.Millisecond
	}
	var c seglog.Compaction
	c.Enabled, c.AlsoDelete = CleanupPolicy(str("cleanup.policy"))
	c.MinCleanableRatio, _ = strconv.ParseFloat(str("min.cleanable.dirty.ratio"), 64)
	c.MinLag = ms("min.compaction.lag.ms")
	c.MaxLag = ms("max.compaction.lag.ms")
	c.DeleteRetention = ms("delete.retention.ms")
	return c
}
