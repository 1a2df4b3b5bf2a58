package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestTxnCoordinatorFailover: with the cluster's defaults the transaction
// log __transaction_state has three replicas (a raft group), and the
// transaction coordinator is whichever broker leads it. A transactional
// producer commits small transactions to an RF=3 topic; the coordinator's
// broker is killed with SIGKILL in the middle of a transaction; another
// broker takes the lead of the log, loads it and coordinates: the producer
// goes on and commits more. Read committed, the topic holds exactly the
// records of the transactions whose commit was acknowledged, once each.
// Before, the transaction log had one replica and transactions stopped
// until its broker was back.
func TestTxnCoordinatorFailover(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const topic = "tco"
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	c.waitAllLed(adm, topic, 3, -1)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.TransactionalID("tco-1"), kgo.DefaultProduceTopic(topic),
		kgo.TransactionTimeout(10*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.MetadataMinAge(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	committed := map[string]bool{}
	commits, aborts := 0, 0
	txn := func(k int) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatalf("begin %d: %v", k, err)
		}
		var vals []string
		failed := kgo.AbortingFirstErrPromise(cl)
		for i := range 10 {
			v := fmt.Sprintf("t%d-%d", k, i)
			vals = append(vals, v)
			cl.Produce(ctx, &kgo.Record{Value: []byte(v)}, failed.Promise())
		}
		commit := kgo.TryCommit
		if failed.Err() != nil {
			commit = kgo.TryAbort
		}
		switch err := cl.EndTransaction(ctx, commit); {
		case err == nil && commit == kgo.TryCommit:
			commits++
			for _, v := range vals {
				committed[v] = true
			}
		default:
			aborts++
			t.Logf("transaction %d aborted or failed: produce %v, end %v", k, failed.Err(), err)
		}
	}
	for k := range 20 {
		txn(k)
	}
	coord := c.txnCoordinator(ctx)
	md, err := adm.Metadata(ctx, "__transaction_state")
	if err != nil {
		t.Fatal(err)
	}
	if rf := len(md.Topics["__transaction_state"].Partitions[0].Replicas); rf != 3 {
		t.Fatalf("__transaction_state has %d replicas, want 3", rf)
	}

	// The kill, with a transaction open.
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("in-flight")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	victim := c.nodes[coord-1]
	killed := time.Now()
	victim.proc.Kill(t)
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		committed["in-flight"] = true
		commits++
	} else {
		aborts++
		t.Logf("the transaction open at the kill: %v", err)
	}
	var alive *node
	for _, nd := range c.nodes {
		if nd != victim {
			alive = nd
			break
		}
	}
	before := commits
	for k := 20; commits < before+20; k++ {
		if ctx.Err() != nil {
			t.Fatalf("%d commits after the kill", commits-before)
		}
		txn(k)
	}
	newCoord := c.txnCoordinatorAt(ctx, alive.kafka)
	t.Logf("coordinator %d killed; broker %d coordinates; 20 commits %v after the kill (%d commits, %d aborted in all)",
		coord, newCoord, time.Since(killed).Round(time.Millisecond), commits, aborts)
	if newCoord == coord {
		t.Fatalf("broker %d still named the coordinator while down", coord)
	}
	c.start(victim)

	got := consumeValues(t, c.seeds(), topic, len(committed))
	for v := range committed {
		if got[v] != 1 {
			t.Errorf("committed %s read %d times", v, got[v])
		}
	}
	for v, n := range got {
		if !committed[v] {
			t.Errorf("%s (%d times) was not in an acknowledged commit", v, n)
		}
	}
}

// txnCoordinator is the broker FindCoordinator names for transactional id
// tco-1.
func (c *testCluster) txnCoordinator(ctx context.Context) int32 {
	c.t.Helper()
	return c.txnCoordinatorAt(ctx, c.nodes[0].kafka)
}

func (c *testCluster) txnCoordinatorAt(ctx context.Context, addr string) int32 {
	c.t.Helper()
	var coord int32
	waitFor(c.t, 30*time.Second, "FindCoordinator(transaction)", func() error {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKeys = 1, []string{"tco-1"}
		resp, err := req.RequestWith(ctx, c.direct(addr))
		if err != nil {
			return err
		}
		if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != 0 {
			return fmt.Errorf("%+v", resp.Coordinators)
		}
		if code := resp.Coordinators[0].ErrorCode; code != 0 {
			return kerr.ErrorForCode(code)
		}
		coord = resp.Coordinators[0].NodeID
		return nil
	})
	return coord
}

// consumeValues reads topic with read_committed from the start until want
// records came and a moment more, and counts each value.
func consumeValues(t *testing.T, seeds []string, topic string, want int) map[string]int {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	got := map[string]int{}
	n := 0
	deadline := time.Now().Add(time.Minute)
	for idle := 0; idle < 2 || n < want; {
		if time.Now().After(deadline) {
			t.Fatalf("read %d of %d records", n, want)
		}
		pctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		fs.EachRecord(func(r *kgo.Record) {
			got[string(r.Value)]++
			n++
		})
	}
	return got
}
