package partition

import (
	"errors"
	"reflect"
	"testing"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func sampleProducers() map[int64]*producer {
	return map[int64]*producer{
		7:       {Epoch: 2, LastSeen: 1700, Batches: []batchMeta{{FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14, Timestamp: -1}, {FirstSeq: 5, LastSeq: 5, FirstOffset: 20, LastOffset: 20, Timestamp: 99}}},
		1 << 40: {Epoch: 0, LastSeen: 3, Batches: []batchMeta{{FirstSeq: 2147483647, LastSeq: 2147483647, FirstOffset: 0, LastOffset: 0}}},
		11:      {Epoch: 3, LastSeen: 5}, // every cached batch at or above the start
	}
}

func TestReplicaSnapshotRoundTrip(t *testing.T) {
	b := encodeReplicaSnapshot(100, sampleProducers())
	start, prods, err := decodeReplicaSnapshot(b)
	if err != nil || start != 100 || !reflect.DeepEqual(prods, sampleProducers()) {
		t.Fatalf("decode: %d %v %v", start, prods, err)
	}
	// Every truncation and a version change are refused, never a panic.
	for n := 0; n < len(b); n++ {
		if _, _, err := decodeReplicaSnapshot(b[:n]); !errors.Is(err, ErrBadReplicaSnapshot) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	b[0] = 2
	if _, _, err := decodeReplicaSnapshot(b); !errors.Is(err, ErrBadReplicaSnapshot) {
		t.Fatalf("version 2: %v", err)
	}
	// A batch at or above the log start cannot be in the state as of it.
	if _, _, err := decodeReplicaSnapshot(encodeReplicaSnapshot(20, sampleProducers())); !errors.Is(err, ErrBadReplicaSnapshot) {
		t.Fatalf("batch at the start: %v", err)
	}
}

// FuzzDecodeReplicaSnapshot: the decoder never panics, and what it
// accepts encodes back to the same state.
func FuzzDecodeReplicaSnapshot(f *testing.F) {
	f.Add(encodeReplicaSnapshot(100, sampleProducers()))
	f.Add(encodeReplicaSnapshot(0, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		start, prods, err := decodeReplicaSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadReplicaSnapshot) {
				t.Fatalf("error %v is not ErrBadReplicaSnapshot", err)
			}
			return
		}
		start2, prods2, err := decodeReplicaSnapshot(encodeReplicaSnapshot(start, prods))
		if err != nil || start2 != start || !reflect.DeepEqual(prods, prods2) {
			t.Fatalf("re-encoded: %d %v %v; was %d %v", start2, prods2, err, start, prods)
		}
	})
}

// A follower's install: the producer state put aside (PrepareReset), the
// log reset at X, FinishReset takes it; a power cut after the reset and
// before FinishReset (the restart finishes it: raftlog's AfterReset) ends
// the same, FinishReset is idempotent, and the state survives a restart.
// The old producers of this replica's own log are gone.
func TestPrepareFinishReset(t *testing.T) {
	mem := memfs.New()
	if err := mem.MkdirAll("/d"); err != nil {
		t.Fatal(err)
	}
	if err := mem.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	p := openPartition(t, mem, seglog.State{})
	if _, err := p.Append(idemBatch(t, 5, 0, 0, 3), AppendRules{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	const x = 1000
	data := encodeReplicaSnapshot(x, map[int64]*producer{9: {Epoch: 1, LastSeen: 7, Batches: []batchMeta{{FirstSeq: 0, LastSeq: 9, FirstOffset: 990, LastOffset: 999}}}})
	start, err := p.PrepareReset(data)
	if err != nil || start != x {
		t.Fatalf("PrepareReset: %d %v", start, err)
	}
	if err := p.Log().ResetAt(x); err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash(memfs.CrashOptions{}) // before FinishReset
	check := func(p *Partition, label string) {
		t.Helper()
		if p.StartOffset() != x || p.EndOffset() != x {
			t.Fatalf("%s: log [%d, %d)", label, p.StartOffset(), p.EndOffset())
		}
		// Producer 9 is known: its retry is a duplicate at its offsets,
		// a gap is out of order; producer 5 (the old log's) is gone.
		dup, err := p.Append(idemBatch(t, 9, 1, 0, 10), AppendRules{})
		if err != nil || !dup.Duplicate || dup.BaseOffset != 990 {
			t.Fatalf("%s: retry of producer 9: %+v %v", label, dup, err)
		}
		if _, err := p.Append(idemBatch(t, 9, 1, 20, 1), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("%s: gap of producer 9: %v", label, err)
		}
		if p.producers[5] != nil {
			t.Fatalf("%s: the old log's producer survived the reset", label)
		}
	}
	for i := 0; i < 2; i++ {
		if err := p.FinishReset(x); err != nil {
			t.Fatalf("FinishReset %d: %v", i, err)
		}
	}
	check(p, "live")
	p.Log().Close()
	p2 := openPartition(t, mem, seglog.State{Clean: true})
	defer p2.Log().Close()
	check(p2, "reopened")
	// The cut image: the log was reset, FinishReset had not run.
	p3 := openPartition(t, crashed, seglog.State{})
	defer p3.Log().Close()
	if err := p3.FinishReset(x); err != nil {
		t.Fatal(err)
	}
	check(p3, "after the cut")
}
