package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
	"github.com/stromhq/strom/internal/testutil"
)

// fullUnder is a disk whose writes fail with ENOSPC while full is set or,
// while under is set, under the paths that contain it (one partition's
// files: a write that needs a new block fails while one into a block
// already allocated goes through).
type fullUnder struct {
	disk
	under atomic.Value // string
}

func (d *fullUnder) MaybeError(op errorfs.Op, name string) error {
	if sub, _ := d.under.Load().(string); sub != "" && op == errorfs.OpWrite && strings.Contains(name, sub) {
		return &errorfs.PartialWrite{N: 9}
	}
	return d.disk.MaybeError(op, name)
}

// TestDiskFullDuringTransactions: a transactional producer while the disk
// fills. (1) Full when EndTxn writes its prepare record: the commit is
// refused, the producer aborts once space returns, and its records stay
// invisible to read_committed on both partitions. (2) Full under one
// partition when the commit's markers are written (the prepare record
// durable, so the commit is decided): once space returns the marker is
// written, the records of both partitions become visible together, and
// the partition's last stable offset reaches its end. Between and after,
// transactions commit as usual, and no transaction is left open.
func TestDiskFullDuringTransactions(t *testing.T) {
	mem := memfs.New()
	d := &fullUnder{}
	var logs testutil.SyncBuffer
	b := startOn(t, errorfs.Wrap(mem, d), &logs)
	defer b.Shutdown(context.Background())
	addr := b.KafkaAddr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const topic = "txfull"
	adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(ctx, 2, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("full-txn"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	// produce begins a transaction and writes name0 to partition 0 and
	// name1 to partition 1, acknowledged.
	produce := func(name string) {
		t.Helper()
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "%s%d", name, p), Partition: p}).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", name, err)
			}
		}
	}
	commit := func(name string) {
		t.Helper()
		produce(name)
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			t.Fatalf("commit %s: %v", name, err)
		}
	}

	commit("a")

	// (1) The prepare record cannot be written.
	produce("b")
	d.full.Store(true)
	ectx, ecancel := context.WithTimeout(ctx, 2*time.Second)
	endErr := cl.EndTransaction(ectx, kgo.TryCommit)
	ecancel()
	t.Logf("commit on a full disk: %v", endErr)
	d.full.Store(false)
	if endErr == nil {
		t.Fatal("a commit whose prepare record could not be written was answered as committed")
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("abort once space returned: %v", err)
	}
	commit("c")

	// (2) The commit is decided, the marker of partition 1 cannot be
	// written.
	produce("d")
	d.under.Store(topic + "-1/")
	// The prepare record is durable: the commit is decided and answered
	// while the marker still cannot be written (complete.go).
	ectx, ecancel = context.WithTimeout(ctx, 10*time.Second)
	err = cl.EndTransaction(ectx, kgo.TryCommit)
	ecancel()
	d.under.Store("")
	if err != nil {
		t.Fatalf("commit d with partition 1 full: %v", err)
	}
	commit("e")

	if !strings.Contains(logs.String(), "transaction: writing the markers failed; retried later") {
		t.Errorf("no marker write failed: the test did not fill partition 1 at the markers")
	}
	want := [][]string{{"a0", "c0", "d0", "e0"}, {"a1", "c1", "d1", "e1"}}
	checkTxnOutcome(ctx, t, addr, topic, "full-txn", want)

	// kill -9 now, on files whose writes ENOSPC cut short: the restart
	// loads the transaction log, the outcomes stay, and the id's next
	// producer commits.
	dead := mem.Snapshot()
	cl.Close()
	b.Shutdown(context.Background())
	b2 := startOn(t, errorfs.Wrap(dead, &fullUnder{}), &logs)
	defer b2.Shutdown(context.Background())
	addr = b2.KafkaAddr().String()
	cl, err = kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("full-txn"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	commit("f")
	want[0], want[1] = append(want[0], "f0"), append(want[1], "f1")
	checkTxnOutcome(ctx, t, addr, topic, "full-txn", want)
}

// checkTxnOutcome checks, for a topic of two partitions written by the
// transactional id, that read_committed shows want on each partition,
// that the last stable offsets reach the ends (no transaction open), and
// that the id's last transaction completes as committed.
func checkTxnOutcome(ctx context.Context, t *testing.T, addr, topic, id string, want [][]string) {
	t.Helper()
	for p := range int32(2) {
		got := readCommitted(ctx, t, addr, topic, p, want[p][len(want[p])-1])
		if strings.Join(got, ",") != strings.Join(want[p], ",") {
			t.Errorf("partition %d read_committed: %v, want %v", p, got, want[p])
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hw, err1 := adm.ListEndOffsets(ctx, topic)
		lso, err2 := adm.ListCommittedOffsets(ctx, topic)
		ts, err3 := adm.DescribeTransactions(ctx, id)
		if err := errors.Join(err1, err2, err3); err != nil {
			t.Fatal(err)
		}
		stable := true
		hw.Each(func(o kadm.ListedOffset) {
			l, _ := lso.Lookup(topic, o.Partition)
			stable = stable && l.Offset == o.Offset
		})
		state := ts[id].State
		if stable && state == "CompleteCommit" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("last stable offsets %v, ends %v, transaction %q (want the ends and CompleteCommit)", lso, hw, state)
		}
	}
}

// readCommitted reads one partition from its start with isolation
// read_committed until it reads the value last (every value before it
// that read_committed shows comes first).
func readCommitted(ctx context.Context, t *testing.T, addr, topic string, p int32, last string) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var out []string
	for len(out) == 0 || out[len(out)-1] != last {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("partition %d: read %v, not up to %s", p, out, last)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}
