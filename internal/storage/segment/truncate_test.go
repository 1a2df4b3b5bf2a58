package segment

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TruncateTo at every batch boundary of a segment, sealed or active: the
// kept batches read back, the largest timestamp (and its offset in the
// time index) is that of the kept batches, no index entry points past the
// data, and the segment takes appends at the cut, also after a reopen.
func TestTruncateToEveryBoundary(t *testing.T) {
	const n = 30
	// Timestamps go up and down, so the maximum is in the middle.
	tsOf := func(i int) int64 { return 1000 + int64((i*37)%50) }
	build := func(t *testing.T, sealed bool) (*memfs.FS, *Segment, []int64, []int64) {
		mem := memfs.New()
		mem.MkdirAll("/p")
		s, err := Create(mem, "/p", 50, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		var bases, lasts []int64
		next := int64(50)
		for i := 0; i < n; i++ {
			b, err := record.AppendBatch(nil, record.BatchSpec{BaseOffset: next, BaseTimestamp: tsOf(i), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
				[]record.Record{{Value: []byte(fmt.Sprintf("v%d", i))}, {OffsetDelta: 1, Value: []byte("w")}})
			if err != nil {
				t.Fatal(err)
			}
			h, _ := record.ReadBatchHeader(b)
			if err := s.Append(b, []record.BatchHeader{h}); err != nil {
				t.Fatal(err)
			}
			bases, lasts = append(bases, next), append(lasts, h.LastOffset())
			next = h.LastOffset() + 1
		}
		if sealed {
			if err := s.Seal(); err != nil {
				t.Fatal(err)
			}
		}
		return mem, s, bases, lasts
	}
	for _, sealed := range []bool{false, true} {
		for cut := 0; cut <= n; cut++ {
			name := fmt.Sprintf("sealed=%v cut=%d", sealed, cut)
			mem, s, bases, lasts := build(t, sealed)
			offset := s.NextOffset()
			if cut < n {
				offset = bases[cut]
			}
			if err := s.TruncateTo(offset); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if s.Sealed() || s.NextOffset() != offset {
				t.Fatalf("%s: sealed %v, next %d", name, s.Sealed(), s.NextOffset())
			}
			wantTs, wantOff := record.NoTimestamp, int64(50)
			for i := 0; i < cut; i++ {
				if tsOf(i) > wantTs {
					wantTs, wantOff = tsOf(i), lasts[i]
				}
			}
			if ts, _ := s.MaxTimestamp(); ts != wantTs || s.maxTsOffset != wantOff {
				t.Fatalf("%s: max timestamp %d at %d, want %d at %d", name, ts, s.maxTsOffset, wantTs, wantOff)
			}
			for _, e := range s.offIdx.Entries() {
				if e.Position >= s.Size() || e.Offset >= offset {
					t.Fatalf("%s: offset index entry %+v past the data", name, e)
				}
			}
			for _, e := range s.timeIdx.Entries() {
				if e.Offset >= offset {
					t.Fatalf("%s: time index entry %+v past the data", name, e)
				}
			}
			var got int
			if err := s.WalkHeaders(50, func(h record.BatchHeader) bool { got++; return true }); err != nil || got != cut {
				t.Fatalf("%s: %d batches left (%v), want %d", name, got, err, cut)
			}
			if next := appendBatches(t, s, offset, 3); next != offset+6 {
				t.Fatalf("%s: append after the cut ends at %d", name, next)
			}
			if err := s.Seal(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			r, err := Open(mem, "/p", 50, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, OpenOptions{Active: true, NextOffset: -1})
			if err != nil || r.NextOffset() != offset+6 {
				t.Fatalf("%s: reopen: next %d, %v", name, r.NextOffset(), err)
			}
			if data, err := r.Read(offset, 1<<20, true, true); err != nil || len(data) == 0 {
				t.Fatalf("%s: read the new batches back: %d bytes, %v", name, len(data), err)
			}
			r.Close()
		}
	}
}

func TestTruncateToInsideABatch(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/p")
	s, err := Create(mem, "/p", 0, Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	end := appendBatches(t, s, 0, 5) // 2 records a batch
	for _, off := range []int64{1, 3, end + 1, end + 2} {
		if err := s.TruncateTo(off); !errors.Is(err, ErrNotBatchBoundary) {
			t.Fatalf("offset %d: %v", off, err)
		}
	}
	if s.NextOffset() != end {
		t.Fatalf("a refused truncation moved the end to %d", s.NextOffset())
	}
}
