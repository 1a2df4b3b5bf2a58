package partition

import (
	"bytes"
	"testing"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// A replicated partition hands out file sections too, stopping at the high
// watermark as Read does: the section holds exactly Read's bytes.
func TestReadSectionReplicatedStopsAtHighWatermark(t *testing.T) {
	p := openOnDisk(t)
	for range 4 { // offsets 0-11, three records a batch
		rs := []record.Record{{Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("b")}, {OffsetDelta: 2, Value: []byte("c")}}
		b, err := record.AppendBatch(nil, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, rs)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Log().Append(b, seglog.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	p.SetReplicator(&termsRepl{}, 6)
	want, err := p.Read(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.ReadSection(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	sec := res.Section
	if sec == nil {
		t.Fatal("no section on a replicated partition")
	}
	defer sec.Release()
	got := make([]byte, sec.Len)
	if _, err := sec.File.ReadAt(got, sec.Off); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Data) || sec.LastOffset != 5 || res.EndOffset != 6 {
		t.Fatalf("section of %d bytes to offset %d (end %d), want Read's %d bytes to offset 5 (end 6)", len(got), sec.LastOffset, res.EndOffset, len(want.Data))
	}
	if res, err := p.ReadSection(6, 1<<20, true); err != nil || res.Section != nil || len(res.Data) != 0 {
		t.Fatalf("at the high watermark: section %v, %d bytes, %v", res.Section != nil, len(res.Data), err)
	}
}
