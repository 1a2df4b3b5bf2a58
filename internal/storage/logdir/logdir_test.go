package logdir

import (
	"context"
	"fmt"
	"testing"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func oneBatch(t *testing.T, v string) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Value: []byte(v)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCleanAndUncleanRestart(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.WasClean() {
		t.Fatal("a new directory claims a clean shutdown")
	}
	parts := []Partition{{Topic: "orders", Partition: 0}, {Topic: "orders", Partition: 1}, {Topic: "my-topic-v2", Partition: 12}}
	for _, p := range parts {
		l, err := d.OpenLog(p, seglog.Config{IndexMaxBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			res, err := l.Append(oneBatch(t, fmt.Sprint(i)), seglog.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !d.WasClean() {
		t.Fatal("clean close not seen as clean")
	}
	got, err := d.Existing()
	if err != nil || len(got) != 3 {
		t.Fatalf("existing partitions %v %v", got, err)
	}
	for _, p := range parts {
		l, err := d.OpenLog(p, seglog.Config{IndexMaxBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		if l.EndOffset() != 5 {
			t.Fatalf("%v: end %d", p, l.EndOffset())
		}
	}
	l, _ := d.Log(parts[0])
	if err := l.AdvanceStartOffset(3); err != nil {
		t.Fatal(err)
	}
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	// Power loss without a clean close: the marker is gone, recovery runs,
	// and the checkpointed start offset holds.
	crashed := mem.Crash(memfs.CrashOptions{})
	d2, err := Open(crashed, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	if d2.WasClean() {
		t.Fatal("crash seen as a clean shutdown")
	}
	l2, err := d2.OpenLog(parts[0], seglog.Config{IndexMaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if l2.StartOffset() != 3 || l2.EndOffset() != 5 {
		t.Fatalf("after crash: start %d end %d", l2.StartOffset(), l2.EndOffset())
	}
	if err := d2.DeleteLog(parts[1]); err != nil {
		t.Fatal(err)
	}
	if got, _ := d2.Existing(); len(got) != 2 {
		t.Fatalf("after delete: %v", got)
	}
	d2.Close()
}

// A data directory created with its parents survives a power loss: each new
// directory's entry is made durable, not only the last one's.
func TestNewNestedDirSurvivesPowerLoss(t *testing.T) {
	mem := memfs.New()
	if err := mem.MkdirAll("/srv"); err != nil { // exists, and durable
		t.Fatal(err)
	}
	if err := mem.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	const path = "/srv/strom/node-1/data"
	d, err := Open(mem, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := Partition{Topic: "t", Partition: 0}
	l, err := d.OpenLog(p, seglog.Config{IndexMaxBytes: 4096})
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(oneBatch(t, "acknowledged"), seglog.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash(memfs.CrashOptions{})
	d.Close()
	if _, err := crashed.Stat(path); err != nil {
		t.Fatalf("the data directory is gone after a power loss: %v", err)
	}
	d, err = Open(crashed, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if l, err = d.OpenLog(p, seglog.Config{IndexMaxBytes: 4096}); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 1 {
		t.Fatalf("after the power loss: end offset %d, want 1", l.EndOffset())
	}
}

func TestParsePartitionDir(t *testing.T) {
	for name, want := range map[string]Partition{"a-0": {Topic: "a", Partition: 0}, "my-topic-12": {Topic: "my-topic", Partition: 12}} {
		if p, ok := ParsePartitionDir(name); !ok || p != want {
			t.Errorf("%q: %v %v", name, p, ok)
		}
	}
	for _, bad := range []string{"a", "-1", "a-", "a-x", "a-01"} {
		if _, ok := ParsePartitionDir(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}
