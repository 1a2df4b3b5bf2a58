package cleaner

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// BenchmarkClean measures one cleaning pass over a 64 MiB dirty log on
// the real filesystem where 10% of the records are the latest of their key
// (100-byte values, 100 records a batch, 8 MiB segments), in MB/s of log
// read. The log is rebuilt for every iteration, outside the timer.
//
//	go test -run '^$' -bench Clean -benchtime 3x ./internal/storage/cleaner/
func BenchmarkClean(b *testing.B) {
	const (
		logBytes = 64 << 20
		perBatch = 100
	)
	value := make([]byte, 100)
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), fmt.Sprint("t-", i))
		cfg := seglog.Config{SegmentBytes: 8 << 20, Compaction: seglog.Compaction{Enabled: true, DeleteRetention: time.Hour, MaxLag: 1 << 62}}
		l, err := seglog.Create(vfs.Default, dir, cfg)
		if err != nil {
			b.Fatal(err)
		}
		var written int64
		n := 0
		recs := make([]record.Record, perBatch)
		for written < logBytes {
			for j := range recs {
				// Ten updates of every key, spread through the log: the
				// last tenth of each key's updates is live.
				key := (n % (logBytes / 1300))
				recs[j] = record.Record{OffsetDelta: int32(j), Key: fmt.Appendf(nil, "key-%08d", key), Value: value}
				n++
			}
			batch, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := l.Append(batch, seglog.AppendOptions{}); err != nil {
				b.Fatal(err)
			}
			written += int64(len(batch))
		}
		if err := l.Roll(); err != nil {
			b.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
		c := New(vfs.Default, Options{DedupeBufferBytes: 64 << 20})
		before := l.Size()
		b.SetBytes(before)
		b.StartTimer()
		res, err := c.Clean(context.Background(), l, l.EndOffset())
		b.StopTimer()
		if err != nil || res.Partial {
			b.Fatalf("clean: %+v %v", res, err)
		}
		b.ReportMetric(float64(l.Size())/float64(before), "size-after/before")
		l.Close()
		b.StartTimer()
	}
}
