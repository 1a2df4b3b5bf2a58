package txn

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

var ctx = context.Background()

func TestCommitAndAbort(t *testing.T) {
	e := newEnv(t, memfs.New())
	c := e.c
	pid, epoch, err := c.InitProducerID(ctx, "t1", time.Minute, -1, -1)
	if err != nil || epoch != 0 {
		t.Fatalf("init: %d/%d %v", pid, epoch, err)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, true); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("end with nothing ongoing: %v", err)
	}
	if _, err := c.AddPartitions(ctx, "t1", pid, epoch, []TopicPartition{tp0, tp1}); err != nil {
		t.Fatal(err)
	}
	if err := c.AddOffsets(ctx, "t1", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := e.legacyOffsets("t1", pid, epoch, "g", []PendingOffset{{Topic: "in", Partition: 0, Offset: 42}}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.produce(i, pid, epoch, 0); err != nil {
			t.Fatal(err)
		}
	}
	if lso := e.parts["d-0"].LastStableOffset(); lso != 0 {
		t.Fatalf("LSO %d with the transaction open", lso)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, true); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, false); !errors.Is(err, ErrInvalidTxnState) {
		t.Fatalf("abort after commit: %v", err)
	}
	e.completed("t1")
	for i := range 2 {
		if n, m := e.outcome(i); n != 1 || m != "C" {
			t.Fatalf("partition %d: %d records, markers %q", i, n, m)
		}
	}
	if got := fmt.Sprint(e.committed["g"]); got != "[{g in 0 42 0 }]" {
		t.Fatalf("committed offsets: %s", got)
	}
	if p := e.parts["d-1"]; p.LastStableOffset() != p.HighWatermark() {
		t.Fatalf("LSO %d HW %d after the commit", p.LastStableOffset(), p.HighWatermark())
	}
	// The next transaction aborts: its offsets are dropped.
	if _, err := c.AddPartitions(ctx, "t1", pid, epoch, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, epoch, 1); err != nil {
		t.Fatal(err)
	}
	if err := c.AddOffsets(ctx, "t1", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := e.legacyOffsets("t1", pid, epoch, "g", []PendingOffset{{Topic: "in", Partition: 0, Offset: 99}}); err != nil {
		t.Fatal(err)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, false); err != nil {
		t.Fatal(err)
	}
	e.completed("t1")
	if n, m := e.outcome(0); n != 2 || m != "CA" {
		t.Fatalf("partition 0: %d records, markers %q", n, m)
	}
	if n, m := e.outcome(1); n != 1 || m != "C" {
		t.Fatalf("partition 1 (not in the aborted transaction): %d records, markers %q", n, m)
	}
	if len(e.committed["g"]) != 1 {
		t.Fatalf("aborted offsets applied: %v", e.committed["g"])
	}
	ab := e.parts["d-0"].AbortedTxns(0, 100)
	if len(ab) != 1 || ab[0].ProducerID != pid || ab[0].FirstOffset != 2 || ab[0].LastOffset != 3 {
		t.Fatalf("aborted index: %+v", ab)
	}
}

func TestFencingAndVerify(t *testing.T) {
	e := newEnv(t, memfs.New())
	c := e.c
	pid, e0, _ := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err := e.produce(0, pid, e0, 0); err == nil {
		t.Fatal("a transactional write before AddPartitions was accepted")
	}
	if _, err := c.AddPartitions(ctx, "t", pid, e0, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(1, pid, e0, 0); err == nil {
		t.Fatal("a write to a partition not in the transaction was accepted")
	}
	if err := e.produce(0, pid, e0, 0); err != nil {
		t.Fatal(err)
	}
	// A new instance: the open transaction is aborted at the new epoch.
	pid2, e1, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil || pid2 != pid || e1 != e0+1 {
		t.Fatalf("second init: %d/%d %v", pid2, e1, err)
	}
	if n, m := e.outcome(0); n != 1 || m != "A" {
		t.Fatalf("fenced transaction: %d records, markers %q", n, m)
	}
	if err := c.EndTxn(ctx, "t", pid, e0, true); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("old instance's commit: %v", err)
	}
	if _, err := c.AddPartitions(ctx, "t", pid, e0, []TopicPartition{tp1}); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("old instance's add: %v", err)
	}
	// The old instance's late batch is refused by the partition (its
	// epoch is older than the marker's).
	if err := e.produce(0, pid, e0, 1); err == nil {
		t.Fatal("the fenced instance's late write was accepted")
	}
	if _, err := c.AddPartitions(ctx, "t", pid, 5, []TopicPartition{tp1}); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("future epoch: %v", err)
	}
	if _, err := c.AddPartitions(ctx, "t", pid+1, e1, []TopicPartition{tp1}); !errors.Is(err, ErrProducerIDMismatch) {
		t.Fatalf("other producer id: %v", err)
	}
	if _, _, err := c.InitProducerID(ctx, "t", time.Hour, -1, -1); !errors.Is(err, ErrInvalidTimeout) {
		t.Fatalf("timeout above the max: %v", err)
	}
	if errs, err := c.AddPartitions(ctx, "t", pid, e1, []TopicPartition{{"nope", 0}}); err != nil || !errors.Is(errs[0], ErrUnknownPartition) {
		t.Fatalf("unknown partition: %v %v", errs, err)
	}
}

func TestTimeoutAbortBumpsEpoch(t *testing.T) {
	e := newEnv(t, memfs.New())
	c := e.c
	pid, ep, _ := c.InitProducerID(ctx, "t", 10*time.Second, -1, -1)
	if _, err := c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, ep, 0); err != nil {
		t.Fatal(err)
	}
	e.advance(5 * time.Second)
	c.CheckTimeouts()
	if d, _ := c.Describe("t"); d.State != Ongoing {
		t.Fatalf("aborted before its timeout: %v", d.State)
	}
	e.advance(6 * time.Second)
	c.CheckTimeouts()
	e.completed("t")
	d, _ := c.Describe("t")
	if d.State != CompleteAbort || d.Epoch != ep+1 {
		t.Fatalf("after the timeout: %+v", d)
	}
	if p := e.parts["d-0"]; p.LastStableOffset() != p.HighWatermark() {
		t.Fatalf("LSO %d stuck below HW %d", p.LastStableOffset(), p.HighWatermark())
	}
	// KAFKA-20785: the producer's commit racing the timeout abort is
	// INVALID_PRODUCER_EPOCH (abortable for it), not a fatal fence.
	if err := c.EndTxn(ctx, "t", pid, ep, true); !errors.Is(err, ErrInvalidProducerEpoch) {
		t.Fatalf("commit after the timeout abort: %v", err)
	}
}

func TestRestartKeepsState(t *testing.T) {
	fs := memfs.New()
	e := newEnv(t, fs)
	pid, ep, _ := e.c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if _, err := e.c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0, tp1}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, ep, 0); err != nil {
		t.Fatal(err)
	}
	e.close()
	e2 := newEnv(t, fs.Crash(memfs.CrashOptions{}))
	d, ok := e2.c.Describe("t")
	if !ok || d.State != Ongoing || d.ProducerID != pid || len(d.Partitions) != 2 {
		t.Fatalf("after restart: %+v %v", d, ok)
	}
	if p := e2.parts["d-0"]; p.LastStableOffset() != 0 {
		t.Fatalf("LSO after restart %d, want 0 (an open transaction)", p.LastStableOffset())
	}
	if err := e2.produce(1, pid, ep, 0); err != nil {
		t.Fatalf("verify after restart: %v", err)
	}
	if err := e2.c.EndTxn(ctx, "t", pid, ep, true); err != nil {
		t.Fatal(err)
	}
	e2.completed("t")
	for i := range 2 {
		if n, m := e2.outcome(i); n != 1 || m != "C" {
			t.Fatalf("partition %d: %d records, markers %q", i, n, m)
		}
	}
	if lst := e2.c.List([]State{CompleteCommit}, nil); len(lst) != 1 || lst[0].ID != "t" {
		t.Fatalf("list: %+v", lst)
	}
}

// TestPowerCutAtEveryWrite runs a transaction over two partitions with a
// power cut at each file write in turn, from InitProducerId to the end of
// EndTxn; after each cut the broker's files are reopened and any open
// transaction left to time out. The transaction must then be committed on
// both partitions or aborted on both (never half), and committed whenever
// the log holds its decision to commit. (EndTxn cannot have answered
// before a cut that comes during its own writes.)
func TestPowerCutAtEveryWrite(t *testing.T) {
	for k := 1; ; k++ {
		fs := memfs.New()
		e := newEnv(t, fs)
		running, during := true, false
		cut := fs.CrashAtWrite(k, memfs.CrashOptions{}, func() { during = running })
		func() {
			pid, ep, err := e.c.InitProducerID(ctx, "t", 10*time.Second, -1, -1)
			if err != nil {
				return
			}
			if _, err := e.c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0, tp1}); err != nil {
				return
			}
			for i := range 2 {
				if err := e.produce(i, pid, ep, 0); err != nil {
					return
				}
			}
			_ = e.c.EndTxn(ctx, "t", pid, ep, true)
			e.completed("t") // the markers are written after the answer
		}()
		running = false
		image := cut()
		e.close()
		if !during {
			// The run made fewer than k writes: every write was cut at,
			// and this run was whole.
			if k < 5 {
				t.Fatalf("only %d writes in a whole transaction?", k)
			}
			r := newEnv(t, image)
			for i := range 2 {
				// The completion record is not waited for, so the
				// restart may complete again: a second COMMIT marker.
				if n, m := r.outcome(i); n != 1 || strings.Trim(m, "C") != "" || m == "" {
					t.Fatalf("uncut run: partition %d: %d records, markers %q", i, n, m)
				}
			}
			t.Logf("%d power cuts", k-1)
			return
		}
		r := newEnv(t, image)
		d, _ := r.c.Describe("t")
		decided := d.State == PrepareCommit || d.State == CompleteCommit
		r.advance(time.Minute)
		r.c.CheckTimeouts()
		n0, m0 := r.outcome(0)
		n1, m1 := r.outcome(1)
		c0, c1 := strings.Contains(m0, "C"), strings.Contains(m1, "C")
		if strings.Contains(m0+m1, "C") && strings.Contains(m0+m1, "A") {
			t.Fatalf("cut %d: committed and aborted: %d %q / %d %q", k, n0, m0, n1, m1)
		}
		switch {
		case c0 || c1:
			// A marker repeated by the completion after the restart is
			// harmless; a partition with data and no commit is not.
			if !c0 && n0 > 0 || !c1 && n1 > 0 {
				t.Fatalf("cut %d: half committed: %d %q / %d %q", k, n0, m0, n1, m1)
			}
		case decided:
			t.Fatalf("cut %d: state %v but not committed: %d %q / %d %q", k, d.State, n0, m0, n1, m1)
		default:
			for i, n := range []int{n0, n1} {
				if p := r.parts[dataParts[i]]; n > 0 && p.LastStableOffset() != p.HighWatermark() {
					t.Fatalf("cut %d: partition %d left open: LSO %d HW %d", k, i, p.LastStableOffset(), p.HighWatermark())
				}
			}
		}
		r.close()
	}
}

// TestCompaction: with a small threshold the log is compacted while
// transactions run (its start moves, its size stays bounded), and a
// restart on the compacted log, after a power cut, gives the same state.
func TestCompaction(t *testing.T) {
	fs := memfs.New()
	e := newEnvWith(t, fs, func(c *Config) { c.CompactBytes = 8 << 10 })
	ids := []string{"a", "b", "c"}
	pids := map[string]int64{}
	for _, id := range ids {
		pids[id], _, _ = e.c.InitProducerID(ctx, id, time.Minute, -1, -1)
	}
	for round := range 100 {
		for _, id := range ids {
			if _, err := e.c.AddPartitions(ctx, id, pids[id], 0, []TopicPartition{tp0}); err != nil {
				t.Fatal(err)
			}
			if err := e.c.EndTxn(ctx, id, pids[id], 0, round%2 == 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	log := e.parts["ts-0"]
	deadline := time.Now().Add(10 * time.Second)
	for log.StartOffset() == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never compacted: %d bytes", log.Size())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if log.Size() > 64<<10 {
		t.Fatalf("log of %d bytes after compaction (900 records written)", log.Size())
	}
	for _, id := range ids {
		e.completed(id)
	}
	want := e.c.List(nil, nil)
	e.close()
	r := newEnv(t, fs.Crash(memfs.CrashOptions{}))
	if got := r.c.List(nil, nil); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after restart:\n%v\nwant\n%v", got, want)
	}
	if want[0].State != CompleteAbort {
		t.Fatalf("last state: %+v", want[0])
	}
}

// TestCompleteSkipsAnEndedTransaction: the timeout loop (and the load at a
// restart or a new lead) reads a transaction's state, then takes its op
// lock to complete it; a request may have completed it in between. It is
// left alone then: before, complete ran on the CompleteCommit state, took
// it for an abort, wrote ABORT markers and recorded CompleteAbort.
func TestCompleteSkipsAnEndedTransaction(t *testing.T) {
	e := newEnv(t, memfs.New())
	c := e.c
	pid, epoch, err := c.InitProducerID(ctx, "t1", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPartitions(ctx, "t1", pid, epoch, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, epoch, 0); err != nil {
		t.Fatal(err)
	}
	if err := c.EndTxn(ctx, "t1", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	e.completed("t1")
	before := e.parts["d-0"].EndOffset()
	c.completeIfPreparing(c.txns["t1"], "a test")
	if d, ok := c.Describe("t1"); !ok || d.State != CompleteCommit {
		t.Fatalf("after a late completion: %+v", d)
	}
	if end := e.parts["d-0"].EndOffset(); end != before {
		t.Fatalf("a late completion wrote %d more offsets to the partition", end-before)
	}
}

// TestLegacyOffsetsAppliedAtRestart: a transaction record of
// __transaction_state that holds the offsets itself (written before
// TxnOffsetCommit wrote them to the offsets log) and was found preparing
// its commit at a restart still gets them applied through the group
// coordinator, and an aborting one does not.
func TestLegacyOffsetsAppliedAtRestart(t *testing.T) {
	fs := memfs.New()
	e := newEnv(t, fs)
	for i, id := range []string{"commits", "aborts"} {
		pid, epoch, err := e.c.InitProducerID(ctx, id, time.Minute, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.c.AddPartitions(ctx, id, pid, epoch, []TopicPartition{tp0}); err != nil {
			t.Fatal(err)
		}
		if err := e.legacyOffsets(id, pid, epoch, "g-"+id, []PendingOffset{{Topic: "in", Partition: 0, Offset: 42}}); err != nil {
			t.Fatal(err)
		}
		// Prepared, then the crash before any marker.
		tx, err := e.c.lookup(id, pid, epoch)
		if err != nil {
			t.Fatal(err)
		}
		r := tx.cur
		r.State = []State{PrepareCommit, PrepareAbort}[i]
		err = e.c.write(ctx, tx, r)
		tx.op.Unlock()
		if err != nil {
			t.Fatal(err)
		}
	}
	e.close()
	e2 := newEnv(t, fs)
	if got := fmt.Sprint(e2.committed); got != "map[g-commits:[{g-commits in 0 42 0 }]]" {
		t.Fatalf("offsets applied at the restart: %s", got)
	}
}

// TestAddOffsetsAddsTheOffsetsPartition: AddOffsets makes the group's
// offsets partition (here d-1) a partition of the transaction: a batch
// there verifies (the TxnOffsetCommit of the group coordinator, wherever
// it runs), VerifyGroup tells the groups added from the others, and the
// end writes its marker there and tells MarkerWritten once it is durable.
func TestAddOffsetsAddsTheOffsetsPartition(t *testing.T) {
	type written struct {
		tp     TopicPartition
		pid    int64
		commit bool
		offset int64
	}
	var mu sync.Mutex
	var markers []written
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.OffsetsPartition = func(string) (string, int32) { return "d", 1 }
		cfg.MarkerWritten = func(tp TopicPartition, pid int64, commit bool, offset int64) {
			mu.Lock()
			markers = append(markers, written{tp, pid, commit, offset})
			mu.Unlock()
		}
	})
	c := e.c
	pid, epoch, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(pid, epoch, "d", 1); !errors.Is(err, ErrNotInTxn) {
		t.Fatalf("offsets partition before AddOffsets: %v", err)
	}
	if err := c.AddOffsets(ctx, "t", pid, epoch, "g"); err != nil {
		t.Fatal(err)
	}
	if err := c.Verify(pid, epoch, "d", 1); err != nil {
		t.Fatalf("offsets partition after AddOffsets: %v", err)
	}
	if err := c.VerifyGroup(pid, epoch, "g"); err != nil {
		t.Fatalf("group added: %v", err)
	}
	if err := c.VerifyGroup(pid, epoch, "other"); !errors.Is(err, ErrNotInTxn) {
		t.Fatalf("group not added: %v", err)
	}
	if err := e.produce(1, pid, epoch, 0); err != nil { // the offsets' batch
		t.Fatal(err)
	}
	if err := c.EndTxn(ctx, "t", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	e.completed("t")
	if n, m := e.outcome(1); n != 1 || m != "C" {
		t.Fatalf("offsets partition: %d records, markers %q", n, m)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(markers) != 1 || markers[0] != (written{tp1, pid, true, 1}) {
		t.Fatalf("markers told: %+v", markers)
	}
}
