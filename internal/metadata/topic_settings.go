package metadata

import (
	"strconv"

	"github.com/stromhq/strom/internal/storage/seglog"
)

// TopicSettings are one topic's configs resolved (topic override, then the
// dynamic and static broker values, then Kafka's default) and typed, for
// the request path: produce and fetch read fields instead of resolving
// every config as strings on every request. A TopicSettings is never
// modified once made; a config change makes a new one, swapped in whole.
type TopicSettings struct {
	// Log is the partition log's settings (retention, segments, batch
	// size, timestamps, flushes).
	Log seglog.Config
	// MinInsyncReplicas is min.insync.replicas: acks=all needs that many
	// replicas in sync.
	MinInsyncReplicas int64
	// DownconversionEnable is message.downconversion.enable: whether old
	// fetch versions (v0-3) may read the topic.
	DownconversionEnable bool
}

// ResolveTopic resolves a topic's settings from its overrides and the
// broker's configs (b may be nil: Kafka's defaults).
func ResolveTopic(overrides map[string]string, b *BrokerConfig) *TopicSettings {
	vals := Resolve(overrides, b)
	s := &TopicSettings{Log: LogConfig(vals)}
	for _, v := range vals {
		switch v.Name {
		case "min.insync.replicas":
			s.MinInsyncReplicas, _ = strconv.ParseInt(v.Value, 10, 64)
		case "message.downconversion.enable":
			s.DownconversionEnable = v.Value == "true"
		}
	}
	return s
}
