package seglog

import (
	"context"
	"os"
	"sync"
	"testing"

	"github.com/stromhq/strom/internal/bufpool"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/diskbench"
)

// Benchmarks report MB/s (b.SetBytes) and, as extra metrics, the ratio to
// the disk's raw limits measured in the same run in the same directory:
// "raw-seq-MB/s" (sequential 1 MiB writes, one fdatasync) and
// "x-raw-seq" (this benchmark's MB/s over it), and "raw-fsync/s" (a 4 KiB
// append+fdatasync loop): the ceiling of durable appends without group
// commit.
//
//	go test -run=^$ -bench=. -benchtime=3s ./internal/storage/seglog/
//
// STROM_BENCH_DIR picks the directory (default: the OS temp dir).

func benchDir(b *testing.B) string {
	b.Helper()
	parent := os.Getenv("STROM_BENCH_DIR")
	dir, err := os.MkdirTemp(parent, "strom-logbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// rawLimits are the disk's limits, measured right before each benchmark
// in the same directory: this virtual disk's speed drifts by 2x and more
// within minutes, so a figure is only comparable to a limit taken at the
// same time.
type rawLimits struct {
	seq   float64 // bytes/s, sequential 1 MiB writes of 1 GiB, one fdatasync
	fsync float64 // 4 KiB append+fdatasync per second
}

func measureRaw(b *testing.B, dir string) rawLimits {
	b.Helper()
	bps, err := diskbench.MeasureSequentialWrite(dir, 1<<30, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	perSec, _, err := diskbench.MeasureAppendSync(dir, 500, 4096)
	if err != nil {
		b.Fatal(err)
	}
	return rawLimits{seq: bps, fsync: perSec}
}

// batchOf builds a 16 KiB uncompressed batch of records of the given value
// size.
func batchOf(b *testing.B, valueSize int) []byte {
	n := (16 << 10) / (valueSize + 20)
	recs := make([]record.Record, n)
	val := make([]byte, valueSize)
	for i := range val {
		val[i] = byte('a' + i%26)
	}
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: val}
	}
	out, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		b.Fatal(err)
	}
	return out
}

func reportRatio(b *testing.B, raw rawLimits, bytes int64) {
	secs := b.Elapsed().Seconds()
	if secs == 0 {
		return
	}
	mbps := float64(bytes) / secs
	b.ReportMetric(raw.seq/1e6, "raw-seq-MB/s")
	b.ReportMetric(mbps/raw.seq, "x-raw-seq")
	b.ReportMetric(raw.fsync, "raw-fsync/s")
}

func benchmarkAppend(b *testing.B, valueSize int, durable bool, writers int) {
	dir := benchDir(b)
	raw := measureRaw(b, dir)
	l, err := Open(vfs.Default, dir, Config{}, State{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	tmpl := batchOf(b, valueSize)
	b.SetBytes(int64(len(tmpl)))
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / writers
	rest := b.N - per*writers
	for w := 0; w < writers; w++ {
		n := per
		if w == 0 {
			n += rest
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, len(tmpl))
			for i := 0; i < n; i++ {
				copy(buf, tmpl)
				res, err := l.Append(buf, AppendOptions{})
				if err != nil {
					b.Error(err)
					return
				}
				if durable {
					if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
						b.Error(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	if !durable {
		// Count the page cache's write-back as part of the work: without
		// it an append is a memcpy into the kernel.
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	reportRatio(b, raw, int64(b.N)*int64(len(tmpl)))
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
}

func BenchmarkAppend100B(b *testing.B) { benchmarkAppend(b, 100, false, 1) }
func BenchmarkAppend1KiB(b *testing.B) { benchmarkAppend(b, 1024, false, 1) }
func BenchmarkAppendGroupCommit16x1KiB(b *testing.B) {
	benchmarkAppend(b, 1024, true, 16)
}
func BenchmarkAppendGroupCommit16x100B(b *testing.B) {
	benchmarkAppend(b, 100, true, 16)
}

// BenchmarkRead1MiB reads 1 MiB fetches of a 64 MiB log in a loop, giving
// each buffer back to bufpool as the Kafka server does once it is written.
// The variants show what the CRC check on read costs: NoVerify never
// checks, Default is the log's rule (each batch once per process; here
// the log wrote them all, so none is hashed).
func BenchmarkRead1MiB(b *testing.B) {
	b.Run("Default", func(b *testing.B) { benchmarkRead(b, Config{}) })
	b.Run("NoVerify", func(b *testing.B) { benchmarkRead(b, Config{SkipVerifyOnRead: true}) })
}

func benchmarkRead(b *testing.B, cfg Config) {
	dir := benchDir(b)
	l, err := Open(vfs.Default, dir, cfg, State{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	tmpl := batchOf(b, 1024)
	for i := 0; i < 4096; i++ { // 64 MiB
		if _, err := l.Append(append([]byte(nil), tmpl...), AppendOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var total int64
	off := int64(0)
	for i := 0; i < b.N; i++ {
		if off >= l.EndOffset() {
			off = 0
		}
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			b.Fatal(err)
		}
		total += int64(len(res.Data))
		h, _ := record.ReadBatchHeader(res.Data[len(res.Data)-len(tmpl):])
		off = h.LastOffset() + 1
		bufpool.Put(res.Data)
	}
	b.SetBytes(total / int64(b.N))
}
