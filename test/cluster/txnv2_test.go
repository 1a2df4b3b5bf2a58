package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/record"
)

// apiWrites counts the requests a client wrote, by API key (a
// kgo.HookBrokerWrite).
type apiWrites struct{ n [100]atomic.Int32 }

func (w *apiWrites) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && key >= 0 && int(key) < len(w.n) {
		w.n[key].Add(1)
	}
}

// TestClusterTxnV2: transactions v2 (KIP-890 part 2) in a cluster. Every
// broker finalizes transaction.version 2; franz-go's transactional
// producer writes to a partition led by a broker other than the
// transaction coordinator's without sending AddPartitionsToTxn (the
// leader asks the coordinator to add it: Produce v12), commits with
// EndTxn v5 (the epoch bumped), and a write of the ended transaction
// delayed past its EndTxn (the old epoch, Produce v12 at the remote
// leader, to its partition and to one it never touched) is refused and
// joins nothing; the next transaction at the new epoch works, and
// read_committed sees the two transactions' records only. On main the
// cluster finalized transaction.version 1 (franz-go sent
// AddPartitionsToTxn, one epoch per session).
func TestClusterTxnV2(t *testing.T) {
	c := startCluster(t, 3, txnClusterProps...)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "v2"); err != nil {
		t.Fatal(err)
	}
	c.waitLed(c.nodes[0].kafka, "v2", 3)

	for _, nd := range c.nodes {
		waitFor(t, 30*time.Second, "transaction.version 2 at "+nd.kafka, func() error {
			resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, c.direct(nd.kafka))
			if err != nil {
				return err
			}
			for _, f := range resp.FinalizedFeatures {
				if f.Name == "transaction.version" {
					if f.MaxVersionLevel != 2 {
						t.Fatalf("%s finalizes transaction.version %d, want 2", nd.kafka, f.MaxVersionLevel)
					}
					return nil
				}
			}
			return errors.New("no transaction.version finalized yet")
		})
	}

	writes := &apiWrites{}
	cl, err := kgo.NewClient(append(c.clientOpts, kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("v2-id"),
		kgo.TransactionTimeout(60*time.Second), kgo.WithHooks(writes), kgo.RecordRetries(20))...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// franz-go opts in to transactions v2 at BeginTransaction if a broker
	// it has talked to finalized the feature: InitProducerId first (which
	// also makes __transaction_state).
	if _, _, err := cl.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	var md kadm.Metadata
	waitFor(t, 30*time.Second, "__transaction_state-0 led", func() error {
		var err error
		if md, err = adm.Metadata(ctx, "v2", "__transaction_state"); err != nil {
			return err
		}
		if p, ok := md.Topics["__transaction_state"].Partitions[0]; !ok || p.Leader <= 0 {
			return errors.New("no leader yet")
		}
		return nil
	})
	coord := md.Topics["__transaction_state"].Partitions[0].Leader
	var remote, other int32 = -1, -1 // partitions led off the coordinator's broker
	for i := range int32(3) {
		if md.Topics["v2"].Partitions[i].Leader == coord {
			continue
		}
		if remote < 0 {
			remote = i
		} else {
			other = i
		}
	}
	if remote < 0 {
		t.Fatalf("no partition off the coordinator's broker %d: %+v", coord, md.Topics["v2"].Partitions)
	}
	if other < 0 { // two partitions on the coordinator: use one of them
		other = (remote + 1) % 3
	}
	leader := c.nodes[md.Topics["v2"].Partitions[remote].Leader-1].kafka

	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "v2", Partition: remote, Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatalf("transactional produce to partition %d (coordinator %d): %v", remote, coord, err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if n := writes.n[24].Load(); n != 0 {
		t.Fatalf("the client sent %d AddPartitionsToTxn: it used transactions v1", n)
	}
	if n := writes.n[0].Load(); n == 0 {
		t.Fatal("no Produce written")
	}
	_, epoch2, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if epoch2 <= epoch {
		t.Fatalf("epoch %d after EndTxn, was %d: not bumped (EndTxn v5)", epoch2, epoch)
	}

	// The ended transaction's delayed writes, at its epoch, to the
	// partition it wrote and to one it never touched.
	ends, err := adm.ListEndOffsets(ctx, "v2")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []int32{remote, other} {
		batch, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, Transactional: true, BaseTimestamp: time.Now().UnixMilli(),
			ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 1}, []record.Record{{Value: []byte("late")}})
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 12, -1, 10000, kmsg.StringPtr("v2-id")
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = "v2", md.Topics["v2"].ID // the client picks the version: v13+ names topics by id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition, rp.Records = part, batch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		at := c.nodes[md.Topics["v2"].Partitions[part].Leader-1].kafka
		resp, err := req.RequestWith(ctx, c.direct(at))
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidProducerEpoch.Code && code != kerr.ProducerFenced.Code {
			t.Fatalf("late Produce v12+ to partition %d at %s (coordinator %d): %v, want fenced", part, at, coord, kerr.ErrorForCode(code))
		}
	}
	after, err := adm.ListEndOffsets(ctx, "v2")
	if err != nil {
		t.Fatal(err)
	}
	for _, part := range []int32{remote, other} {
		a, _ := ends.Lookup("v2", part)
		b, _ := after.Lookup("v2", part)
		if a.Offset != b.Offset {
			t.Fatalf("v2-%d end offset %d -> %d: a late write landed", part, a.Offset, b.Offset)
		}
	}

	// The next transaction, at the bumped epoch, on the same remote leader.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "v2", Partition: remote, Value: []byte("two")}, &kgo.Record{Topic: "v2", Partition: other, Value: []byte("three")}).FirstErr(); err != nil {
		t.Fatalf("next transaction: %v", err)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if n := writes.n[24].Load(); n != 0 {
		t.Fatalf("the client sent %d AddPartitionsToTxn", n)
	}
	got := consumeValues(t, c.seeds(), "v2", 3)
	if fmt.Sprint(got) != "map[one:1 three:1 two:1]" {
		t.Fatalf("read_committed: %v, want one, two, three once each", got)
	}
	t.Logf("coordinator %d, remote partition %d led at %s; read_committed: %v", coord, remote, leader, got)
}
