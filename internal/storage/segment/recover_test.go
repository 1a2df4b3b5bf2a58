package segment

import (
	"testing"
	"time"

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
