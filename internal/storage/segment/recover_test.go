package segment

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestRecoverTrustedCutsATornTail: after a kill in the same boot the file
// holds every completed write plus at most a batch cut short; the header
// walk keeps every whole batch, cuts the torn one, and rebuilds the same
// indexes and next offset as the full validation would.
func TestRecoverTrustedCutsATornTail(t *testing.T) {
	for _, torn := range []int{0, 1, 30, 61, 70} { // bytes of a next batch that made it
		results := map[bool][2]int64{}
		for _, trusted := range []bool{false, true} {
			mem := memfs.New()
			mem.MkdirAll("/p")
			cfg := Config{IndexIntervalBytes: 100, IndexMaxBytes: 4096}
			s, err := Create(mem, "/p", 0, cfg, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			end := appendBatches(t, s, 0, 30)
			size := s.Size()
			appendBatches(t, s, end, 1)
			s.Close()
			logPath, _, _ := FileNames("/p", 0)
			mem.Mutate(logPath, func(b []byte) []byte { return b[:size+int64(torn)] })
			s, err = Open(mem, "/p", 0, cfg, OpenOptions{Active: true, NextOffset: 0})
			if err != nil {
				t.Fatal(err)
			}
			recover := s.Recover
			if trusted {
				recover = s.RecoverTrusted
			}
			// (Open may have cut the torn bytes already, finding the
			// tail damaged: what is left is what counts.)
			if _, err := recover(0); err != nil {
				t.Fatal(err)
			}
			if s.Size() != size || s.NextOffset() != end {
				t.Fatalf("torn %d, trusted %v: size %d next %d; want size %d next %d", torn, trusted, s.Size(), s.NextOffset(), size, end)
			}
			results[trusted] = [2]int64{int64(len(s.offIdx.Entries())), s.maxTimestamp}
			s.Close()
		}
		if results[true] != results[false] {
			t.Fatalf("torn %d: trusted recovery rebuilt %v (index entries, max timestamp), full recovery %v", torn, results[true], results[false])
		}
	}
}

// readCallFS counts its files' ReadAt calls.
type readCallFS struct {
	*memfs.FS
	calls *atomic.Int64
}

type readCallFile struct {
	vfs.File
	calls *atomic.Int64
}

func (f readCallFile) ReadAt(b []byte, off int64) (int, error) {
	f.calls.Add(1)
	return f.File.ReadAt(b, off)
}

func (c readCallFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return readCallFile{f, c.calls}, nil
}

func (c readCallFS) Create(name string) (vfs.File, error) { return c.wrap(c.FS.Create(name)) }
func (c readCallFS) Open(name string) (vfs.File, error)   { return c.wrap(c.FS.Open(name)) }
func (c readCallFS) OpenReadWrite(name string) (vfs.File, error) {
	return c.wrap(c.FS.OpenReadWrite(name))
}

// TestRecoverReadsChunks: both recoveries read a segment of small batches
// a chunk at a time, not a read (or two) per batch. An idempotent acks=all
// producer writes a batch per record or so: 2 million of them in a
// broker's active segment cost seconds of system time at every start
// after a kill, and a restarted replica took longer at every restart as
// its log grew (the chaos test's kill cycle went from 8 to 21 s).
func TestRecoverReadsChunks(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		var calls atomic.Int64
		fsys := readCallFS{memfs.New(), &calls}
		fsys.MkdirAll("/p")
		cfg := Config{IndexIntervalBytes: 4096, IndexMaxBytes: 1 << 20}
		s, err := Create(fsys, "/p", 0, cfg, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		const batches = 5000
		end := appendBatches(t, s, 0, batches)
		size := s.Size()
		s.Close()
		s, err = Open(fsys, "/p", 0, cfg, OpenOptions{Active: true, NextOffset: 0})
		if err != nil {
			t.Fatal(err)
		}
		recover := s.Recover
		if trusted {
			recover = s.RecoverTrusted
		}
		calls.Store(0)
		if _, err := recover(0); err != nil {
			t.Fatal(err)
		}
		if s.Size() != size || s.NextOffset() != end {
			t.Fatalf("trusted %v: size %d next %d; want %d %d", trusted, s.Size(), s.NextOffset(), size, end)
		}
		// A chunk per 64 KiB, and a few reads of the indexes.
		if limit := size/chunkBytes + 10; calls.Load() > limit {
			t.Fatalf("trusted %v: recovering %d batches (%d bytes) took %d reads; want at most %d", trusted, batches, size, calls.Load(), limit)
		}
		s.Close()
	}
}
