package partition

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// appendSeqs appends, for producer pid, n batches of 2 records at
// sequences 2*from, 2*from+2, ... and returns their base offsets.
func appendSeqs(t *testing.T, p *Partition, pid int64, from, n int) []int64 {
	t.Helper()
	var bases []int64
	for i := from; i < from+n; i++ {
		r, err := p.Append(idemBatch(t, pid, 0, int32(2*i), 2), AppendRules{})
		if err != nil || r.Duplicate {
			t.Fatalf("append seq %d: %+v %v", 2*i, r, err)
		}
		bases = append(bases, r.BaseOffset)
	}
	return bases
}

// A retried idempotent batch that a truncation removed is not answered as
// a duplicate with the offsets it no longer has: it is written again, at
// the truncation point; a kept batch's retry is still a duplicate; a
// retry past the removed one is out of order. Waiters are woken.
func TestTruncateToRebuildsProducerState(t *testing.T) {
	for _, snapAt := range []string{"none", "below", "above"} {
		t.Run("snapshot "+snapAt, func(t *testing.T) {
			mem := memfs.New()
			mem.MkdirAll("/d")
			mem.SyncDir("/")
			p := openPartition(t, mem, seglog.State{})
			bases := appendSeqs(t, p, 7, 0, 2)
			if snapAt == "below" {
				if err := p.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			bases = append(bases, appendSeqs(t, p, 7, 2, 3)...)
			if _, err := p.Append(idemBatch(t, 8, 0, 0, 1), AppendRules{}); err != nil {
				t.Fatal(err)
			}
			if snapAt == "above" {
				if err := p.Snapshot(); err != nil {
					t.Fatal(err)
				}
			}
			w := NewWaiter()
			w.Watch(p)
			defer w.Stop()
			cut := bases[3] // seq 6 and 8 of pid 7, and pid 8's batch, go
			if err := p.TruncateTo(cut); err != nil {
				t.Fatal(err)
			}
			select {
			case <-w.C():
			default:
				t.Fatal("waiter not woken")
			}
			if p.HighWatermark() != cut {
				t.Fatalf("high watermark %d, want %d", p.HighWatermark(), cut)
			}
			if _, err := mem.Stat("/d/t-0/" + snapshotName); (err == nil) != (snapAt == "below") {
				t.Fatalf("snapshot file present: %v, want %v", err == nil, snapAt == "below")
			}
			check := func(p *Partition, label string) {
				t.Helper()
				// A kept batch's retry: its original offsets.
				d, err := p.Append(idemBatch(t, 7, 0, 4, 2), AppendRules{})
				if err != nil || !d.Duplicate || d.BaseOffset != bases[2] {
					t.Fatalf("%s: retry of a kept batch: %+v %v", label, d, err)
				}
				// A retry past the removed batch: out of order.
				if _, err := p.Append(idemBatch(t, 7, 0, 8, 2), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
					t.Fatalf("%s: retry after a removed batch: %v", label, err)
				}
				// The removed batch's retry is written again, at the cut.
				r, err := p.Append(idemBatch(t, 7, 0, 6, 2), AppendRules{})
				if err != nil || r.Duplicate || r.BaseOffset != cut {
					t.Fatalf("%s: retry of a removed batch: %+v %v, want a new write at %d", label, r, err, cut)
				}
				// Producer 8 lost its only batch: any sequence starts it.
				if r, err := p.Append(idemBatch(t, 8, 0, 0, 1), AppendRules{}); err != nil || r.Duplicate || r.BaseOffset != cut+2 {
					t.Fatalf("%s: producer 8 after truncation: %+v %v", label, r, err)
				}
			}
			// After a crash right after the truncation (nothing of it may
			// come back, snapshot included), and in the live partition.
			p.log.Flush()
			crashed := mem.Crash(memfs.CrashOptions{})
			check(p, "live")
			// Grow the log past where it was, then crash: a snapshot of
			// the removed batches, were it left, would now be loaded.
			more := appendSeqs(t, p, 7, 4, 2)
			p.log.Flush()
			again := openPartition(t, mem.Crash(memfs.CrashOptions{}), seglog.State{})
			if d, err := again.Append(idemBatch(t, 7, 0, 8, 2), AppendRules{}); err != nil || !d.Duplicate || d.BaseOffset != more[0] {
				t.Fatalf("retry after truncation, appends and a crash: %+v %v, want offset %d", d, err, more[0])
			}
			again.log.Close()
			p.log.Close()
			check(openPartition(t, crashed, seglog.State{}), "after a crash")
		})
	}
}

// Refusals change nothing: an offset inside a batch, below the start, past
// the end; the end itself is a no-op.
func TestTruncateToRefusals(t *testing.T) {
	p := openPartition(t, memfs.New(), seglog.State{})
	bases := appendSeqs(t, p, 7, 0, 3)
	end := p.EndOffset()
	if err := p.TruncateTo(bases[1] + 1); !errors.Is(err, ErrNotBatchBoundary) {
		t.Fatalf("inside a batch: %v", err)
	}
	if err := p.TruncateTo(end + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if err := p.TruncateTo(end); err != nil {
		t.Fatalf("to the end: %v", err)
	}
	if _, err := p.DeleteRecords(bases[1]); err != nil {
		t.Fatal(err)
	}
	if err := p.TruncateTo(bases[0]); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("below the start: %v", err)
	}
	if p.EndOffset() != end {
		t.Fatalf("end %d, want %d", p.EndOffset(), end)
	}
	if d, err := p.Append(idemBatch(t, 7, 0, 4, 2), AppendRules{}); err != nil || !d.Duplicate || d.BaseOffset != bases[2] {
		t.Fatalf("producer state changed by a refused truncation: %+v %v", d, err)
	}
}

// Appends, snapshots, reads and truncations at once (run under -race):
// no deadlock, and afterwards the producer state agrees with the log, as
// a reopen rebuilds it.
func TestTruncateToConcurrent(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	p := openPartition(t, mem, seglog.State{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for g := 0; g < 2; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pid := int64(100 + g)
			seq, epoch := int32(0), int16(0)
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, err := p.Append(idemBatch(t, pid, epoch, seq, 2), AppendRules{})
				switch {
				case err == nil:
					seq += 2
				case errors.Is(err, ErrOutOfOrderSequence):
					// Our last batches were truncated away: a new epoch
					// starts over (a client would bump it too).
					epoch, seq = epoch+1, 0
				default:
					t.Errorf("append: %v", err)
					return
				}
				if err := p.Snapshot(); err != nil {
					t.Errorf("snapshot: %v", err)
					return
				}
				if _, err := p.Read(p.StartOffset(), 1<<20, true); err != nil {
					t.Errorf("read: %v", err)
					return
				}
			}
		}()
	}
	truncations := 0
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; round < 50; round++ {
		// Let the appenders write between truncations (poll, with a
		// deadline).
		for end := p.EndOffset(); p.EndOffset() < end+8 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
		var base int64 = -1
		// The base of a batch about half way along.
		half := p.EndOffset() / 2
		p.WalkHeaders(half, func(h record.BatchHeader) bool {
			if h.BaseOffset >= half {
				base = h.BaseOffset
				return false
			}
			return true
		})
		if base >= 0 {
			if err := p.TruncateTo(base); err != nil {
				t.Fatal(err)
			}
			truncations++
		}
	}
	close(stop)
	wg.Wait()
	if truncations < 40 {
		t.Fatalf("only %d truncations", truncations)
	}
	p.mu.Lock()
	live := dumpProducers(p)
	p.mu.Unlock()
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	p.log.Close()
	// Rebuilt from the log alone, the state is the same.
	mem.Remove("/d/t-0/" + snapshotName)
	q := openPartition(t, mem, seglog.State{Clean: true})
	defer q.log.Close()
	if rebuilt := dumpProducers(q); rebuilt != live {
		t.Fatalf("producer state %s, rebuilt from the log %s", live, rebuilt)
	}
}

func dumpProducers(p *Partition) string {
	pids := make([]int64, 0, len(p.producers))
	for pid := range p.producers {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	var out string
	for _, pid := range pids {
		out += fmt.Sprintf("%d:%+v ", pid, *p.producers[pid])
	}
	return out
}
