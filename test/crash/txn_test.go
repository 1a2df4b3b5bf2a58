package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// TestKillDuringTransactions (issue 19): franz-go consume-transform-produce
// pipelines (GroupTransactSession, two members) copy a topic into another
// while the broker process is killed with SIGKILL and restarted at random
// moments. Once the group's committed offsets reach the input's end, the
// output read read_committed must hold every input record exactly once:
// no transaction half applied, none applied twice, whatever step of it a
// kill interrupted (produce, AddPartitions, TxnOffsetCommit, EndTxn's
// markers), and the offsets committed with the records they belong to.
// STROM_CRASH_TXN_CYCLES sets the number of kills (default 6).
func TestKillDuringTransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	cycles := envInt(t, "STROM_CRASH_TXN_CYCLES", 6)
	const partitions, n, in, out, group = 4, 20000, "txn-in", "txn-out", "txn-etl"
	dir, addr := t.TempDir(), childbroker.FreeAddr(t)
	b := startBroker(t, dir, addr)
	createTopic(t, addr, in, partitions)
	createTopic(t, addr, out, partitions)

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// Small input batches and small fetches: many small transactions, so
	// the kills meet them at every step.
	prod, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(in), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.ProducerBatchMaxBytes(512))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		prod.Produce(ctx, kgo.StringRecord(strconv.Itoa(i)), func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("input produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	prod.Close()

	var stop atomic.Bool
	var commits, aborts, restarts atomic.Int64
	var wg sync.WaitGroup
	worker := func(name string) {
		defer wg.Done()
		for !stop.Load() && ctx.Err() == nil {
			s, err := kgo.NewGroupTransactSession(
				kgo.SeedBrokers(addr), kgo.TransactionalID(name), kgo.DefaultProduceTopic(out),
				kgo.ConsumerGroup(group), kgo.ConsumeTopics(in), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.RequireStableFetchOffsets(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
				kgo.FetchMaxBytes(2048), kgo.FetchMaxPartitionBytes(1024),
				kgo.TransactionTimeout(10*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }),
			)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				return
			}
			for !stop.Load() && ctx.Err() == nil {
				pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
				fs := s.PollFetches(pctx)
				pcancel()
				if err := s.Begin(); err != nil {
					break // start over with a new session
				}
				fs.EachRecord(func(r *kgo.Record) {
					s.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil)
				})
				committed, err := s.End(ctx, kgo.TryCommit)
				switch {
				case err != nil:
					aborts.Add(1)
				case committed:
					commits.Add(1)
				default:
					aborts.Add(1)
				}
				if err != nil {
					break // a session that failed its end starts over
				}
			}
			s.Close()
			restarts.Add(1)
		}
	}
	for i := range 2 {
		wg.Add(1)
		go worker(fmt.Sprintf("etl-%d", i))
	}
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 19))
	var during []int64 // transactions committed before each kill
	for range cycles {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond) // the kill lands at a random moment
		during = append(during, commits.Load())
		b.Kill(t)
		b = startBroker(t, dir, addr)
	}
	defer b.Stop(t)

	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	ends, err := adm.ListEndOffsets(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		os, err := adm.FetchOffsets(ctx, group)
		done := err == nil
		var at []int64
		ends.Each(func(e kadm.ListedOffset) {
			o, ok := os.Lookup(in, e.Partition)
			at = append(at, o.At)
			done = done && (e.Offset == 0 || ok && o.At == e.Offset)
		})
		if done {
			break
		}
		if time.Now().After(deadline) {
			lt, _ := adm.ListTransactions(ctx, nil, nil)
			dt, _ := adm.DescribeTransactions(ctx, "etl-0", "etl-1")
			stop.Store(true)
			t.Fatalf("the group's committed offsets never reached the input's end: at %v (err %v); %d committed, %d aborted, %d restarts; transactions %+v %+v",
				at, err, commits.Load(), aborts.Load(), restarts.Load(), lt, dt)
		}
		time.Sleep(50 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()

	// Read the output, read_committed, to its last stable offsets.
	lsos, err := adm.ListCommittedOffsets(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	hws, err := adm.ListEndOffsets(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	hws.Each(func(h kadm.ListedOffset) {
		if l, _ := lsos.Lookup(out, h.Partition); l.Offset != h.Offset {
			t.Errorf("output partition %d: LSO %d below HW %d after every transaction ended", h.Partition, l.Offset, h.Offset)
		}
	})
	// A plain sentinel record at the end of each output partition: read
	// until every one is seen, so everything before it was read (and
	// filtered by the client).
	sp, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(out), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if err := sp.ProduceSync(ctx, &kgo.Record{Value: []byte("end"), Partition: p}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	sp.Close()
	rd, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(out), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	count := map[string]int{}
	total := 0
	seen := map[int32]bool{}
	for len(seen) < partitions {
		fs := rd.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("reading the output: sentinels of %v seen, %d records", seen, total)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == "end" {
				seen[r.Partition] = true
				return
			}
			count[string(r.Value)]++
			total++
		})
	}
	var missing, doubled int
	for i := range n {
		switch c := count["out-"+strconv.Itoa(i)]; {
		case c == 0:
			missing++
		case c > 1:
			doubled++
		}
	}
	if missing > 0 || doubled > 0 || total != n {
		t.Fatalf("%d kills: %d input records, %d output records read_committed: %d missing, %d more than once", cycles, n, total, missing, doubled)
	}
	t.Logf("%d kills: %d records each once in the output; %d transactions committed (%v before each kill), %d aborted or failed, %d sessions restarted",
		cycles, n, commits.Load(), during, aborts.Load(), restarts.Load())
}
