package segment

import (
	"bytes"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// readCountFS counts the bytes its files' ReadAt return.
type readCountFS struct {
	vfs.FS
	n *atomic.Int64
}

type readCountFile struct {
	vfs.File
	n *atomic.Int64
}

func (f readCountFile) ReadAt(b []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(b, off)
	f.n.Add(int64(n))
	return n, err
}

func (c readCountFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return readCountFile{f, c.n}, nil
}

func (c readCountFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }
func (c readCountFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }
func (c readCountFS) OpenReadWrite(name string) (vfs.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name))
}

// TestWalkHeadersOfLargeBatchesReadsHeaders: walking the headers of a
// segment of large batches (what producer-state rebuilding does at every
// unclean start, over the whole log without a snapshot) reads little more
// than the headers. It used to read a 64 KiB chunk per header, 0.7 GB of
// copies for 10 GiB of 1 MB batches, most of an unclean start's CPU.
func TestWalkHeadersOfLargeBatchesReadsHeaders(t *testing.T) {
	var n atomic.Int64
	fsys := readCountFS{memfs.New(), &n}
	fsys.MkdirAll("/p")
	s, err := Create(fsys, "/p", 0, Config{IndexIntervalBytes: 4096, IndexMaxBytes: 1 << 20}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const batches = 40
	value := bytes.Repeat([]byte("x"), 200<<10)
	next := int64(0)
	for i := range batches {
		b, err := record.AppendBatch(nil, record.BatchSpec{BaseOffset: next, BaseTimestamp: int64(i), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]record.Record{{Value: value}})
		if err != nil {
			t.Fatal(err)
		}
		h, err := record.ReadBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Append(b, []record.BatchHeader{h}); err != nil {
			t.Fatal(err)
		}
		next = h.LastOffset() + 1
	}
	n.Store(0)
	seen := 0
	if err := s.WalkHeaders(0, func(h record.BatchHeader) bool {
		if h.BaseOffset != int64(seen) {
			t.Fatalf("header %d has base offset %d", seen, h.BaseOffset)
		}
		seen++
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if seen != batches {
		t.Fatalf("walked %d headers of %d", seen, batches)
	}
	// One first chunk, then a header per batch.
	if limit := int64(64<<10 + batches*record.BatchHeaderSize); n.Load() > limit {
		t.Fatalf("walking %d headers of 200 KiB batches read %d bytes; want at most %d", batches, n.Load(), limit)
	}
}
