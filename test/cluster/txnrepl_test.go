package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTransactionsOnReplicatedPartitions: transactions on partitions of
// replication factor 3. An open transaction holds read_committed readers
// at its first batch (the last stable offset, which every replica tracks
// from its log) while read_uncommitted readers see it; an aborted one is
// never read committed; a committed one is. Then the pipeline of
// TestClusterTransactions between two RF=3 topics, with a kill -9 of a
// broker that leads output partitions (not the transaction coordinator's)
// in the middle of a transaction: each input is in the output once, read
// committed. Before, a replicated partition refused transactional batches
// (POLICY_VIOLATION).
func TestTransactionsOnReplicatedPartitions(t *testing.T) {
	c := startCluster(t, 3, txnClusterProps...)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, topic := range []string{"rtxin", "rtxout", "rtxlso"} {
		if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", topic, err, r.Err)
		}
		c.waitAllLed(adm, topic, 3, -1)
	}

	// The last stable offset on a replicated partition.
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("rtx-lso"), kgo.DefaultProduceTopic("rtxlso"),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	begin := func(vals ...string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if err := cl.ProduceSync(ctx, &kgo.Record{Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
		}
	}
	read := func(level kgo.IsolationLevel) []string {
		t.Helper()
		rc, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.FetchIsolationLevel(level),
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"rtxlso": {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		var out []string
		for idle := 0; idle < 2; {
			pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
			fs := rc.PollFetches(pctx)
			pcancel()
			if fs.NumRecords() == 0 {
				idle++
			}
			fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		}
		return out
	}
	begin("aborted-1", "aborted-2")
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	begin("open")
	if got := read(kgo.ReadCommitted()); len(got) != 0 {
		t.Fatalf("read_committed with an aborted and an open transaction: %v, want nothing", got)
	}
	if got := read(kgo.ReadUncommitted()); fmt.Sprint(got) != "[aborted-1 aborted-2 open]" {
		t.Fatalf("read_uncommitted: %v, want the aborted and the open records", got)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if got := read(kgo.ReadCommitted()); fmt.Sprint(got) != "[open]" {
		t.Fatalf("read_committed after the commit: %v, want [open]", got)
	}

	// A pipeline between RF=3 topics through a leader's kill.
	const n = 300
	produce(t, c.seeds(), "rtxin", "in", n)
	md, err := adm.Metadata(ctx, "__transaction_state", "rtxout")
	if err != nil {
		t.Fatal(err)
	}
	coord := md.Topics["__transaction_state"].Partitions[0].Leader
	var victim *node
	for _, p := range md.Topics["rtxout"].Partitions {
		if p.Leader != coord {
			victim = c.nodes[p.Leader-1]
			break
		}
	}
	if victim == nil {
		victim = c.nodes[coord%3] // every output leader is the coordinator: any other broker holds replicas
	}
	killed := false
	runPipeline(t, ctx, c.seeds(), "rtx-etl", "rtxin", "rtxout", n, func(done int) {
		if !killed && done >= n/3 {
			killed = true
			t.Logf("kill -9 broker %d (coordinator %d) after %d inputs", victim.id, coord, done)
			victim.proc.Kill(t)
			time.Sleep(time.Second) // the broker stays down while the pipeline runs on
			c.start(victim)
		}
	})
	if !killed {
		t.Fatal("the pipeline ended before the kill")
	}
	got := consumeCommitted(t, c.seeds(), "rtxout", n)
	for i := range n {
		if !got[fmt.Sprintf("out-in-%d", i)] {
			t.Fatalf("input in-%d has no output", i)
		}
	}
}
