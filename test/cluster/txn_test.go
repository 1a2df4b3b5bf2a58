package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/stromhq/strom/internal/record"
)

// TestClusterTransactions: transactions across brokers. Three nodes, an
// input and an output topic of three one-replica partitions each (so
// placed on the three brokers), and a franz-go GroupTransactSession
// pipeline between them: the transaction coordinator (the leader of
// __transaction_state-0, which every broker's FindCoordinator names)
// writes markers to the partitions other brokers lead, and they ask it to
// verify the first transactional write of each transaction (KIP-890
// part 1). The output read with read_committed holds each input exactly
// once. On main the cluster refused the transactional producer.
func TestClusterTransactions(t *testing.T) {
	c := startCluster(t, 3, txnClusterProps...)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, topic := range []string{"txin", "txout"} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		c.waitLed(c.nodes[0].kafka, topic, 3)
	}
	const n = 300
	produce(t, c.seeds(), "txin", "in", n)

	// Every broker names the same coordinator: __transaction_state-0's
	// leader.
	coord := int32(-1)
	for _, nd := range c.nodes {
		waitFor(t, 30*time.Second, "FindCoordinator(transaction) at "+nd.kafka, func() error {
			req := kmsg.NewPtrFindCoordinatorRequest()
			req.CoordinatorType, req.CoordinatorKeys = 1, []string{"etl"}
			resp, err := req.RequestWith(ctx, c.direct(nd.kafka))
			if err != nil {
				return err
			}
			if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
				return fmt.Errorf("%+v", resp.Coordinators)
			}
			if id := resp.Coordinators[0].NodeID; coord >= 0 && id != coord {
				t.Fatalf("broker at %s names coordinator %d, another named %d", nd.kafka, id, coord)
			} else {
				coord = id
			}
			return nil
		})
	}
	md, err := adm.Metadata(ctx, "__transaction_state", "txout")
	if err != nil {
		t.Fatal(err)
	}
	if lead := md.Topics["__transaction_state"].Partitions[0].Leader; lead != coord {
		t.Fatalf("coordinator %d, __transaction_state-0 led by %d", coord, lead)
	}
	remote := 0
	for _, p := range md.Topics["txout"].Partitions {
		if p.Leader != coord {
			remote++
		}
	}
	if remote == 0 {
		t.Fatalf("every output partition is on the coordinator's broker %d: nothing crosses brokers", coord)
	}
	t.Logf("coordinator: broker %d; %d of 3 output partitions on other brokers", coord, remote)

	runPipeline(t, ctx, c.seeds(), "etl", "txin", "txout", n, nil)
	got := consumeCommitted(t, c.seeds(), "txout", n)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
}

// runPipeline copies topic in to topic out (value "out-" + the input's)
// in transactions of a GroupTransactSession until n inputs were committed;
// mid is called (if set) in each transaction, once its records are handed
// to the producer and before its end, with the inputs committed so far.
func runPipeline(t *testing.T, ctx context.Context, seeds []string, id, in, out string, n int, mid func(done int), opts ...kgo.Opt) {
	t.Helper()
	sess, err := kgo.NewGroupTransactSession(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.TransactionalID(id),
		kgo.ConsumerGroup(id + "-group"), kgo.ConsumeTopics(in), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.TransactionTimeout(20 * time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	done, txns, aborts := 0, 0, 0
	for done < n {
		fs := sess.PollRecords(ctx, 10) // many small transactions
		if ctx.Err() != nil {
			t.Fatalf("pipeline: %d of %d committed: %v", done, n, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		if fs.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			t.Fatalf("begin: %v", err)
		}
		batch := 0
		// franz-go commits what succeeded if asked to: a failed produce
		// must turn the commit into an abort (its own example's way).
		failed := kgo.AbortingFirstErrPromise(sess.Client())
		fs.EachRecord(func(r *kgo.Record) {
			batch++
			sess.Produce(ctx, &kgo.Record{Topic: out, Value: []byte("out-" + string(r.Value))}, failed.Promise())
		})
		if mid != nil {
			mid(done) // the transaction's records are produced or in flight
		}
		if err := failed.Err(); err != nil {
			t.Logf("transactional produce: %v", err)
		}
		committed, err := sess.End(ctx, failed.Err() == nil)
		switch {
		case err != nil:
			t.Logf("end of transaction: %v", err)
			aborts++
		case committed:
			done += batch
			txns++
		default:
			aborts++
		}
	}
	t.Logf("pipeline: %d inputs in %d committed transactions, %d aborted or failed", done, txns, aborts)
}

// consumeCommitted reads topic with read_committed from the start until
// want records came, and fails on a record read twice; then it reads on
// for a moment to catch extra ones.
func consumeCommitted(t *testing.T, seeds []string, topic string, want int, opts ...kgo.Opt) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := poll(t, cl, want, false)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
		if !strings.HasPrefix(string(r.Value), "out-") || got[string(r.Value)] {
			t.Fatalf("record %q read twice or unexpected", r.Value)
		}
		t.Fatalf("extra record %q", r.Value)
	})
	return got
}

// TestClusterTransactionsSurviveKill: the pipeline of
// TestClusterTransactions with a kill -9 of a broker that leads input and
// output partitions (not the coordinator) after a third of the inputs, and
// of the coordinator's broker after two thirds, each in the middle of a
// transaction (its records produced or in flight, its end not asked) and
// restarted a second later: markers to a dead broker are retried until it is back, and the
// restarted coordinator finishes what it had decided from its log. The
// output read with read_committed still holds each input exactly once.
func TestClusterTransactionsSurviveKill(t *testing.T) {
	c := startCluster(t, 3, txnClusterProps...)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, topic := range []string{"txin", "txout"} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		c.waitLed(c.nodes[0].kafka, topic, 3)
	}
	const n = 600
	produce(t, c.seeds(), "txin", "in", n)
	coord := int32(-1)
	waitFor(t, 30*time.Second, "the transaction coordinator", func() error {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = 1, []string{"etl"}
		resp, err := req.RequestWith(ctx, c.direct(c.nodes[0].kafka))
		if err != nil {
			return err
		}
		if resp.Coordinators[0].ErrorCode != 0 {
			return kerr.ErrorForCode(resp.Coordinators[0].ErrorCode)
		}
		coord = resp.Coordinators[0].NodeID
		return nil
	})
	other := c.nodes[coord%3] // a broker that is not the coordinator
	kills := []*node{other, c.nodes[coord-1]}
	next := 0
	runPipeline(t, ctx, c.seeds(), "etl", "txin", "txout", n, func(done int) {
		if next < len(kills) && done >= (next+1)*n/3 {
			victim := kills[next]
			next++
			t.Logf("kill -9 broker %d after %d inputs", victim.id, done)
			victim.proc.Kill(t)
			time.Sleep(time.Second) // the broker stays down while the pipeline runs on
			c.start(victim)
		}
	})
	if next != len(kills) {
		t.Fatalf("%d of %d kills done", next, len(kills))
	}
	got := consumeCommitted(t, c.seeds(), "txout", n)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
}

// TestClusterTxnVerifyAcrossBrokers: KIP-890 part 1 when the partition's
// broker is not the coordinator's. A producer with an ongoing transaction
// on one partition sends a transactional batch straight to another
// partition, led by another broker, that it never added: that broker asks
// the coordinator, which says no, so the batch is refused
// (INVALID_TXN_STATE) and nothing is written. A verification that let
// everything through would fail here, not in the pipeline tests. The batch
// goes at Produce v11: from v12 (transactions v2) it would add its
// partition itself (TestClusterTxnV2).
func TestClusterTxnVerifyAcrossBrokers(t *testing.T) {
	c := startCluster(t, 3, txnClusterProps...)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "tv"); err != nil {
		t.Fatal(err)
	}
	c.waitLed(c.nodes[0].kafka, "tv", 3)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("tv-id"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	md, err := adm.Metadata(ctx, "tv", "__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	coord := md.Topics["__transaction_state"].Partitions[0].Leader
	var added, target int32 = -1, -1 // partitions: one in the transaction, one on another broker than the coordinator
	for i := range int32(3) {
		if p := md.Topics["tv"].Partitions[i]; p.Leader != coord && target < 0 {
			target = i
		} else if added < 0 {
			added = i
		}
	}
	if target < 0 || added < 0 {
		t.Fatalf("no partition off the coordinator's broker %d: %+v", coord, md.Topics["tv"].Partitions)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "tv", Partition: added, Value: []byte("in")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := cl.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	batch, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, Transactional: true, BaseTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: 0}, []record.Record{{Value: []byte("sneaked")}})
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 10000, kmsg.StringPtr("tv-id")
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = "tv", md.Topics["tv"].ID // the client picks the version: v13+ names topics by id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = target, batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	leader := c.nodes[md.Topics["tv"].Partitions[target].Leader-1].kafka
	// Produce v11 at most: from v12 (transactions v2, which the cluster
	// finalizes) a transactional produce adds its partition itself, and
	// this checks KIP-890 part 1's refusal of one that was not added.
	v1, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(leader), kgo.MaxVersions(kversion.V3_9_0())}, c.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer v1.Close()
	resp, err := req.RequestWith(ctx, v1.SeedBrokers()[0])
	if err != nil {
		t.Fatal(err)
	}
	if resp.Version >= 12 {
		t.Fatalf("Produce v%d: want v11 at most", resp.Version)
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidTxnState.Code {
		t.Fatalf("unadded partition %d (coordinator %d, leader at %s): %v, want INVALID_TXN_STATE", target, coord, leader, kerr.ErrorForCode(code))
	}
	ends, err := adm.ListEndOffsets(ctx, "tv")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("tv", target); o.Offset != 0 {
		t.Fatalf("tv-%d end offset %d after the refused batch, want 0", target, o.Offset)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}

// txnClusterProps: one replica of __consumer_offsets, so the transaction
// log is placed with it and the two coordinators share a broker (the
// offsets' marker is written in process); TestClusterTxnOffsetsReplicated
// runs the replicated default, with the coordinators apart.
var txnClusterProps = []string{"offsets.topic.replication.factor=1"}

// TestClusterTxnOffsetsReplicated: exactly-once consume-transform-produce
// with a replicated __consumer_offsets (offsets.topic.replication.factor
// left at its default, 3), where the group coordinator (that partition's
// leader) and the transaction coordinator need not share a broker. The
// offsets of a transaction go to the offsets partition as the producer's
// transactional batch and are committed by its marker there, written in
// process or through WriteTxnMarkers: the test puts the two coordinators
// on different brokers first. After half of the inputs, in the middle of
// a transaction, the broker leading __consumer_offsets-0 is
// killed -9 (and restarted a second later): the new leader replays the
// log, pending offsets and markers included. The output read with
// read_committed holds each input exactly once, and the group's committed
// offsets end at the input's end. On main AddOffsetsToTxn was refused
// (INVALID_TXN_STATE) in this cluster.
func TestClusterTxnOffsetsReplicated(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, topic := range []string{"txin", "txout"} {
		if _, err := adm.CreateTopic(ctx, 3, 1, nil, topic); err != nil {
			t.Fatalf("create %s: %v", topic, err)
		}
		c.waitLed(c.nodes[0].kafka, topic, 3)
	}
	const n = 600
	produce(t, c.seeds(), "txin", "in", n)
	offsetsLeader := func() int32 {
		var lead int32 = -1
		waitFor(t, 30*time.Second, "__consumer_offsets-0 led, with 3 replicas", func() error {
			md, err := adm.Metadata(ctx, "__consumer_offsets")
			if err != nil {
				return err
			}
			td, ok := md.Topics["__consumer_offsets"]
			if !ok || td.Err != nil || len(td.Partitions) == 0 {
				return fmt.Errorf("no __consumer_offsets yet: %v", td.Err)
			}
			p := td.Partitions[0]
			if len(p.Replicas) != 3 {
				t.Fatalf("__consumer_offsets-0 has replicas %v, want 3", p.Replicas)
			}
			if p.Leader < 1 {
				return fmt.Errorf("no leader")
			}
			lead = p.Leader
			return nil
		})
		return lead
	}
	// The offsets topic exists from the group's first FindCoordinator.
	waitFor(t, 30*time.Second, "FindCoordinator(group)", func() error {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = 0, []string{"etl-group"}
		resp, err := req.RequestWith(ctx, c.direct(c.nodes[0].kafka))
		if err != nil {
			return err
		}
		return kerr.ErrorForCode(resp.Coordinators[0].ErrorCode)
	})
	// The two coordinators on different brokers: the transaction's marker
	// to the offsets partition then goes through WriteTxnMarkers, and
	// the partition verifies the producer with the coordinator remotely.
	coord := c.txnCoordinator(ctx)
	waitFor(t, 60*time.Second, "the group and transaction coordinators apart", func() error {
		lead := offsetsLeader()
		if lead != coord {
			return nil
		}
		order := []int32{coord%3 + 1, (coord+1)%3 + 1, coord}
		req := kadm.AlterPartitionAssignmentsReq{}
		req.Assign("__consumer_offsets", 0, order)
		if _, err := adm.AlterPartitionAssignments(ctx, req); err != nil {
			return fmt.Errorf("reorder %v: %w", order, err)
		}
		if _, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{"__consumer_offsets": {0: {}}}); err != nil {
			return fmt.Errorf("elect: %w", err)
		}
		return fmt.Errorf("both on broker %d; electing %d", lead, order[0])
	})
	t.Logf("group coordinator: broker %d, transaction coordinator: broker %d", offsetsLeader(), coord)
	killed := false
	runPipeline(t, ctx, c.seeds(), "etl", "txin", "txout", n, func(done int) {
		if killed || done < n/2 {
			return
		}
		killed = true
		victim := c.nodes[offsetsLeader()-1]
		t.Logf("kill -9 broker %d (leads __consumer_offsets-0; transaction coordinator %d) after %d inputs", victim.id, c.txnCoordinator(ctx), done)
		victim.proc.Kill(t)
		time.Sleep(time.Second) // down while the pipeline runs on
		c.start(victim)
	})
	if !killed {
		t.Fatal("the offsets partition's leader was never killed")
	}
	got := consumeCommitted(t, c.seeds(), "txout", n)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
	// The group's committed offsets are the transactions': every input
	// consumed.
	ends, err := adm.ListEndOffsets(ctx, "txin")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the group's committed offsets at the input's end", func() error {
		os, err := adm.FetchOffsets(ctx, "etl-group")
		if err != nil {
			return err
		}
		var bad []string
		ends.Each(func(e kadm.ListedOffset) {
			if o, ok := os.Lookup(e.Topic, e.Partition); !ok || o.At != e.Offset {
				bad = append(bad, fmt.Sprintf("%s-%d committed %v, end %d", e.Topic, e.Partition, o.At, e.Offset))
			}
		})
		if len(bad) > 0 {
			return fmt.Errorf("%v", bad)
		}
		return nil
	})
	t.Logf("offsets partition led by broker %d at the end", offsetsLeader())
}
