package vfs

import (
	"errors"
	"fmt"
	"os"
	"time"
)

// The raw measurements below give the physical limits of the disk under dir,
// through the same OS calls Default uses (write, fdatasync), so benchmarks of
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
	if n <= 0 || size <= 0 {
		return 0, 0, fmt.Errorf("vfs: MeasureAppendSync: n %d and size %d must be positive", n, size)
	}
	f, cleanup, err := rawTempFile(dir, "strom-rawsync-")
	if err != nil {
		return 0, 0, err
	}
	defer func() { err = errors.Join(err, cleanup()) }()
	buf := rawBenchData(size)
	start := time.Now()
	for range n {
		if _, err := f.Write(buf); err != nil {
			return 0, 0, err
		}
		if err := f.Sync(); err != nil {
			return 0, 0, err
		}
	}
	elapsed := time.Since(start)
	return float64(n) / elapsed.Seconds(), elapsed / time.Duration(n), nil
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
// File whose Sync is fdatasync, and a function that closes and removes it.
func rawTempFile(dir, pattern string) (File, func() error, error) {
	f, err := os.CreateTemp(dir, pattern)
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() error {
		return errors.Join(f.Close(), os.Remove(f.Name()))
	}
	return osFile{f}, cleanup, nil
}
