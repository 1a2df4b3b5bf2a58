package partition

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func idemBatch(t *testing.T, pid int64, epoch int16, seq int32, n int) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte("v")}
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func openPartition(t *testing.T, mem *memfs.FS, st seglog.State) *Partition {
	t.Helper()
	l, err := seglog.Open(mem, "/d/t-0", seglog.Config{IndexMaxBytes: 4096}, st)
	if err != nil {
		t.Fatal(err)
	}
	p, err := Open("t", 0, l, Options{FS: mem, Now: func() time.Time { return time.UnixMilli(1e12) }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openOnDisk opens a partition on real files in a temporary directory,
// closed at the test's end.
func openOnDisk(t *testing.T) *Partition {
	t.Helper()
	l, err := seglog.Open(vfs.Default, t.TempDir(), seglog.Config{IndexMaxBytes: 4096}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	p, err := Open("t", 0, l, Options{FS: vfs.Default, Now: func() time.Time { return time.UnixMilli(1e12) }})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestIdempotence(t *testing.T) {
	mem := memfs.New()
	p := openPartition(t, mem, seglog.State{})
	r1, err := p.Append(idemBatch(t, 7, 0, 0, 3), AppendRules{})
	if err != nil || r1.BaseOffset != 0 {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := p.Append(idemBatch(t, 7, 0, 3, 2), AppendRules{})
	if err != nil || r2.BaseOffset != 3 {
		t.Fatalf("second: %+v %v", r2, err)
	}
	// A retry of either cached batch gets its original offsets, no write.
	dup, err := p.Append(idemBatch(t, 7, 0, 0, 3), AppendRules{})
	if err != nil || !dup.Duplicate || dup.BaseOffset != 0 || dup.LastOffset != 2 {
		t.Fatalf("retry of first: %+v %v", dup, err)
	}
	if p.HighWatermark() != 5 {
		t.Fatalf("retry was written: end %d", p.HighWatermark())
	}
	if _, err := p.Append(idemBatch(t, 7, 0, 9, 1), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("gap: %v", err)
	}
	// A bumped epoch restarts at 0; the old epoch is fenced after it.
	if _, err := p.Append(idemBatch(t, 7, 1, 4, 1), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not at 0: %v", err)
	}
	if _, err := p.Append(idemBatch(t, 7, 1, 0, 1), AppendRules{}); err != nil {
		t.Fatalf("new epoch at 0: %v", err)
	}
	if _, err := p.Append(idemBatch(t, 7, 0, 5, 1), AppendRules{}); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("old epoch: %v", err)
	}
	// Producers without ids are not checked.
	for i := 0; i < 3; i++ {
		if _, err := p.Append(idemBatch(t, -1, -1, -1, 1), AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	// Sequences beyond the 5 cached batches are no longer duplicates but
	// out of order.
	for s := int32(1); s <= 6; s++ {
		if _, err := p.Append(idemBatch(t, 7, 1, s, 1), AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Append(idemBatch(t, 7, 1, 1, 1), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
		t.Fatalf("retry outside the window: %v", err)
	}
	if d, err := p.Append(idemBatch(t, 7, 1, 4, 1), AppendRules{}); err != nil || !d.Duplicate {
		t.Fatalf("retry inside the window: %+v %v", d, err)
	}
}

// Producer state survives a clean restart (snapshot) and a crash (rebuilt
// from the batch headers), so retries after a restart are still answered
// with their original offsets.
func TestProducerStateSurvivesRestart(t *testing.T) {
	for _, clean := range []bool{true, false} {
		mem := memfs.New()
		mem.MkdirAll("/d")
		mem.SyncDir("/") // the data dir exists and is durable
		p := openPartition(t, mem, seglog.State{})
		for s := int32(0); s < 10; s += 2 {
			if _, err := p.Append(idemBatch(t, 42, 3, s, 2), AppendRules{}); err != nil {
				t.Fatal(err)
			}
		}
		if clean {
			if err := p.Snapshot(); err != nil {
				t.Fatal(err)
			}
			p.log.Close()
		} else {
			p.log.Flush()
			mem = mem.Crash(memfs.CrashOptions{})
		}
		p = openPartition(t, mem, seglog.State{Clean: clean})
		d, err := p.Append(idemBatch(t, 42, 3, 8, 2), AppendRules{})
		if err != nil || !d.Duplicate || d.BaseOffset != 8 {
			t.Fatalf("clean=%v: retry after restart: %+v %v", clean, d, err)
		}
		if _, err := p.Append(idemBatch(t, 42, 3, 11, 1), AppendRules{}); !errors.Is(err, ErrOutOfOrderSequence) {
			t.Fatalf("clean=%v: gap after restart: %v", clean, err)
		}
		if r, err := p.Append(idemBatch(t, 42, 3, 10, 1), AppendRules{}); err != nil || r.BaseOffset != 10 {
			t.Fatalf("clean=%v: next after restart: %+v %v", clean, r, err)
		}
		p.log.Close()
	}
}

func TestSnapshotDecodeRejectsDamage(t *testing.T) {
	good := encodeSnapshot(snapshot{Offset: 5, Producers: map[int64]*producer{1: {Epoch: 2, Batches: []batchMeta{{FirstSeq: 0, LastSeq: 1}}}}})
	if _, err := decodeSnapshot(good); err != nil {
		t.Fatal(err)
	}
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 1
		if _, err := decodeSnapshot(bad); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(snapshot{Offset: 1, Producers: map[int64]*producer{3: {Epoch: 1}}}))
	f.Add([]byte("STPS"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		for _, p := range s.Producers {
			if p == nil || len(p.Batches) > cachedBatches {
				t.Fatal("invalid producer state accepted")
			}
		}
	})
}

// After a clean restart with a snapshot, opening the partition reads no
// batch headers, even when no producer ever used idempotence.
func TestCleanOpenSkipsHeaderScan(t *testing.T) {
	mem := memfs.New()
	p := openPartition(t, mem, seglog.State{})
	for i := 0; i < 20; i++ {
		if _, err := p.Append(idemBatch(t, -1, -1, -1, 2), AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	p.log.Close()
	var reads int
	counting := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpRead && strings.HasSuffix(name, ".log") {
			reads++
		}
		return nil
	}))
	l, err := seglog.Open(counting, "/d/t-0", seglog.Config{IndexMaxBytes: 4096}, seglog.State{Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	before := reads
	if _, err := Open("t", 0, l, Options{FS: counting}); err != nil {
		t.Fatal(err)
	}
	if reads != before {
		t.Fatalf("partition open read the log %d times", reads-before)
	}
}

// A new, empty partition owes no producer snapshot: a start reads nothing
// without one, and writing one (two fsyncs) for each of 10,000 new
// partitions made the first clean stop after their creation take 23 s.
// Once records arrive, the snapshot is due again.
func TestNewPartitionWritesNoSnapshot(t *testing.T) {
	mem := memfs.New()
	p := openPartition(t, mem, seglog.State{})
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/d/t-0/" + snapshotName); err == nil {
		t.Fatal("snapshot written for an empty partition")
	}
	if _, err := p.Append(idemBatch(t, 7, 0, 0, 1), AppendRules{}); err != nil {
		t.Fatal(err)
	}
	if err := p.Snapshot(); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/d/t-0/" + snapshotName); err != nil {
		t.Fatalf("no snapshot after an append: %v", err)
	}
}

// encodeSnapshot returns a snapshot file's content, as Snapshot writes it.
func encodeSnapshot(s snapshot) []byte {
	payload, _ := json.Marshal(s)
	return atomicfile.Encode(snapshotMagic, snapshotVersion, payload)
}

// TestCoordinatorBatchesWithoutSequence: batches a coordinator writes for
// a producer (the group coordinator's offsets of a transaction: producer
// id and epoch, sequence -1) are each written, never answered as a
// duplicate of the last one nor refused as out of order, and an older
// epoch is still fenced. Before, the second of two such batches of one
// record was taken for a retry of the first and not written, and a
// bumped epoch at sequence -1 was refused.
func TestCoordinatorBatchesWithoutSequence(t *testing.T) {
	p := openPartition(t, memfs.New(), seglog.State{})
	for i := range 3 {
		r, err := p.Append(idemBatch(t, 9, 0, -1, 1), AppendRules{})
		if err != nil || r.Duplicate || r.BaseOffset != int64(i) {
			t.Fatalf("batch %d: %+v %v", i, r, err)
		}
	}
	if r, err := p.Append(idemBatch(t, 9, 1, -1, 1), AppendRules{}); err != nil || r.BaseOffset != 3 {
		t.Fatalf("bumped epoch: %+v %v", r, err)
	}
	if _, err := p.Append(idemBatch(t, 9, 0, -1, 1), AppendRules{}); !errors.Is(err, ErrProducerFenced) {
		t.Fatalf("older epoch: %v, want ErrProducerFenced", err)
	}
}
