package group

import (
	"log/slog"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// Topics is what the coordinator needs of the broker's topics and
// partitions. The broker's cluster state has it; the broker wires the two
// (this package does not know that one).
type Topics interface {
	// OffsetsPartition returns the offsets topic's partition, creating
	// the topic when create is set; (nil, nil) when it does not exist.
	OffsetsPartition(create bool) (*partition.Partition, error)
	Topic(name string) (metadata.Topic, bool)
	Topics() []metadata.Topic
	Partition(topic string, index int32) (*partition.Partition, error)
	// Broker is the broker's configuration (the group settings).
	Broker() *metadata.BrokerConfig
	// Replicated reports whether the broker is a node of a cluster: then
	// the coordinator follows the offsets partition's leader.
	Replicated() bool
}

// ConfigFor is the Config of the coordinator of c: the partition of its
// offsets topic (__consumer_offsets, created at the first group
// FindCoordinator or on first write), its topics and high watermarks, and
// the broker's group settings under their Kafka names; in a cluster it
// follows the leader of the offsets partition. The caller also
// registers TopicDeleted for topic deletions.
func ConfigFor(c Topics, logger *slog.Logger) Config {
	bs := c.Broker().Settings()
	return Config{
		OffsetsLog:   c.OffsetsPartition,
		FollowLeader: c.Replicated(),
		TopicExists: func(topic string) bool {
			_, ok := c.Topic(topic)
			return ok
		},
		HighWatermark: func(topic string, partition int32) (int64, bool) {
			p, err := c.Partition(topic, partition)
			if err != nil {
				return 0, false
			}
			return p.HighWatermark(), true
		},
		Topics: func() map[string]int32 {
			out := map[string]int32{}
			// Internal topics included: Kafka's broker-side regex
			// resolution does not skip them (a pattern naming
			// __consumer_offsets gets it), and franz-go's suite checks it.
			for _, t := range c.Topics() {
				out[t.Name] = t.Partitions
			}
			return out
		},
		Logger:                    logger,
		InitialRebalanceDelay:     bs.GroupInitialRebalanceDelay,
		MinSessionTimeout:         bs.GroupMinSessionTimeout,
		MaxSessionTimeout:         bs.GroupMaxSessionTimeout,
		OffsetsRetention:          bs.OffsetsRetention,
		RetentionCheckInterval:    bs.OffsetsRetentionCheckInterval,
		MaxMetadataBytes:          bs.OffsetMetadataMaxBytes,
		ConsumerSessionTimeout:    bs.GroupConsumerSessionTimeout,
		ConsumerHeartbeatInterval: bs.GroupConsumerHeartbeatInterval,
	}
}
