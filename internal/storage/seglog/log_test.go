package seglog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/segment"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// batch builds one uncompressed v2 batch of n records whose values are
// "<tag>-<i>", with timestamps ts, ts+1, ...
func batch(t testing.TB, tag string, n int, ts int64) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: []byte(tag), Value: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readAll reads every record from the log start, checking offsets are
// consecutive, and returns the values by offset.
func readAll(t testing.TB, l *Log) map[int64]string {
	t.Helper()
	out := map[int64]string{}
	off := l.StartOffset()
	for off < l.EndOffset() {
		res, err := l.Read(off, 64<<10, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Data) == 0 {
			t.Fatalf("read at %d returned nothing, end %d", off, res.EndOffset)
		}
		for p := 0; p < len(res.Data); {
			h, recs, err := record.Records(res.Data[p:p+mustHeader(t, res.Data[p:]).Size()], 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range recs {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if o >= off {
					out[o] = string(r.Value)
				}
			}
			p += h.Size()
			off = h.LastOffset() + 1
		}
	}
	return out
}

func mustHeader(t testing.TB, b []byte) record.BatchHeader {
	t.Helper()
	h, err := record.ReadBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func openLog(t testing.TB, fs vfs.FS, dir string, cfg Config, st State) *Log {
	t.Helper()
	l, err := Open(fs, dir, cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestAppendReadRoundTrip(t *testing.T) {
	dir := t.TempDir()
	l := openLog(t, vfs.Default, dir, Config{SegmentBytes: 4096, IndexIntervalBytes: 256}, State{})
	want := map[int64]string{}
	var next int64
	for i := 0; i < 300; i++ {
		n := 1 + i%5
		res, err := l.Append(batch(t, fmt.Sprintf("b%d", i), n, int64(1000+i)), AppendOptions{LeaderEpoch: 3})
		if err != nil {
			t.Fatal(err)
		}
		if res.FirstOffset != next || res.LastOffset != next+int64(n)-1 {
			t.Fatalf("batch %d: offsets %d..%d, want %d..%d", i, res.FirstOffset, res.LastOffset, next, next+int64(n)-1)
		}
		for j := 0; j < n; j++ {
			want[next+int64(j)] = fmt.Sprintf("b%d-%d", i, j)
		}
		next += int64(n)
	}
	if l.NumSegments() < 5 {
		t.Fatalf("expected rolls with 4 KiB segments, have %d segments", l.NumSegments())
	}
	check := func(l *Log) {
		t.Helper()
		got := readAll(t, l)
		if len(got) != len(want) {
			t.Fatalf("read %d records, want %d", len(got), len(want))
		}
		for o, v := range want {
			if got[o] != v {
				t.Fatalf("offset %d: %q, want %q", o, got[o], v)
			}
		}
	}
	check(l)
	// A read starting inside a batch returns that whole batch.
	res, err := l.Read(7, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	h := mustHeader(t, res.Data)
	if h.BaseOffset > 7 || h.LastOffset() < 7 || len(res.Data) != h.Size() {
		t.Fatalf("read at 7 gave batch %d..%d (%d bytes of %d)", h.BaseOffset, h.LastOffset(), len(res.Data), h.Size())
	}
	if h.PartitionLeaderEpoch != 3 {
		t.Fatalf("leader epoch %d, want 3", h.PartitionLeaderEpoch)
	}
	if _, err := l.Read(next+1, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read past end: %v", err)
	}
	if res, err := l.Read(next, 100, true); err != nil || len(res.Data) != 0 {
		t.Fatalf("read at end: %v, %d bytes", err, len(res.Data))
	}
	// Sealed segments have trimmed indexes named as Kafka names them; the
	// active segment's are written at its first index sync.
	names, _ := os.ReadDir(dir)
	var logs, idx int
	for _, e := range names {
		switch filepath.Ext(e.Name()) {
		case ".log":
			logs++
			if len(e.Name()) != 24 {
				t.Fatalf("segment name %q", e.Name())
			}
		case ".index":
			idx++
		}
	}
	if logs != l.NumSegments() || idx != logs-1 {
		t.Fatalf("%d .log and %d .index files for %d segments", logs, idx, l.NumSegments())
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, e := range names {
		if filepath.Ext(e.Name()) == ".index" || filepath.Ext(e.Name()) == ".timeindex" {
			fi, err := os.Stat(filepath.Join(dir, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Size() >= 10<<20 {
				t.Fatalf("%s still preallocated (%d bytes) after close", e.Name(), fi.Size())
			}
		}
	}
	// Reopen clean and unclean: the same records.
	l = openLog(t, vfs.Default, dir, Config{SegmentBytes: 4096, IndexIntervalBytes: 256}, State{Clean: true})
	check(l)
	l.Close()
	l = openLog(t, vfs.Default, dir, Config{SegmentBytes: 4096, IndexIntervalBytes: 256}, State{})
	check(l)
	if _, err := l.Append(batch(t, "after", 2, 5000), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != next+2 {
		t.Fatalf("end %d after reopen and append, want %d", l.EndOffset(), next+2)
	}
	l.Close()
}

func TestAppendRejectsBadBatches(t *testing.T) {
	l := openLog(t, vfs.Default, t.TempDir(), Config{MaxBatchBytes: 2048}, State{})
	defer l.Close()
	good := batch(t, "g", 3, 1)
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 0xFF
	cases := map[string]struct {
		data []byte
		want error
	}{
		"bad crc":       {bad, record.ErrCorrupt},
		"truncated":     {good[:len(good)-1], record.ErrCorrupt},
		"trailing junk": {append(append([]byte(nil), good...), 1, 2, 3), record.ErrShortBuffer},
		"too large":     {batch(t, strings.Repeat("x", 1000), 3, 1), ErrBatchTooLarge},
		"empty":         {nil, ErrEmptyAppend},
		"magic 1": {func() []byte {
			b := append([]byte(nil), good...)
			b[16] = 1
			return b
		}(), record.ErrUnsupportedMagic},
	}
	for name, c := range cases {
		if _, err := l.Append(c.data, AppendOptions{}); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if l.EndOffset() != 0 || l.Size() != 0 {
		t.Fatalf("rejected appends wrote data: end %d size %d", l.EndOffset(), l.Size())
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	l := openLog(t, vfs.Default, t.TempDir(), Config{SegmentBytes: 2048, IndexIntervalBytes: 100}, State{})
	defer l.Close()
	// Batch i has 4 records at timestamps 1000*i + 0..3, offsets 4i..4i+3.
	for i := 1; i <= 50; i++ {
		if _, err := l.Append(batch(t, "t", 4, int64(1000*i)), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		ts         int64
		off        int64
		found      bool
		recordTime int64
	}{
		{0, 0, true, 1000},
		{1000, 0, true, 1000},
		{1002, 2, true, 1002},
		{1004, 4, true, 2000},
		{25001, 97, true, 25001},
		{50003, 199, true, 50003},
		{50004, 0, false, 0},
	} {
		r, err := l.OffsetForTimestamp(c.ts)
		if err != nil {
			t.Fatal(err)
		}
		if r.Found != c.found || (c.found && (r.Offset != c.off || r.Timestamp != c.recordTime)) {
			t.Errorf("ts %d: %+v, want offset %d ts %d found %v", c.ts, r, c.off, c.recordTime, c.found)
		}
	}
	m, err := l.MaxTimestamp()
	if err != nil || !m.Found || m.Offset != 199 || m.Timestamp != 50003 {
		t.Fatalf("max timestamp %+v %v", m, err)
	}
}

func TestRetention(t *testing.T) {
	now := time.UnixMilli(1_000_000_000)
	clock := func() time.Time { return now }
	l := openLog(t, vfs.Default, t.TempDir(), Config{SegmentBytes: 1000, RetentionMs: time.Hour, Now: clock}, State{})
	defer l.Close()
	for i := 0; i < 40; i++ {
		ts := now.Add(-3 * time.Hour).UnixMilli()
		if i >= 20 {
			ts = now.UnixMilli()
		}
		if _, err := l.Append(batch(t, "r", 2, ts), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before := l.NumSegments()
	res, err := l.ApplyRetention(now)
	if err != nil {
		t.Fatal(err)
	}
	if res.Segments == 0 || l.NumSegments() != before-res.Segments {
		t.Fatalf("retention removed %d of %d segments", res.Segments, before)
	}
	if l.StartOffset() == 0 || l.StartOffset() > 40 {
		t.Fatalf("start offset %d after time retention (old records end at 40)", l.StartOffset())
	}
	if _, err := l.Read(0, 100, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("read below start: %v", err)
	}
	// Size retention keeps at most retention.bytes (plus the active segment).
	l.SetConfig(Config{SegmentBytes: 1000, RetentionBytes: 1500, RetentionMs: -1, Now: clock})
	if _, err := l.ApplyRetention(now); err != nil {
		t.Fatal(err)
	}
	if l.Size() > 1500+1000 {
		t.Fatalf("size %d after size retention of 1500", l.Size())
	}
	// Nothing deletes the active segment.
	l.SetConfig(Config{SegmentBytes: 1000, RetentionBytes: 1, RetentionMs: -1, Now: clock})
	l.ApplyRetention(now)
	if l.NumSegments() != 1 || l.EndOffset() != 80 {
		t.Fatalf("%d segments, end %d", l.NumSegments(), l.EndOffset())
	}
	// DeleteRecords.
	if err := l.AdvanceStartOffset(79); err != nil {
		t.Fatal(err)
	}
	if err := l.AdvanceStartOffset(81); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("advance past end: %v", err)
	}
	got := readAll(t, l)
	if len(got) != 1 || got[79] == "" {
		t.Fatalf("after DeleteRecords(79): %v", got)
	}
}

// countingFS counts operations per kind and file extension.
type countingFS struct {
	mu     sync.Mutex
	counts map[string]int
}

func (c *countingFS) MaybeError(op errorfs.Op, name string) error {
	c.mu.Lock()
	c.counts[op.String()+filepath.Ext(name)]++
	c.mu.Unlock()
	return nil
}

func (c *countingFS) get(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[k]
}

func TestCleanOpenReadsNoData(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{SegmentBytes: 64 << 10}
	l := openLog(t, vfs.Default, dir, cfg, State{})
	for i := 0; i < 2000; i++ {
		if _, err := l.Append(batch(t, "x", 10, int64(i)), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	end, segs := l.EndOffset(), l.NumSegments()
	l.Close()
	c := &countingFS{counts: map[string]int{}}
	l = openLog(t, errorfs.Wrap(vfs.Default, c), dir, cfg, State{Clean: true, RecoveryPoint: end})
	defer l.Close()
	if l.EndOffset() != end {
		t.Fatalf("end %d, want %d", l.EndOffset(), end)
	}
	// Only the active segment's tail after its last index entry is read:
	// a handful of header reads, not the segments' data.
	if r := c.get("read.log"); r > 8 {
		t.Fatalf("clean open of %d segments made %d reads of .log files", segs, r)
	}
}

func TestGroupCommit(t *testing.T) {
	c := &countingFS{counts: map[string]int{}}
	l := openLog(t, errorfs.Wrap(vfs.Default, c), t.TempDir(), Config{}, State{})
	defer l.Close()
	const writers, each = 16, 50
	var wg sync.WaitGroup
	var acked atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				res, err := l.Append(batch(t, "g", 2, 1), AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
					t.Error(err)
					return
				}
				if l.DurableOffset() <= res.LastOffset {
					t.Errorf("durable %d after waiting for %d", l.DurableOffset(), res.LastOffset)
				}
				acked.Add(1)
			}
		}()
	}
	wg.Wait()
	syncs := c.get("sync.log")
	if acked.Load() != writers*each {
		t.Fatalf("acked %d", acked.Load())
	}
	if syncs >= writers*each {
		t.Fatalf("%d fsyncs for %d durable appends: no grouping", syncs, writers*each)
	}
	t.Logf("%d durable appends shared %d fsyncs", writers*each, syncs)
}

func TestCorruptionDetectedOnRead(t *testing.T) {
	mem := memfs.New()
	l := openLog(t, mem, "/d", Config{}, State{})
	for i := 0; i < 10; i++ {
		if _, err := l.Append(batch(t, "c", 3, 1), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	logPath, _, _ := segment.FileNames("/d", 0)
	// Flip a bit inside the CRC-covered part of the fifth batch.
	fifth, err := l.Read(12, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	h := mustHeader(t, fifth.Data)
	pos := 0
	for off := int64(0); off < h.BaseOffset; off += 3 {
		pos += h.Size() // every batch here has the same size
	}
	// Batches this process wrote are trusted until it restarts (segment
	// package doc): corrupt the file between a clean close and the next
	// open, which trusts the files without scanning them.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mem.Mutate(logPath, func(b []byte) []byte { b[pos+40] ^= 0x40; return b }); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, mem, "/d", Config{}, State{Clean: true})
	var sawCorrupt bool
	for off := int64(0); off < l.EndOffset(); off += 3 {
		if _, err := l.Read(off, 1<<20, true); errors.Is(err, segment.ErrCorrupt) {
			sawCorrupt = true
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if !sawCorrupt {
		t.Fatal("a flipped bit in the segment was served without error")
	}
	l.Close()
}

func TestDiskFullOnAppend(t *testing.T) {
	mem := memfs.New()
	var fail atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpWrite && strings.HasSuffix(name, ".log") && fail.Load() {
			return &errorfs.PartialWrite{N: 10}
		}
		return nil
	})
	l := openLog(t, errorfs.Wrap(mem, inj), "/d", Config{}, State{})
	defer l.Close()
	if _, err := l.Append(batch(t, "a", 2, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if _, err := l.Append(batch(t, "b", 2, 1), AppendOptions{}); !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a full disk: %v, want ErrStorage (retriable)", err)
	}
	if h, _ := l.Health(); h != Degraded {
		t.Fatalf("health %v on a full disk, want degraded", h)
	}
	if l.EndOffset() != 2 {
		t.Fatalf("end %d after failed append", l.EndOffset())
	}
	fail.Store(false)
	res, err := l.Append(batch(t, "c", 2, 1), AppendOptions{})
	if err != nil || res.FirstOffset != 2 {
		t.Fatalf("append after disk freed: %+v %v", res, err)
	}
	got := readAll(t, l)
	want := map[int64]string{0: "a-0", 1: "a-1", 2: "c-0", 3: "c-1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestLongPollSignal(t *testing.T) {
	l := openLog(t, vfs.Default, t.TempDir(), Config{}, State{})
	defer l.Close()
	ch := l.Changed()
	select {
	case <-ch:
		t.Fatal("signalled before any append")
	default:
	}
	if _, err := l.Append(batch(t, "s", 1, 1), AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("append did not signal")
	}
}

func TestLogAppendTime(t *testing.T) {
	now := time.UnixMilli(1_700_000_000_000)
	l := openLog(t, vfs.Default, t.TempDir(), Config{LogAppendTime: true, Now: func() time.Time { return now }}, State{})
	defer l.Close()
	res, err := l.Append(batch(t, "t", 3, 5), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime != now.UnixMilli() {
		t.Fatalf("log append time %d", res.LogAppendTime)
	}
	r, err := l.Read(0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	h, err := record.CheckCRC(r.Data)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != now.UnixMilli() {
		t.Fatalf("stored batch %+v %v", h, err)
	}
	if !bytes.Equal(r.Data[:8], make([]byte, 8)) {
		t.Fatal("base offset not 0")
	}
}

// A wait for durability on a log deleted meanwhile (its topic deleted while
// an acks=all produce or the snapshot loop waits) returns ErrClosed; the
// fuzzer of test/hostile found it indexing the segments the deletion had
// emptied, which took the broker down.
func TestWaitDurableAfterDelete(t *testing.T) {
	l := openLog(t, vfs.Default, t.TempDir(), Config{}, State{})
	res, err := l.Append(batch(t, "d", 3, 1), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if l.DurableOffset() > res.LastOffset {
		t.Fatal("durable before any fsync")
	}
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the first waiter runs the fsync, a later one too
		if err := l.WaitDurable(context.Background(), res.LastOffset); !errors.Is(err, ErrClosed) {
			t.Fatalf("WaitDurable after Delete: %v, want ErrClosed", err)
		}
	}
}
