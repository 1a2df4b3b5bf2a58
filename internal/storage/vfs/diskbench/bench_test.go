package diskbench

import (
	"github.com/stromhq/strom/internal/storage/vfs"

	"os"
	"path/filepath"
	"testing"
)

// The Raw benchmarks measure the disk, not Strom: the ceilings the log's own
// benchmarks are compared against. They write in a temporary directory under
// $STROM_BENCH_DIR if set, else under the system's temporary directory; point
// STROM_BENCH_DIR at the disk the broker's data lives on when they differ (a
// tmpfs /tmp makes fsync free and the figures meaningless).

func benchFile(b *testing.B) vfs.File {
	b.Helper()
	dir, err := os.MkdirTemp(os.Getenv("STROM_BENCH_DIR"), "strom-vfs-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	f, err := vfs.Default.Create(filepath.Join(dir, "raw"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	return f
}

// BenchmarkRawSequentialWrite writes 1 MiB per iteration and fdatasyncs once
// after the last, inside the timing: MB/s is the disk's sequential write rate.
func BenchmarkRawSequentialWrite(b *testing.B) {
	const chunk = 1 << 20
	f := benchFile(b)
	buf := rawBenchData(chunk)
	b.SetBytes(chunk)
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkRawAppendFdatasync4K appends 4 KiB and fdatasyncs per iteration:
// ns/op is the latency of one small durable append, the floor under acks=all.
func BenchmarkRawAppendFdatasync4K(b *testing.B) { benchAppendSync(b, 4<<10) }

// BenchmarkRawGroupFsync64K appends 64 KiB and fdatasyncs per iteration, the
// shape of a group commit sharing one fsync among many producers.
func BenchmarkRawGroupFsync64K(b *testing.B) { benchAppendSync(b, 64<<10) }

func benchAppendSync(b *testing.B, size int) {
	f := benchFile(b)
	buf := rawBenchData(size)
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "fsync/s")
}
