package segment

import (
	"bytes"
	"math"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// BenchmarkReadSection: a fetch's section of 1 MiB of 1 KiB batches from a
// 16 MiB segment on disk (the sendfile path of every v4+ fetch); allocs/op
// is what each fetch of a partition costs the collector.
func BenchmarkReadSection(b *testing.B) {
	dir := b.TempDir()
	s, err := Create(vfs.Default, dir, 0, Config{IndexIntervalBytes: 4096, IndexMaxBytes: 1 << 20}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	value := bytes.Repeat([]byte("v"), 1000)
	const batches = 16 << 10
	for i := range int64(batches) {
		bt, err := record.AppendBatch(nil, record.BatchSpec{BaseOffset: i, BaseTimestamp: i, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]record.Record{{Value: value}})
		if err != nil {
			b.Fatal(err)
		}
		h, _ := record.ReadBatchHeader(bt)
		if err := s.Append(bt, []record.BatchHeader{h}); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(1 << 20)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		sec, ok, err := s.ReadSection(int64(i*1024)%(batches-1024), 1<<20, math.MaxInt64)
		if err != nil || !ok {
			b.Fatalf("section: %v %v", ok, err)
		}
		sec.Release()
	}
}
