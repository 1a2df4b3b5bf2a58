package partition

import (
	"context"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestAbortedEntryOfACleanedMarker: once the log cleaner has removed an
// aborted transaction's records and then, past delete.retention.ms, its
// ABORT marker (package cleaner), the partition no longer answers that
// transaction in AbortedTxns: a read_committed client given it would drop
// the producer's later, committed batches while waiting for an abort
// marker that is gone. Before, the entry stayed in the answer.
func TestAbortedEntryOfACleanedMarker(t *testing.T) {
	now := time.UnixMilli(1e12)
	clock := func() time.Time { return now }
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	l, err := seglog.Open(mem, "/d/t-0", seglog.Config{IndexMaxBytes: 4096, IndexIntervalBytes: 1, SegmentBytes: 600, Now: clock,
		Compaction: seglog.Compaction{Enabled: true, MinCleanableRatio: 0.5, DeleteRetention: time.Minute, MaxLag: 1 << 62}}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open("t", 0, l, Options{FS: mem, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	keyed := func(pid int64, seq int32, key, value string) []byte {
		spec := record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
		if pid >= 0 {
			spec.Transactional, spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = true, pid, 0, seq
		}
		b, err := record.AppendBatch(nil, spec, []record.Record{{Key: []byte(key), Value: []byte(value)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	_, err = p.Append(keyed(1, 0, "k", "aborted"), verified) // 0
	step("aborted write", err)
	_, err = p.AppendMarker(1, 0, false, 0) // 1: ABORT
	step("abort", err)
	_, err = p.Append(keyed(1, 1, "k", "committed"), verified) // 2
	step("committed write", err)
	_, err = p.AppendMarker(1, 0, true, 0) // 3: COMMIT
	step("commit", err)
	if err := p.WaitDurable(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	if ab := p.AbortedTxns(0, l.EndOffset()); len(ab) != 1 || ab[0].LastOffset != 1 {
		t.Fatalf("aborted transactions before cleaning: %+v", ab)
	}
	// Pass 1 removes the aborted record, pass 2 finds the ABORT marker
	// empty and gives it a horizon, pass 3 (past it) removes it; each
	// with something new to clean.
	c := cleaner.New(mem, cleaner.Options{Now: clock})
	for i := range 3 {
		_, err := p.Append(keyed(-1, 0, "other", "x"), AppendRules{})
		step("plain write", err)
		if err := p.WaitDurable(context.Background(), l.EndOffset()-1); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Minute)
		if _, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil {
			t.Fatalf("pass %d: %v", i+1, err)
		}
	}
	var markers []int64
	if err := l.WalkHeaders(0, func(h record.BatchHeader) bool {
		if h.IsControl() {
			markers = append(markers, h.BaseOffset)
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(markers) != 1 || markers[0] != 3 {
		t.Fatalf("markers left at %v, want the COMMIT at 3 alone (the ABORT cleaned away)", markers)
	}
	if ab := p.AbortedTxns(0, l.EndOffset()); len(ab) != 0 {
		t.Fatalf("aborted transactions answered after their marker was cleaned: %+v", ab)
	}
}
