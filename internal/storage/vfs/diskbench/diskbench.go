package diskbench

import (
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// The raw measurements below give the physical limits of the disk under dir,
// through the same OS calls vfs.Default uses (write, fdatasync), so benchmarks of
// the log can report themselves as a fraction of what the disk can do in the
// same run. They create one temporary file in dir and remove it.

// MeasureSequentialWrite writes total bytes to a new file in dir in chunk-sized
// writes, then fdatasyncs it once, and returns the bytes per second achieved,
// the final sync included.
func MeasureSequentialWrite(dir string, total int64, chunk int) (bytesPerSec float64, err error) {
	if total <= 0 || chunk <= 0 {
		return 0, fmt.Errorf("vfs: MeasureSequentialWrite: total %d and chunk %d must be positive", total, chunk)
	}
	f, cleanup, err := rawTempFile(dir, "strom-rawseq-")
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	buf := rawBenchData(chunk)
	start := time.Now()
	for left := total; left > 0; {
		n := int(min(left, int64(chunk)))
		if _, err := f.Write(buf[:n]); err != nil {
			return 0, err
		}
		left -= int64(n)
	}
	if err := f.Sync(); err != nil {
		return 0, err
	}
	return float64(total) / time.Since(start).Seconds(), nil
}

// MeasureAppendSync appends size bytes to a new file in dir and fdatasyncs it,
// n times, and returns the appends per second and the average time of one
// append plus sync: the latency of a durable append.
func MeasureAppendSync(dir string, n int, size int) (perSec float64, avg time.Duration, err error) {
	s, err := MeasureAppendSyncs(dir, n, size)
	if err != nil {
		return 0, 0, err
	}
	return s.PerSec(), s.Mean(), nil
}

// AppendSyncs is what MeasureAppendSyncs saw: every append plus fdatasync
// of one file, timed one by one.
type AppendSyncs struct {
	Size    int             // bytes per append
	Elapsed time.Duration   // all of them, from the first write to the last sync
	Times   []time.Duration // each append plus its sync, sorted ascending
}

// PerSec is the durable appends per second.
func (s AppendSyncs) PerSec() float64 { return float64(len(s.Times)) / s.Elapsed.Seconds() }

// BytesPerSec is the bandwidth of appends that each wait for their sync:
// what a log that syncs every Size bytes can make durable.
func (s AppendSyncs) BytesPerSec() float64 { return s.PerSec() * float64(s.Size) }

// Mean is the average time of one append plus sync.
func (s AppendSyncs) Mean() time.Duration { return s.Elapsed / time.Duration(len(s.Times)) }

// Percentile is the time of one append plus sync that a fraction p (0 to 1)
// of them took at most, by nearest rank: Percentile(0.99) of 1000 appends is
// the 990th fastest, of 10 the slowest.
func (s AppendSyncs) Percentile(p float64) time.Duration {
	rank := int(math.Ceil(p * float64(len(s.Times))))
	return s.Times[min(max(rank, 1), len(s.Times))-1]
}

// MeasureAppendSyncs appends size bytes to a new file in dir and fdatasyncs
// it, n times, timing each append plus sync.
func MeasureAppendSyncs(dir string, n int, size int) (s AppendSyncs, err error) {
	if n <= 0 || size <= 0 {
		return AppendSyncs{}, fmt.Errorf("vfs: MeasureAppendSyncs: n %d and size %d must be positive", n, size)
	}
	f, cleanup, err := rawTempFile(dir, "strom-rawsync-")
	if err != nil {
		return AppendSyncs{}, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	buf := rawBenchData(size)
	s = AppendSyncs{Size: size, Times: make([]time.Duration, n)}
	start := time.Now()
	last := start
	for i := range n {
		if _, err := f.Write(buf); err != nil {
			return AppendSyncs{}, err
		}
		if err := f.Sync(); err != nil {
			return AppendSyncs{}, err
		}
		now := time.Now()
		s.Times[i], last = now.Sub(last), now
	}
	s.Elapsed = last.Sub(start)
	slices.Sort(s.Times)
	return s, nil
}

// rawBenchData returns n bytes of deterministic, incompressible-looking data,
// so that filesystems that compress or deduplicate do not flatter the figures.
func rawBenchData(n int) []byte {
	b := make([]byte, n)
	x := uint64(0x9E3779B97F4A7C15)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}

// rawTempFile creates a new file in dir through the OS, returning it as a
// vfs.File whose Sync is fdatasync, and a function that closes and removes it.
func rawTempFile(dir, pattern string) (vfs.File, func() error, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, nil, err
	}
	name := f.Name()
	f.Close()
	vf, err := vfs.Default.OpenReadWrite(name)
	if err != nil {
		os.Remove(name)
		return nil, nil, err
	}
	cleanup := func() error {
		return errors.Join(vf.Close(), os.Remove(name))
	}
	return vf, cleanup, nil
}
