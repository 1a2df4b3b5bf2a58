package cluster

import (
	"testing"

	"github.com/stromhq/strom/internal/metadata"
)

// TestOffsetsTopicIsCompacted: the offsets topic is compacted, also when
// it was created before the log cleaner existed (overrides without
// cleanup.policy), and an explicit policy is kept.
func TestOffsetsTopicIsCompacted(t *testing.T) {
	c := &Cluster{}
	old := metadata.Topic{Name: OffsetsTopic, Internal: true, Configs: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"}}
	if s := c.resolveSettings(old); !s.Log.Compaction.Enabled || s.Log.RetentionMs >= 0 {
		t.Fatalf("old offsets topic: %+v", s.Log)
	}
	if _, set := old.Configs["cleanup.policy"]; set {
		t.Fatal("resolving changed the topic's stored configs")
	}
	if s := c.resolveSettings(c.newTopic(TopicSpec{Name: OffsetsTopic, Partitions: 1})); !s.Log.Compaction.Enabled {
		t.Fatalf("new offsets topic: %+v", s.Log)
	}
	other := metadata.Topic{Name: "orders", Configs: map[string]string{}}
	if s := c.resolveSettings(other); s.Log.Compaction.Enabled {
		t.Fatal("a plain topic is compacted")
	}
}
