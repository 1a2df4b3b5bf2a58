package bench

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// syncLatencies appends size bytes to a new file in dir and makes them
// durable (vfs.Default's Sync: fdatasync), n times or until d has passed,
// whichever comes first, and returns how long each append plus sync took:
// the floor under any acks=all produce on this disk, since an appended
// record is acknowledged only after such a sync. The file grows as a log
// does, so each fdatasync also carries the file's new size. It is removed
// at the end.
//
// diskbench.MeasureAppendSync measures the same thing but returns only the mean;
// a latency target needs the tail.
func syncLatencies(dir string, size, n int, d time.Duration) (latencies, error) {
	path := filepath.Join(dir, "strombench-fsync")
	f, err := vfs.Default.Create(path)
	if err != nil {
		return nil, err
	}
	out, err := func() ([]time.Duration, error) {
		buf := pseudoRandom(size, 3)
		out := make([]time.Duration, 0, n)
		for start := time.Now(); len(out) < n && time.Since(start) < d; {
			t := time.Now()
			if _, err := f.Write(buf); err != nil {
				return nil, err
			}
			if err := f.Sync(); err != nil {
				return nil, err
			}
			out = append(out, time.Since(t))
		}
		return out, nil
	}()
	if err := errors.Join(err, f.Close(), os.Remove(path)); err != nil {
		return nil, err
	}
	return sortLatencies(out), nil
}
