package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterNotLeader sends raw Produce, Fetch, ListOffsets and
// OffsetForLeaderEpoch for a partition to a broker that does not lead it:
// each answers NOT_LEADER_OR_FOLLOWER, and Produce (v10+) and Fetch (v12+)
// name the current leader and its endpoint (KIP-951).
func TestClusterNotLeader(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	if r, err := adm.CreateTopic(ctx, 1, 1, nil, "nl"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	var leader int32
	var topicID [16]byte
	waitFor(t, 10*time.Second, "the partition led", func() error {
		md, err := adm.Metadata(ctx, "nl")
		if err != nil {
			return err
		}
		td := md.Topics["nl"]
		if td.Err != nil || len(td.Partitions) != 1 || td.Partitions[0].Leader < 1 {
			return fmt.Errorf("%+v", td)
		}
		leader, topicID = td.Partitions[0].Leader, td.ID
		return nil
	})
	lead := c.nodes[leader-1]
	other := c.nodes[leader%3] // another node
	direct := c.direct(other.kafka)
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()

	// Produce.
	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "nl", topicID
	pp := kmsg.NewProduceRequestTopicPartition()
	pt.Partitions = append(pt.Partitions, pp)
	preq.Topics = append(preq.Topics, pt)
	resp, err := direct.Request(rctx, preq)
	if err != nil {
		t.Fatalf("produce: %v", err)
	}
	presp := resp.(*kmsg.ProduceResponse)
	if presp.Version < 10 {
		t.Fatalf("produce answered at v%d; KIP-951 needs v10+", presp.Version)
	}
	psp := presp.Topics[0].Partitions[0]
	if psp.ErrorCode != kerr.NotLeaderForPartition.Code || psp.CurrentLeader.LeaderID != leader || psp.CurrentLeader.LeaderEpoch < 0 {
		t.Fatalf("produce at broker %d: %+v", other.id, psp)
	}
	if len(presp.Brokers) != 1 || presp.Brokers[0].NodeID != leader || fmt.Sprintf("%s:%d", presp.Brokers[0].Host, presp.Brokers[0].Port) != lead.kafka {
		t.Fatalf("produce node endpoints %+v, want %d at %s", presp.Brokers, leader, lead.kafka)
	}

	// Fetch.
	freq := kmsg.NewPtrFetchRequest()
	freq.MaxWaitMillis, freq.MinBytes, freq.MaxBytes = 100, 1, 1<<20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "nl", topicID
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch = 1<<20, -1
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	resp, err = direct.Request(rctx, freq)
	if err != nil {
		t.Fatalf("fetch: %v", err)
	}
	fresp := resp.(*kmsg.FetchResponse)
	fsp := fresp.Topics[0].Partitions[0]
	if fresp.Version < 12 || fsp.ErrorCode != kerr.NotLeaderForPartition.Code || fsp.CurrentLeader.LeaderID != leader || fsp.CurrentLeader.LeaderEpoch < 0 {
		t.Fatalf("fetch v%d at broker %d: %+v", fresp.Version, other.id, fsp)
	}
	if fresp.Version >= 16 && (len(fresp.Brokers) != 1 || fresp.Brokers[0].NodeID != leader) {
		t.Fatalf("fetch v%d node endpoints %+v", fresp.Version, fresp.Brokers)
	}

	// ListOffsets.
	lreq := kmsg.NewPtrListOffsetsRequest()
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "nl"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp, lp.CurrentLeaderEpoch = -1, -1
	lt.Partitions = append(lt.Partitions, lp)
	lreq.Topics = append(lreq.Topics, lt)
	resp, err = direct.Request(rctx, lreq)
	if err != nil {
		t.Fatalf("list offsets: %v", err)
	}
	if lsp := resp.(*kmsg.ListOffsetsResponse).Topics[0].Partitions[0]; lsp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("list offsets at broker %d: %+v", other.id, lsp)
	}

	// OffsetForLeaderEpoch.
	oreq := kmsg.NewPtrOffsetForLeaderEpochRequest()
	oreq.ReplicaID = -1
	ot := kmsg.NewOffsetForLeaderEpochRequestTopic()
	ot.Topic = "nl"
	op := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
	op.CurrentLeaderEpoch, op.LeaderEpoch = -1, 0
	ot.Partitions = append(ot.Partitions, op)
	oreq.Topics = append(oreq.Topics, ot)
	resp, err = direct.Request(rctx, oreq)
	if err != nil {
		t.Fatalf("offset for leader epoch: %v", err)
	}
	if osp := resp.(*kmsg.OffsetForLeaderEpochResponse).Topics[0].Partitions[0]; osp.ErrorCode != kerr.NotLeaderForPartition.Code {
		t.Fatalf("offset for leader epoch at broker %d: %+v", other.id, osp)
	}

	// The leader itself takes the same produce (an empty request's
	// records are refused as corrupt, not as a leadership problem).
	resp, err = c.direct(lead.kafka).Request(rctx, preq)
	if err != nil {
		t.Fatalf("produce at the leader: %v", err)
	}
	if lsp := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]; lsp.ErrorCode == kerr.NotLeaderForPartition.Code || lsp.CurrentLeader.LeaderID != -1 {
		t.Fatalf("produce at the leader: %+v", lsp)
	}
}
