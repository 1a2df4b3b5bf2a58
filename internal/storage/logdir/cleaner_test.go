package logdir

import (
	"fmt"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestCleanerRunsInBackground: a compacted log with most records
// superseded is cleaned by the directory's cleaner on its own; its state
// (dirty ratio, last pass) and the metrics say so; a log with
// cleanup.policy=delete is left alone; Close stops the workers.
func TestCleanerRunsInBackground(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := seglog.Config{SegmentBytes: 2000, Compaction: seglog.Compaction{Enabled: true, MinCleanableRatio: 0.5, DeleteRetention: time.Hour, MaxLag: 1 << 62}}
	compacted, err := d.OpenLog(Partition{Topic: "state", Partition: 0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := d.OpenLog(Partition{Topic: "events", Partition: 0}, seglog.Config{SegmentBytes: 2000})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ {
		recs := []record.Record{{Key: []byte(fmt.Sprint("k", i%5)), Value: []byte(fmt.Sprint(i))}}
		for _, l := range []*seglog.Log{compacted, plain} {
			b, _ := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
			if _, err := l.Append(b, seglog.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	compacted.Roll()
	plain.Roll()
	before, plainBefore := compacted.Size(), plain.Size()
	st := d.CleanerStates()
	if len(st) != 1 || st[0].Topic != "state" || st[0].DirtyRatio != 1 || !st[0].Due {
		t.Fatalf("cleaner states before: %+v", st)
	}
	d.StartCleaner(CleanerOptions{Backoff: time.Millisecond, DedupeBufferBytes: 1 << 20})
	deadline := time.Now().Add(10 * time.Second)
	for {
		st = d.CleanerStates()
		if st[0].Passes > 0 && !st[0].Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no pass ran: %+v", st)
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	if st[0].LastErr != "" || st[0].DirtyBytes != 0 || st[0].LastBytesIn != before || compacted.Size() >= before/10 {
		t.Fatalf("after a pass: %+v, size %d of %d", st[0], compacted.Size(), before)
	}
	if m := d.CleanerMetrics(); m.Passes < 1 || m.RecordsRemoved != 295 || m.BytesIn != before {
		t.Fatalf("metrics %+v", m)
	}
	if plain.Size() != plainBefore {
		t.Fatal("a delete-policy log was cleaned")
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestMaxCompactionLagRolls: updates that sit in the active segment of a
// quiet compacted log are rolled out of it once max.compaction.lag.ms has
// passed since the segment began, and then cleaned (the cleaner never
// touches the active segment).
func TestMaxCompactionLagRolls(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now()
	cfg := seglog.Config{Now: func() time.Time { return start }, Compaction: seglog.Compaction{Enabled: true, MinCleanableRatio: 0.5, DeleteRetention: time.Hour, MaxLag: time.Hour}}
	l, err := d.OpenLog(Partition{Topic: "quiet", Partition: 0}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		b, _ := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: start.UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]record.Record{{Key: []byte("k"), Value: []byte(fmt.Sprint(i))}})
		if _, err := l.Append(b, seglog.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d.StartCleaner(CleanerOptions{Backoff: time.Millisecond, Now: func() time.Time { return start.Add(2 * time.Hour) }})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := d.CleanerStates(); l.NumSegments() == 2 && len(st) == 1 && st[0].Passes > 0 && !st[0].Running {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not rolled and cleaned: %d segments, %+v", l.NumSegments(), d.CleanerStates())
		}
		time.Sleep(time.Millisecond) // polling with a deadline
	}
	res, err := l.Read(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	h, recs, err := record.Records(res.Data[:mustHeaderSize(t, res.Data)], 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Value) != "9" || h.BaseOffset != 9 {
		t.Fatalf("after cleaning: batch at %d, %d records, %v", h.BaseOffset, len(recs), err)
	}
}

func mustHeaderSize(t *testing.T, b []byte) int {
	h, err := record.ReadBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h.Size()
}
