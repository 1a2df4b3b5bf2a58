package partition

import (
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// BenchmarkTruncateTo measures a partition's TruncateTo of its last batch
// on a 64 MiB log of 16 KiB idempotent batches (on the OS filesystem, so
// with fsyncs): the producer state rebuilt from the log start (no
// snapshot) or from a snapshot just below the cut.
//
//	go test -run '^$' -bench TruncateTo -benchtime 20x ./internal/partition/
func BenchmarkTruncateTo(b *testing.B) {
	for _, snap := range []bool{false, true} {
		name := "from-start"
		if snap {
			name = "from-snapshot"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			l, err := seglog.Open(vfs.Default, dir+"/t-0", seglog.Config{SegmentBytes: 16 << 20}, seglog.State{})
			if err != nil {
				b.Fatal(err)
			}
			p, err := Open("t", 0, l, Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			value := make([]byte, 16<<10)
			mk := func(seq int32) []byte {
				bt, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: 9, ProducerEpoch: 0, BaseSequence: seq},
					[]record.Record{{Value: value}})
				if err != nil {
					b.Fatal(err)
				}
				return bt
			}
			const batches = 4096
			for s := int32(0); s < batches; s++ {
				if _, err := p.Append(mk(s), AppendRules{}); err != nil {
					b.Fatal(err)
				}
			}
			if snap {
				if err := p.Snapshot(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r, err := p.Append(mk(batches), AppendRules{})
				if err != nil || r.Duplicate {
					b.Fatalf("%+v %v", r, err)
				}
				if err := p.TruncateTo(r.BaseOffset); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
