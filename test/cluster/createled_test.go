package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestCreateTopicsAnswersOnceLed: CreateTopics answers once every new
// partition has a leader, and each leader counts its followers in sync
// from its first moment, so a producer that starts right after the answer
// finds every partition led and is not refused: one acks=all record per
// partition with no retry allowed succeeds (min.insync.replicas=2).
// Before, the metadata said LEADER_NOT_AVAILABLE for a moment and a new
// leader answered NOT_ENOUGH_REPLICAS until its next tick; franz-go waits
// its metadata age (5 s by default) before it looks again, so a benchmark
// round stalled 3.5-4.5 s at its start.
func TestCreateTopicsAnswersOnceLed(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for round := range 3 {
		nd := c.nodes[round]
		topic := "led-" + string(rune('a'+round))
		const partitions = 8
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 30000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 3
		two := "2"
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = "min.insync.replicas", &two
		rt.Configs = append(rt.Configs, cfg)
		req.Topics = append(req.Topics, rt)
		resp, err := c.direct(nd.kafka).Request(ctx, req)
		if err != nil {
			t.Fatalf("create %s on node %d: %v", topic, nd.id, err)
		}
		if code := resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode; code != 0 {
			t.Fatalf("create %s on node %d: error code %d", topic, nd.id, code)
		}

		// Seeded with the node that answered: its metadata is what the
		// producer reads first.
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(nd.kafka), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(0), kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.clientOpts...)...)
		if err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for p := range int32(partitions) {
			recs = append(recs, &kgo.Record{Partition: p, Value: []byte("v")})
		}
		res := cl.ProduceSync(ctx, recs...)
		cl.Close()
		for _, r := range res {
			if r.Err != nil {
				t.Errorf("%s[%d], produced right after the creation on node %d: %v", topic, r.Record.Partition, nd.id, r.Err)
			}
		}
	}
}
