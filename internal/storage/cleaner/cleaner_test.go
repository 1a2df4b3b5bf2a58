package cleaner

import (
	"bytes"
	"context"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

const dir = "/data/t-0"

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func logConfig(c *clock, retention time.Duration) seglog.Config {
	return seglog.Config{SegmentBytes: 600, IndexIntervalBytes: 1, Now: c.now,
		Compaction: seglog.Compaction{Enabled: true, MinCleanableRatio: 0.5, DeleteRetention: retention, MaxLag: 1 << 62}}
}

// written is what a test wrote: offset -> record, and the latest per key.
type written struct {
	at     map[int64]record.Record
	latest map[string]int64
}

func newWritten() *written {
	return &written{at: map[int64]record.Record{}, latest: map[string]int64{}}
}

// appendRecs appends one batch of n records with random keys among keys,
// a tombstone with probability 1/5; producer id pid (-1: none).
func (w *written) appendRecs(t *testing.T, l *seglog.Log, rng *rand.Rand, n, keys int, ts int64, pid int64) {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("k%03d", rng.Intn(keys)))}
		if rng.Intn(5) != 0 {
			recs[i].Value = []byte(fmt.Sprintf("v%d", rng.Int63()))
		}
	}
	codec := record.CodecNone
	if rng.Intn(3) == 0 {
		codec = record.CodecSnappy
	}
	spec := record.BatchSpec{Codec: codec, BaseTimestamp: ts, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = pid, 0, 0
	}
	b, err := record.AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Append(b, seglog.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		off := res.FirstOffset + int64(i)
		w.at[off] = r
		w.latest[string(r.Key)] = off
	}
}

type readRec struct {
	off   int64
	key   string
	value []byte
}

// readAll reads the log from its start: every record, in offset order.
func readAll(t *testing.T, l *seglog.Log) []readRec {
	t.Helper()
	var out []readRec
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for data := res.Data; len(data) > 0; {
			h, recs, err := record.Records(data[:mustHeader(t, data).Size()], 64<<20)
			if err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			for _, r := range recs {
				o := h.BaseOffset + int64(r.OffsetDelta)
				if o >= off {
					out = append(out, readRec{o, string(r.Key), r.Value})
				}
			}
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return out
}

func mustHeader(t *testing.T, b []byte) record.BatchHeader {
	h, err := record.ReadBatchHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// check asserts the compaction property on what the log reads: offsets
// increase; every record read is the one written at its offset; every
// key's last record read is its latest write, except that a key whose
// latest write is a tombstone may be gone.
func (w *written) check(t *testing.T, l *seglog.Log) []readRec {
	t.Helper()
	got := readAll(t, l)
	last := map[string]readRec{}
	prev := int64(-1)
	for _, r := range got {
		if r.off <= prev {
			t.Fatalf("offset %d after %d", r.off, prev)
		}
		prev = r.off
		want, ok := w.at[r.off]
		if !ok || string(want.Key) != r.key || !bytes.Equal(want.Value, r.value) || (want.Value == nil) != (r.value == nil) {
			t.Fatalf("offset %d reads %q=%q, was written %q=%q", r.off, r.key, r.value, want.Key, want.Value)
		}
		last[r.key] = r
	}
	for k, off := range w.latest {
		r, ok := last[k]
		tomb := w.at[off].Value == nil
		if !ok && !tomb {
			t.Fatalf("key %s lost: latest value at offset %d", k, off)
		}
		if ok && r.off != off {
			t.Fatalf("key %s reads offset %d last, latest is %d", k, r.off, off)
		}
	}
	return got
}

// TestPropertyLatestValuePerKey: random keys, values and tombstones, random
// rolls and cleanings with a key map too small for one pass; after every
// cleaning the log reads every key's latest value in offset order, and
// once delete.retention.ms has passed after the cleanings that kept them,
// the tombstones are gone.
func TestPropertyLatestValuePerKey(t *testing.T) {
	for seed := int64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewSource(seed))
			clk := &clock{t: time.UnixMilli(1_000_000)}
			mem := memfs.New()
			l, err := seglog.Create(mem, dir, logConfig(clk, time.Minute))
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			c := New(mem, Options{DedupeBufferBytes: int64(entrySize * (8 + rng.Intn(40))), Now: clk.now})
			w := newWritten()
			cleanings := 0
			for step := 0; step < 300; step++ {
				clk.t = clk.t.Add(time.Second)
				w.appendRecs(t, l, rng, 1+rng.Intn(4), 30, clk.t.UnixMilli(), int64(rng.Intn(3))-1)
				if rng.Intn(10) == 0 {
					if err := l.Roll(); err != nil {
						t.Fatal(err)
					}
				}
				if rng.Intn(8) == 0 {
					if _, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil {
						t.Fatalf("step %d: clean: %v", step, err)
					}
					cleanings++
					w.check(t, l)
				}
			}
			// Clean everything, let the horizons pass, clean again: no
			// tombstone is left in the cleaned segments.
			for i := 0; ; i++ {
				if i == 2000 {
					t.Fatal("cleaning does not converge")
				}
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
				p, err := c.Progress(l, l.EndOffset())
				if err != nil {
					t.Fatal(err)
				}
				if p.DirtyBytes == 0 {
					break
				}
				if _, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil {
					t.Fatal(err)
				}
			}
			clk.t = clk.t.Add(time.Minute + time.Second)
			// One more value (a new key), so that there is something
			// dirty and the next pass runs.
			b, _ := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: clk.t.UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
				[]record.Record{{Key: []byte("last"), Value: []byte("x")}})
			ar, err := l.Append(b, seglog.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			w.at[ar.FirstOffset] = record.Record{Key: []byte("last"), Value: []byte("x")}
			w.latest["last"] = ar.FirstOffset
			if err := l.Roll(); err != nil {
				t.Fatal(err)
			}
			res, err := c.Clean(context.Background(), l, l.EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range w.check(t, l) {
				if r.value == nil && r.off < res.MapEnd {
					var hs []record.BatchHeader
					l.WalkHeaders(r.off, func(h record.BatchHeader) bool { hs = append(hs, h); return false })
					t.Fatalf("tombstone of %s at %d kept past delete.retention.ms: %+v, pass %+v", r.key, r.off, hs, res)
				}
			}
			if cleanings == 0 {
				t.Fatal("no cleaning ran")
			}
		})
	}
}

// TestIdempotentProducerKeepsLastBatch: a producer whose records were all
// superseded keeps its last batch, empty, so its epoch and last sequence
// are still in the log's headers.
func TestIdempotentProducerKeepsLastBatch(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_000_000)}
	mem := memfs.New()
	l, err := seglog.Create(mem, dir, logConfig(clk, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	batch := func(pid int64, seq int32, key string, n int) []byte {
		recs := make([]record.Record, n)
		for i := range recs {
			recs[i] = record.Record{OffsetDelta: int32(i), Key: []byte(key), Value: []byte("v")}
		}
		b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: clk.t.UnixMilli(), ProducerID: pid, ProducerEpoch: 3, BaseSequence: seq}, recs)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, b := range [][]byte{batch(7, 0, "a", 2), batch(7, 2, "a", 3), batch(-1, -1, "a", 1)} {
		if _, err := l.Append(b, seglog.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	if _, err := New(mem, Options{Now: clk.now}).Clean(context.Background(), l, l.EndOffset()); err != nil {
		t.Fatal(err)
	}
	var hdrs []record.BatchHeader
	if err := l.WalkHeaders(0, func(h record.BatchHeader) bool { hdrs = append(hdrs, h); return true }); err != nil {
		t.Fatal(err)
	}
	if len(hdrs) != 2 || hdrs[0].ProducerID != 7 || hdrs[0].NumRecords != 0 || hdrs[0].LastSequence() != 4 || hdrs[0].ProducerEpoch != 3 || hdrs[0].LastOffset() != 4 {
		t.Fatalf("headers after cleaning: %+v", hdrs)
	}
}

// TestMemoryBound: far more distinct keys than the key map holds are
// cleaned in several passes, each within the map's fixed memory, and every
// key survives.
func TestMemoryBound(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_000_000)}
	mem := memfs.New()
	cfg := logConfig(clk, time.Minute)
	cfg.SegmentBytes = 64 << 10
	l, err := seglog.Create(mem, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const keys = 20000
	w := newWritten()
	for round := 0; round < 2; round++ {
		for k := 0; k < keys; k += 100 {
			recs := make([]record.Record, 100)
			for i := range recs {
				recs[i] = record.Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprintf("key-%06d", k+i)), Value: []byte(fmt.Sprint(round))}
			}
			b, _ := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
			res, err := l.Append(b, seglog.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range recs {
				w.at[res.FirstOffset+int64(i)] = r
				w.latest[string(r.Key)] = res.FirstOffset + int64(i)
			}
		}
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	const buffer = 64 << 10 // 2,730 keys
	c := New(mem, Options{DedupeBufferBytes: buffer, Now: clk.now})
	if len(c.keys.slots) > buffer {
		t.Fatalf("key map of %d bytes for a %d byte buffer", len(c.keys.slots), buffer)
	}
	before := l.Size()
	passes := 0
	for ; passes < 100; passes++ {
		res, err := c.Clean(context.Background(), l, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if res.Keys > c.MapCapacity() {
			t.Fatalf("pass mapped %d keys, capacity %d", res.Keys, c.MapCapacity())
		}
		if res.MapEnd == 0 {
			break
		}
	}
	if passes < keys*2/c.MapCapacity() {
		t.Fatalf("%d passes for %d keys with room for %d", passes, 2*keys, c.MapCapacity())
	}
	got := w.check(t, l)
	t.Logf("%d records of %d keys, map capacity %d: %d passes; %d bytes of %d left", 2*keys, keys, c.MapCapacity(), passes, l.Size(), before)
	if len(got) != keys || l.Size() > before/2+before/10 {
		t.Fatalf("%d records left (want %d), %d bytes of %d", len(got), keys, l.Size(), before)
	}
	if len(c.keys.slots) > buffer {
		t.Fatalf("key map grew to %d bytes", len(c.keys.slots))
	}
}

// reopen opens the log in fsys as a restart after a crash would.
func reopen(t *testing.T, fsys vfs.FS, cfg seglog.Config) *seglog.Log {
	t.Helper()
	l, err := seglog.Open(fsys, dir, cfg, seglog.State{})
	if err != nil {
		t.Fatalf("open after crash: %v", err)
	}
	return l
}

// TestCrashAtEverySwapStep: a power cut (with and without the unsynced
// bytes reaching the disk) at each step of a segment replacement leaves,
// after recovery, either the old or the new segments: every key's latest
// value reads back, offsets increase, no .cleaned or .swap file is left,
// and cleaning again works.
func TestCrashAtEverySwapStep(t *testing.T) {
	steps := []string{"cleaned-written", "swap-renamed", "old-deleted", "swap-renamed-to-log", "swapped"}
	for _, step := range steps {
		for _, keepAll := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/keep=%v", step, keepAll), func(t *testing.T) {
				rng := rand.New(rand.NewSource(42))
				clk := &clock{t: time.UnixMilli(1_000_000)}
				mem := memfs.New()
				cfg := logConfig(clk, time.Minute)
				l, err := seglog.Create(mem, dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				// Create leaves the new directory's entry to its caller.
				if err := mem.SyncDir("/data"); err != nil {
					t.Fatal(err)
				}
				if err := mem.SyncDir("/"); err != nil {
					t.Fatal(err)
				}
				w := newWritten()
				for i := 0; i < 60; i++ {
					w.appendRecs(t, l, rng, 3, 10, clk.t.UnixMilli(), -1)
				}
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
				opts := memfs.CrashOptions{}
				if keepAll {
					opts.KeepUnsyncedPrefix = memfs.KeepAll
				}
				var crashed *memfs.FS
				seglog.SwapHook = func(s string) {
					if s == step && crashed == nil {
						crashed = mem.Crash(opts)
					}
				}
				defer func() { seglog.SwapHook = nil }()
				if _, err := New(mem, Options{Now: clk.now}).Clean(context.Background(), l, l.EndOffset()); err != nil {
					t.Fatal(err)
				}
				seglog.SwapHook = nil
				l.Close()
				if crashed == nil {
					t.Fatalf("step %s never reached", step)
				}
				l2 := reopen(t, crashed, cfg)
				defer l2.Close()
				w.check(t, l2)
				names, _ := crashed.List(dir)
				for _, n := range names {
					if bytes.HasSuffix([]byte(n), []byte(seglog.CleanedSuffix)) || bytes.HasSuffix([]byte(n), []byte(seglog.SwapSuffix)) {
						t.Fatalf("%s left after recovery: %v", n, names)
					}
				}
				sort.Strings(names)
				w.appendRecs(t, l2, rng, 3, 10, clk.t.UnixMilli(), -1)
				if err := l2.Roll(); err != nil {
					t.Fatal(err)
				}
				if _, err := New(crashed, Options{Now: clk.now}).Clean(context.Background(), l2, l2.EndOffset()); err != nil {
					t.Fatalf("clean after recovery: %v (files %v)", err, names)
				}
				w.check(t, l2)
			})
		}
	}
}

// TestBoundAndMinLag: nothing at or past the bound the caller gives is
// cleaned, nor a segment newer than min.compaction.lag.ms; timestamps in
// the future do not stall cleaning when there is no lag.
func TestBoundAndMinLag(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_000_000)}
	mem := memfs.New()
	cfg := logConfig(clk, time.Minute)
	l, err := seglog.Create(mem, dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	w := newWritten()
	rng := rand.New(rand.NewSource(3))
	for i := 0; i < 4; i++ {
		// Timestamps an hour ahead of the cleaner's clock.
		w.appendRecs(t, l, rng, 4, 2, clk.t.Add(time.Hour).UnixMilli(), -1)
		if err := l.Roll(); err != nil {
			t.Fatal(err)
		}
	}
	segs, _ := l.SealedSegments()
	c := New(mem, Options{Now: clk.now})
	// A bound inside the second segment: only the first may be cleaned.
	res, err := c.Clean(context.Background(), l, segs[1].Base+1)
	if err != nil || res.SegmentsIn != 1 || res.MapEnd != segs[0].End {
		t.Fatalf("bounded pass: %+v %v", res, err)
	}
	after, _ := l.SealedSegments()
	for i := 1; i < len(segs); i++ {
		if after[i] != segs[i] {
			t.Fatalf("segment %d changed past the bound: %+v -> %+v", i, segs[i], after[i])
		}
	}
	// With min.compaction.lag.ms, those future timestamps keep them all.
	cfg.Compaction.MinLag = time.Minute
	l.SetConfig(cfg)
	if res, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil || res.SegmentsIn != 0 {
		t.Fatalf("pass within min.compaction.lag.ms: %+v %v", res, err)
	}
	cfg.Compaction.MinLag = 0
	l.SetConfig(cfg)
	if res, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil || res.SegmentsIn != 4 {
		t.Fatalf("pass without lag: %+v %v", res, err)
	}
	w.check(t, l)
}

// TestMemoryBoundLarge is the memory test at a size chosen with
// STROM_CLEANER_KEYS (skipped without it; the figure is 10
// million): that many distinct keys, each written twice, on the real
// filesystem, cleaned with a 16 MiB dedupe buffer. The Go heap in use,
// sampled every 10 ms during the passes, must stay under the buffer plus
// 48 MiB (a pass holds one read chunk, one batch's records and the
// producer table besides the map).
func TestMemoryBoundLarge(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STROM_CLEANER_KEYS"))
	if n <= 0 {
		t.Skip("set STROM_CLEANER_KEYS to run it")
	}
	const buffer = 16 << 20
	clk := &clock{t: time.UnixMilli(1_000_000)}
	cfg := logConfig(clk, time.Minute)
	cfg.SegmentBytes = 64 << 20
	l, err := seglog.Create(vfs.Default, filepath.Join(t.TempDir(), "t-0"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	recs := make([]record.Record, 1000)
	var buf []byte
	for round := 0; round < 2; round++ {
		for k := 0; k < n; k += len(recs) {
			for i := range recs {
				recs[i] = record.Record{OffsetDelta: int32(i), Key: fmt.Appendf(recs[i].Key[:0], "key-%09d", k+i), Value: []byte{byte(round)}}
			}
			buf, err = record.AppendBatch(buf[:0], record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, recs)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.Append(buf, seglog.AppendOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	stop := make(chan struct{})
	peak := make(chan uint64)
	go func() {
		var top uint64
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapInuse)
			select {
			case <-stop:
				peak <- top
				return
			case <-tick.C:
			}
		}
	}()
	c := New(vfs.Default, Options{DedupeBufferBytes: buffer, Now: clk.now})
	before, passes, start := l.Size(), 0, time.Now()
	for ; ; passes++ {
		res, err := c.Clean(context.Background(), l, l.EndOffset())
		if err != nil {
			t.Fatal(err)
		}
		if res.MapEnd == 0 {
			break
		}
	}
	close(stop)
	top := <-peak
	t.Logf("%d keys twice (%d MiB of log) cleaned with a %d MiB buffer in %d passes, %v; log now %d MiB; heap in use: %d MiB before, %d MiB at most during",
		n, before>>20, buffer>>20, passes, time.Since(start).Round(time.Millisecond), l.Size()>>20, base.HeapInuse>>20, top>>20)
	if top > base.HeapInuse+buffer+48<<20 {
		t.Fatalf("heap in use peaked at %d MiB, over %d MiB + the 16 MiB buffer + 48 MiB", top>>20, base.HeapInuse>>20)
	}
}

// TestCrashAtEveryWriteOfAPass: a power cut at each file write of a
// cleaning pass (the cleaned segments, the rebuilt indexes, the
// checkpoint), keeping none, half or all of the unsynced bytes, leaves a
// log that reopens with every key's latest value, and that cleans again.
func TestCrashAtEveryWriteOfAPass(t *testing.T) {
	keeps := map[string]func(string, int) int{
		"none": nil, "half": func(_ string, n int) int { return n / 2 }, "all": memfs.KeepAll,
	}
	for name, keep := range keeps {
		t.Run(name, func(t *testing.T) {
			cuts := 0
			for k := 1; ; k++ {
				rng := rand.New(rand.NewSource(7))
				clk := &clock{t: time.UnixMilli(1_000_000)}
				mem := memfs.New()
				cfg := logConfig(clk, time.Minute)
				l, err := seglog.Create(mem, dir, cfg)
				if err != nil {
					t.Fatal(err)
				}
				mem.SyncDir("/data")
				mem.SyncDir("/")
				w := newWritten()
				for i := 0; i < 40; i++ {
					w.appendRecs(t, l, rng, 3, 8, clk.t.UnixMilli(), -1)
				}
				if err := l.Roll(); err != nil {
					t.Fatal(err)
				}
				// atCut runs at the k-th write, or when cut is called if
				// the pass made fewer writes.
				reached, passDone := false, false
				cut := mem.CrashAtWrite(k, memfs.CrashOptions{KeepUnsyncedPrefix: keep}, func() { reached = !passDone })
				if _, err := New(mem, Options{Now: clk.now}).Clean(context.Background(), l, l.EndOffset()); err != nil {
					t.Fatal(err)
				}
				passDone = true
				img := cut()
				l.Close()
				if !reached {
					break // the pass made fewer than k writes
				}
				cuts++
				l2 := reopen(t, img, cfg)
				w.check(t, l2)
				if _, err := New(img, Options{Now: clk.now}).Clean(context.Background(), l2, l2.EndOffset()); err != nil {
					t.Fatalf("cut at write %d: clean after recovery: %v", k, err)
				}
				w.check(t, l2)
				l2.Close()
			}
			if cuts < 3 {
				t.Fatalf("only %d cuts", cuts)
			}
			t.Logf("%d cuts", cuts)
		})
	}
}
