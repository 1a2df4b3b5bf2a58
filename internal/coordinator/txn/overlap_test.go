package txn

import (
	"errors"
	"testing"
	"time"

	rec "github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// readCommitted reads data partition i as a read_committed consumer would
// count it: the records of transactions a COMMIT marker ended (one
// producer writes the partition), and whether one is still open.
func (e *env) readCommitted(i int) (committed int, open bool) {
	e.t.Helper()
	pending := 0
	e.eachBatch(i, func(h rec.BatchHeader, recs []rec.Record) {
		switch {
		case h.IsControl() && recs[0].Key[3] == 1:
			committed += pending
			pending = 0
		case h.IsControl():
			pending = 0
		default:
			pending += len(recs)
		}
	})
	return committed, pending > 0
}

// TestNextTxnOverlapsMarkerSyncs: with transactions v2 on a single node,
// the next transaction's implicit add is answered while the previous
// end's markers are not yet durable (their completer held back; before,
// it waited for them and, past CompletionWait, was refused with
// ErrConcurrentTransactions), and its record carries them. A power cut
// then (the marker on the partition the next transaction wrote is
// durable with its data, the other's is lost) ends in a restart that
// writes the lost marker again, leaves the next transaction's open
// batches alone (no COMMIT of them: RepairMarker sees them at the
// markers' epoch), and the fenced next transaction aborts alone.
func TestNextTxnOverlapsMarkerSyncs(t *testing.T) {
	fs := memfs.New()
	held := newHeldMarkers(t)
	e := newEnvWith(t, fs, func(cfg *Config) {
		cfg.MarkerWritten = held.written
		cfg.MarkerSyncDelay = time.Hour // the markers' fsyncs are left to the data's
		cfg.CompletionWait = 100 * time.Millisecond
	})
	defer held.open() // before the cleanup closes the coordinator
	c := e.c
	pid, e0, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i, tp := range []TopicPartition{tp0, tp1} {
		if err := c.AddPartitionImplicit(ctx, "t", pid, e0, tp); err != nil {
			t.Fatal(err)
		}
		if err := e.produce(i, pid, e0, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, e1, err := c.EndTxnBump(ctx, "t", pid, e0, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := answered(t, "the next transaction's add", func() error { return c.AddPartitionImplicit(ctx, "t", pid, e1, tp0) }); err != nil {
		t.Fatalf("the next transaction's add while the markers are not durable: %v", err)
	}
	if err := e.produce(0, pid, e1, 0); err != nil {
		t.Fatalf("the next transaction's write: %v", err)
	}
	for i := range 2 {
		if n, open := e.readCommitted(i); n != 1 || open != (i == 0) {
			t.Fatalf("partition %d before the cut: %d committed, open %v", i, n, open)
		}
	}
	if d := e.parts[dataParts[1]]; d.DurableOffset() >= d.HighWatermark() {
		t.Fatalf("partition 1's marker is durable (%d of %d): the cut would not lose it", d.DurableOffset(), d.HighWatermark())
	}

	image := fs.Crash(memfs.CrashOptions{})
	held.open()
	e.close()
	r := newEnv(t, image)
	for i := range 2 {
		if n, open := r.readCommitted(i); n != 1 || open != (i == 0) {
			_, m := r.outcome(i)
			t.Fatalf("partition %d after the restart: %d committed, open %v (markers %q)", i, n, open, m)
		}
	}
	if p := r.parts[dataParts[1]]; p.LastStableOffset() != p.HighWatermark() {
		t.Fatalf("partition 1: LSO %d stuck below HW %d", p.LastStableOffset(), p.HighWatermark())
	}
	if d, _ := r.c.Describe("t"); d.State != Ongoing || len(d.Partitions) != 1 || d.Partitions[0] != tp0 {
		t.Fatalf("after the restart: %+v", d)
	}
	r.c.mu.Lock()
	prev := r.c.txns["t"].cur.Prev
	r.c.mu.Unlock()
	if prev != nil {
		t.Fatalf("the repaired markers are still carried: %+v", prev)
	}
	// A new instance fences the next transaction: it aborts, alone.
	if _, _, err := r.c.InitProducerID(ctx, "t", time.Minute, -1, -1); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if n, open := r.readCommitted(i); n != 1 || open {
			t.Fatalf("partition %d after the fence: %d committed, open %v", i, n, open)
		}
	}
	if _, m := r.outcome(0); m != "CA" {
		t.Fatalf("partition 0 markers %q, want CA", m)
	}
}

// TestPowerCutAtEveryWriteOverlapped: TestPowerCutAtEveryWrite for
// transactions v2 with the next transaction overlapping the previous
// end's marker fsyncs (left to the data's): two committed transactions
// on both partitions and a third on partition 0 only, a power cut at
// every file write, a restart, the timeout of what is still open. Every
// partition then has no open transaction, each transaction is committed
// on both partitions or on neither, and one whose end was answered is
// committed.
func TestPowerCutAtEveryWriteOverlapped(t *testing.T) {
	for k := 1; ; k++ {
		fs := memfs.New()
		e := newEnvWith(t, fs, func(cfg *Config) { cfg.MarkerSyncDelay = time.Hour })
		running, during := true, false
		cut := fs.CrashAtWrite(k, memfs.CrashOptions{}, func() { during = running })
		ended := 0 // transactions whose commit was answered before the cut
		func() {
			pid, ep, err := e.c.InitProducerID(ctx, "t", 10*time.Second, -1, -1)
			if err != nil {
				return
			}
			for txn, parts := range [][]int{{0, 1}, {0, 1}, {0}} {
				for _, i := range parts {
					if err := e.c.AddPartitionImplicit(ctx, "t", pid, ep, []TopicPartition{tp0, tp1}[i]); err != nil {
						return
					}
					if err := e.produce(i, pid, ep, 0); err != nil {
						return
					}
				}
				if _, ep, err = e.c.EndTxnBump(ctx, "t", pid, ep, txn < 2); err != nil {
					return
				}
				if txn < 2 && !during {
					ended++ // answered before the cut: durable in the image
				}
			}
		}()
		running = false
		image := cut()
		e.close()
		r := newEnv(t, image)
		r.advance(time.Minute)
		r.c.CheckTimeouts()
		n0, open0 := r.readCommitted(0)
		n1, open1 := r.readCommitted(1)
		_, m0 := r.outcome(0)
		_, m1 := r.outcome(1)
		switch {
		case open0 || open1:
			t.Fatalf("cut %d: a transaction left open: %d %q / %d %q", k, n0, m0, n1, m1)
		case n0 != n1:
			t.Fatalf("cut %d: committed on one partition only: %d %q / %d %q", k, n0, m0, n1, m1)
		case n0 < ended:
			t.Fatalf("cut %d: %d transactions answered committed, %d committed: %q / %q", k, ended, n0, m0, m1)
		}
		r.close()
		if !during {
			if k < 10 {
				t.Fatalf("only %d writes in three transactions?", k)
			}
			if ended != 2 || n0 != 2 {
				t.Fatalf("uncut run: %d ended, %d committed", ended, n0)
			}
			t.Logf("%d power cuts", k-1)
			return
		}
	}
}

// TestOverlapNotForV1: with transactions v1 (EndTxn without a bump) the
// next transaction's batches carry the markers' epoch, so a restart could
// not tell them from the ended transaction's: its add still waits for the
// completion, and is refused past CompletionWait.
func TestOverlapNotForV1(t *testing.T) {
	held := newHeldMarkers(t)
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.MarkerWritten = held.written
		cfg.CompletionWait = 50 * time.Millisecond
	})
	defer held.open() // before the cleanup closes the coordinator
	pid, ep, err := e.c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, ep, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.c.EndTxn(ctx, "t", pid, ep, true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0}); !errors.Is(err, ErrConcurrentTransactions) {
		t.Fatalf("v1 add while completing: %v, want ErrConcurrentTransactions", err)
	}
}

// TestSettleHurriesTheMarkers: a request that must wait for an overlapped
// completion (here an InitProducerId, which fences) cuts its
// MarkerSyncDelay short: the markers are forced durable at once and the
// request is answered, instead of waiting out the delay (an hour here)
// and then being refused with ErrConcurrentTransactions.
func TestSettleHurriesTheMarkers(t *testing.T) {
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.MarkerSyncDelay = time.Hour
		cfg.CompletionWait = 10 * time.Second
	})
	c := e.c
	pid, e0, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitionImplicit(ctx, "t", pid, e0, tp0); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, e0, 0); err != nil {
		t.Fatal(err)
	}
	_, e1, err := c.EndTxnBump(ctx, "t", pid, e0, true)
	if err != nil {
		t.Fatal(err)
	}
	var e2 int16
	if err := answered(t, "InitProducerId after an overlapped end", func() (err error) {
		_, e2, err = c.InitProducerID(ctx, "t", time.Minute, pid, e1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if e2 != e1+1 {
		t.Fatalf("epoch %d, want %d", e2, e1+1)
	}
	if p := e.parts[dataParts[0]]; p.DurableOffset() != p.HighWatermark() {
		t.Fatalf("the marker is not durable: %d of %d", p.DurableOffset(), p.HighWatermark())
	}
	if n, m := e.outcome(0); n != 1 || m != "C" {
		t.Fatalf("partition 0: %d records, markers %q", n, m)
	}
}
