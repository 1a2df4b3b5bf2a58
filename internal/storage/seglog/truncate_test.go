package seglog

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/fdcache"
	"github.com/stromhq/strom/internal/storage/segment"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// truncFixture is a log of several segments with known batches.
type truncFixture struct {
	l       *Log
	values  map[int64]string
	bases   []int64 // base offset of each batch
	ts      []int64 // max timestamp of each batch
	segs    []int64 // segment bases
	durable int64
}

var truncCfg = Config{SegmentBytes: 700, IndexIntervalBytes: 150, IndexMaxBytes: 4096}

func newTruncFixture(t *testing.T, fsys vfs.FS, cfg Config) *truncFixture {
	t.Helper()
	f := &truncFixture{l: openLog(t, fsys, "/d", cfg, State{}), values: map[int64]string{}}
	for i := 0; i < 24; i++ {
		n := 1 + i%3
		// Timestamps go up and down so the largest is not the last.
		ts := int64(1000 + (i*37)%50)
		res, err := f.l.Append(batch(t, fmt.Sprintf("b%d", i), n, ts), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for o := res.FirstOffset; o <= res.LastOffset; o++ {
			f.values[o] = fmt.Sprintf("b%d-%d", i, o-res.FirstOffset)
		}
		f.bases = append(f.bases, res.FirstOffset)
		f.ts = append(f.ts, ts+int64(n-1))
	}
	if err := f.l.Flush(); err != nil {
		t.Fatal(err)
	}
	f.durable = f.l.DurableOffset()
	for _, s := range f.l.Segments() {
		f.segs = append(f.segs, s.Base)
	}
	if len(f.segs) < 4 {
		t.Fatalf("only %d segments", len(f.segs))
	}
	return f
}

// checkKept asserts that the log holds exactly the batches below end.
func (f *truncFixture) checkKept(t *testing.T, l *Log, end int64, label string) {
	t.Helper()
	if l.EndOffset() != end {
		t.Fatalf("%s: end %d, want %d", label, l.EndOffset(), end)
	}
	got := readAll(t, l)
	if len(got) != int(end-l.StartOffset()) {
		t.Fatalf("%s: %d records, want %d", label, len(got), end-l.StartOffset())
	}
	for o, v := range got {
		if f.values[o] != v {
			t.Fatalf("%s: offset %d = %q, want %q", label, o, v, f.values[o])
		}
	}
	// The largest timestamp is that of the kept batches.
	want := int64(-1)
	for i, b := range f.bases {
		if b < end && f.ts[i] > want {
			want = f.ts[i]
		}
	}
	mt, err := l.MaxTimestamp()
	if err != nil {
		t.Fatal(err)
	}
	if want < 0 && mt.Found || want >= 0 && mt.Timestamp != want {
		t.Fatalf("%s: max timestamp %+v, want %d", label, mt, want)
	}
}

func (f *truncFixture) segOf(offset int64) int {
	k := 0
	for i, b := range f.segs {
		if b <= offset {
			k = i
		}
	}
	return k
}

func TestTruncateTo(t *testing.T) {
	probe := newTruncFixture(t, memfs.New(), truncCfg)
	last := len(probe.segs) - 1
	// A batch base inside the active segment, inside a sealed one (not its
	// first batch), and a sealed segment's base.
	var inActive, inSealed int64 = -1, -1
	for _, b := range probe.bases {
		k := probe.segOf(b)
		if k == last && b != probe.segs[k] {
			inActive = b
		}
		if k == 1 && b != probe.segs[1] && inSealed < 0 {
			inSealed = b
		}
	}
	if inActive < 0 || inSealed < 0 {
		t.Fatalf("fixture has no batch inside the active segment or segment 1: %v %v", probe.bases, probe.segs)
	}
	end := probe.l.EndOffset()
	probe.l.Close()
	cases := []struct {
		name   string
		offset int64
	}{
		{"inside the active segment", inActive},
		{"at a segment boundary", probe.segs[2]},
		{"into a sealed segment", inSealed},
		{"to the start", 0},
		{"to the end", end},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mem := memfs.New()
			fsys := &fdFS{FS: mem, open: map[*fdFile]string{}}
			cache := fdcache.New(fsys, 8)
			cfg := truncCfg
			cfg.Files = cache
			f := newTruncFixture(t, fsys, cfg)
			readAll(t, f.l) // fill the descriptor cache with sealed segments
			changed := f.l.Changed()
			if err := f.l.TruncateTo(tc.offset); err != nil {
				t.Fatal(err)
			}
			if tc.offset != end {
				select {
				case <-changed:
				default:
					t.Fatal("long polls not woken")
				}
			}
			k := f.segOf(tc.offset)
			if tc.offset == end {
				k = last
			}
			if n := f.l.NumSegments(); n != k+1 {
				t.Fatalf("%d segments, want %d", n, k+1)
			}
			if f.l.DurableOffset() != tc.offset {
				t.Fatalf("durable %d, want %d", f.l.DurableOffset(), tc.offset)
			}
			f.l.segMu.RLock()
			active := f.l.segs[len(f.l.segs)-1]
			f.l.segMu.RUnlock()
			if active.Sealed() {
				t.Fatal("the cut segment is still sealed")
			}
			f.checkKept(t, f.l, tc.offset, "after truncation")
			// No descriptor of a deleted segment is held, by the cache
			// or anyone; the cut segment has its writer only.
			_, names := fsys.openLogFiles()
			cutPath, _, _ := segment.FileNames("/d", active.Base())
			writers := 0
			for _, n := range names {
				if _, err := mem.Stat(n); err != nil {
					t.Fatalf("descriptor of a deleted segment still open: %s", n)
				}
				if n == cutPath {
					writers++
				}
			}
			if writers != 1 {
				t.Fatalf("%d descriptors of the cut segment open, want 1 (its writer; the cache's forgotten): %v", writers, names)
			}
			if _, err := mem.Stat("/d/" + TruncateIntentFile); err == nil {
				t.Fatal("intent file left behind")
			}
			// Appends continue at the offset, with new data.
			res, err := f.l.Append(batch(t, "new", 2, 5000), AppendOptions{})
			if err != nil || res.FirstOffset != tc.offset {
				t.Fatalf("append after truncation: %+v %v, want offset %d", res, err, tc.offset)
			}
			f.values[tc.offset], f.values[tc.offset+1] = "new-0", "new-1"
			f.bases = append(f.bases, tc.offset)
			f.ts = append(f.ts, 5001)
			f.checkKept(t, f.l, tc.offset+2, "after append")
			if ts, err := f.l.OffsetForTimestamp(5000); err != nil || !ts.Found || ts.Offset != tc.offset {
				t.Fatalf("offset for the new timestamp: %+v %v", ts, err)
			}
			if err := f.l.WaitDurable(context.Background(), tc.offset+1); err != nil {
				t.Fatal(err)
			}
			// A power cut now keeps it all; so does a clean reopen.
			crashed := mem.Crash(memfs.CrashOptions{})
			if err := f.l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, reopen := range []struct {
				name string
				fs   vfs.FS
				st   State
			}{{"clean", mem, State{Clean: true}}, {"crash", crashed, State{RecoveryPoint: f.durable}}} {
				l := openLog(t, reopen.fs, "/d", truncCfg, reopen.st)
				f.checkKept(t, l, tc.offset+2, reopen.name+" reopen")
				if res, err := l.Append(batch(t, "more", 1, 1), AppendOptions{}); err != nil || res.FirstOffset != tc.offset+2 {
					t.Fatalf("%s reopen: append %+v %v", reopen.name, res, err)
				}
				l.Close()
			}
		})
	}
}

func TestTruncateToRefusals(t *testing.T) {
	f := newTruncFixture(t, memfs.New(), truncCfg)
	defer f.l.Close()
	end := f.l.EndOffset()
	var inside int64 = -1
	for i, b := range f.bases {
		if i+1 < len(f.bases) && f.bases[i+1]-b > 1 {
			inside = b + 1
			break
		}
	}
	if err := f.l.TruncateTo(inside); !errors.Is(err, ErrNotBatchBoundary) {
		t.Fatalf("inside a batch: %v", err)
	}
	if err := f.l.TruncateTo(end + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past the end: %v", err)
	}
	if err := f.l.AdvanceStartOffset(f.bases[3]); err != nil {
		t.Fatal(err)
	}
	if err := f.l.TruncateTo(f.bases[2]); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("below the start: %v", err)
	}
	if f.l.EndOffset() != end {
		t.Fatalf("a refused truncation changed the end: %d", f.l.EndOffset())
	}
	f.checkKept(t, f.l, end, "after refusals")
	if err := f.l.TruncateTo(f.bases[3]); err != nil {
		t.Fatalf("to the start offset: %v", err)
	}
	if f.l.EndOffset() != f.bases[3] || f.l.StartOffset() != f.bases[3] {
		t.Fatalf("start %d end %d, want both %d", f.l.StartOffset(), f.l.EndOffset(), f.bases[3])
	}
}

// A crash at every step of a truncation - before each file operation it
// makes, losing or keeping what was not synced - leaves either every old
// batch or exactly the kept ones, and a log that takes appends at its end.
// The checkpointed recovery point is the old one: the worst case, since
// nothing rewrote it.
func TestTruncateCrashAtEveryStep(t *testing.T) {
	probe := newTruncFixture(t, memfs.New(), truncCfg)
	targets := []int64{probe.bases[len(probe.bases)-2], probe.segs[2], probe.bases[5], 0}
	probe.l.Close()
	for _, target := range targets {
		mem := memfs.New()
		var arm atomic.Bool
		var images []*memfs.FS
		var ops []string
		var mu sync.Mutex
		fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
			if !arm.Load() {
				return nil
			}
			switch op {
			case errorfs.OpRead, errorfs.OpList, errorfs.OpStat, errorfs.OpOpen:
				return nil
			}
			mu.Lock()
			images = append(images, mem.Crash(memfs.CrashOptions{}), mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}))
			ops = append(ops, fmt.Sprintf("%v %s", op, name), fmt.Sprintf("%v %s (unsynced kept)", op, name))
			mu.Unlock()
			return nil
		}))
		f := newTruncFixture(t, fsys, truncCfg)
		oldEnd := f.l.EndOffset()
		arm.Store(true)
		if err := f.l.TruncateTo(target); err != nil {
			t.Fatal(err)
		}
		arm.Store(false)
		images = append(images, mem.Crash(memfs.CrashOptions{}))
		ops = append(ops, "after TruncateTo returned")
		if len(images) < 8 {
			t.Fatalf("target %d: only %d steps: %v", target, len(images)/2, ops)
		}
		sawOld, sawNew, nested := false, false, 0
		for i, img := range images {
			label := fmt.Sprintf("target %d, crash before %s", target, ops[i])
			_, statErr := img.Stat("/d/" + TruncateIntentFile)
			hasIntent := statErr == nil
			if hasIntent && i%4 == 0 {
				// The Open that finishes the truncation is cut too, at
				// each of its steps (from every other step of the
				// truncation, to keep the test short): the truncation
				// stays decided.
				for j, again := range crashSteps(t, img.Snapshot(), func(fsys vfs.FS) {
					if l, err := Open(fsys, "/d", truncCfg, State{RecoveryPoint: f.durable}); err == nil {
						l.Close()
					}
				}) {
					l, err := Open(again, "/d", truncCfg, State{RecoveryPoint: f.durable})
					if err != nil {
						t.Fatalf("%s, then at step %d of the reopen: %v", label, j, err)
					}
					if l.EndOffset() != target {
						t.Fatalf("%s, then at step %d of the reopen: end %d, want %d", label, j, l.EndOffset(), target)
					}
					f.checkKept(t, l, target, label+", cut again")
					l.Close()
					nested++
				}
			}
			l, err := Open(img, "/d", truncCfg, State{RecoveryPoint: f.durable})
			if err != nil {
				t.Fatalf("%s: reopen: %v", label, err)
			}
			if hasIntent && l.EndOffset() != target {
				t.Fatalf("%s: the intent is durable, yet end %d, want %d", label, l.EndOffset(), target)
			}
			switch l.EndOffset() {
			case oldEnd:
				sawOld = true
			case target:
				sawNew = true
			default:
				t.Fatalf("%s: end %d, want %d (old) or %d (truncated)", label, l.EndOffset(), oldEnd, target)
			}
			f.checkKept(t, l, l.EndOffset(), label)
			if _, err := img.Stat("/d/" + TruncateIntentFile); err == nil && i == len(images)-1 {
				t.Fatalf("%s: intent file survives", label)
			}
			end := l.EndOffset()
			if res, err := l.Append(batch(t, "post", 1, 1), AppendOptions{}); err != nil || res.FirstOffset != end {
				t.Fatalf("%s: append after recovery: %+v %v", label, res, err)
			}
			l.Close()
			// And once more, cleanly: the finished truncation stays finished.
			l = openLog(t, img, "/d", truncCfg, State{Clean: true})
			if l.EndOffset() != end+1 {
				t.Fatalf("%s: clean reopen end %d, want %d", label, l.EndOffset(), end+1)
			}
			l.Close()
		}
		if !sawOld || !sawNew || nested == 0 {
			t.Fatalf("target %d: crashes gave old tail %v, new tail %v, %d cuts while finishing: all expected", target, sawOld, sawNew, nested)
		}
		t.Logf("target %d: %d cuts during the truncation, %d during the Open that finished it", target, len(images), nested)
		f.l.Close()
	}
}

// Readers running during truncations and appends never see a torn batch:
// every read returns whole batches that pass their CRC, or says the offset
// is out of range.
func TestTruncateConcurrentReaders(t *testing.T) {
	f := newTruncFixture(t, memfs.New(), truncCfg)
	defer f.l.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var reads atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				end := f.l.EndOffset()
				if end == 0 {
					continue
				}
				off := int64(i*7) % end
				res, err := f.l.Read(off, 1<<20, true)
				if errors.Is(err, ErrOffsetOutOfRange) {
					continue
				}
				if err != nil {
					t.Errorf("read at %d: %v", off, err)
					return
				}
				for p := 0; p < len(res.Data); {
					h, err := record.ReadBatchHeader(res.Data[p:])
					if err == nil && p+h.Size() <= len(res.Data) {
						_, _, err = record.Records(res.Data[p:p+h.Size()], 1<<20)
					}
					if err != nil {
						t.Errorf("read at %d: batch at %d: %v", off, p, err)
						return
					}
					p += h.Size()
				}
				reads.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for round := 0; round < 30; round++ {
		// Let the readers in between rounds (poll, with a deadline).
		for r0 := reads.Load(); reads.Load() < r0+3 && time.Now().Before(deadline); {
			time.Sleep(100 * time.Microsecond)
		}
		base := f.bases[(round*5)%len(f.bases)]
		if base < f.l.EndOffset() {
			if err := f.l.TruncateTo(base); err != nil {
				t.Fatal(err)
			}
			kept := f.bases[:0]
			for _, b := range f.bases {
				if b < base {
					kept = append(kept, b)
				}
			}
			f.bases = kept
		}
		for i := 0; i < 10; i++ {
			res, err := f.l.Append(batch(t, fmt.Sprintf("r%d", round), 1+i%3, int64(round)), AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			f.bases = append(f.bases, res.FirstOffset)
		}
	}
	close(stop)
	wg.Wait()
	if reads.Load() < 30 {
		t.Fatalf("only %d reads ran", reads.Load())
	}
}

// A WaitDurable for an offset that a truncation removed returns
// ErrTruncated instead of waiting for offsets that no longer exist.
func TestWaitDurableTruncated(t *testing.T) {
	f := newTruncFixture(t, memfs.New(), truncCfg)
	defer f.l.Close()
	res, err := f.l.Append(batch(t, "gone", 2, 1), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.l.TruncateTo(res.FirstOffset); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.l.WaitDurable(ctx, res.LastOffset); !errors.Is(err, ErrTruncated) {
		t.Fatalf("wait for a truncated offset: %v", err)
	}
	if err := f.l.WaitDurable(ctx, res.FirstOffset-1); err != nil {
		t.Fatalf("wait for a kept offset: %v", err)
	}
}

// An fsync that a WaitDurable started before a truncation must not move
// the durable offset past the new end when it finishes: TruncateTo waits
// for it (it takes the fsync slot).
func TestTruncateWaitsForRunningFsync(t *testing.T) {
	mem := memfs.New()
	var block atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpSync && strings.HasSuffix(name, ".log") && block.CompareAndSwap(true, false) {
			entered <- struct{}{}
			<-release
		}
		return nil
	}))
	f := newTruncFixture(t, fsys, truncCfg)
	defer f.l.Close()
	res, err := f.l.Append(batch(t, "tail", 3, 1), AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	block.Store(true)
	waited := make(chan error, 1)
	go func() { waited <- f.l.WaitDurable(context.Background(), res.LastOffset) }()
	<-entered // the fsync runs, with the old end as its target
	truncated := make(chan error, 1)
	go func() { truncated <- f.l.TruncateTo(res.FirstOffset) }()
	// Give a truncation that does not wait the time to finish (it
	// would, in well under the deadline); one that waits never does.
	deadline := time.Now().Add(200 * time.Millisecond)
	for f.l.EndOffset() != res.FirstOffset && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(release)
	if err := <-waited; err != nil {
		t.Fatalf("wait: %v", err)
	}
	if err := <-truncated; err != nil {
		t.Fatal(err)
	}
	if d, e := f.l.DurableOffset(), f.l.EndOffset(); d != e || e != res.FirstOffset {
		t.Fatalf("durable %d, end %d: want both %d", d, e, res.FirstOffset)
	}
}

// A damaged intent file stops Open rather than being guessed at; one
// naming an offset at or past the end (recovery cut more) is just removed.
func TestTruncateIntentAtOpen(t *testing.T) {
	mem := memfs.New()
	f := newTruncFixture(t, mem, truncCfg)
	end := f.l.EndOffset()
	f.l.Close()
	intent := "/d/" + TruncateIntentFile
	if err := mem.WriteFile(intent, []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(mem, "/d", truncCfg, State{Clean: true}); err == nil {
		t.Fatal("opened with a damaged intent file")
	}
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(end+5))
	if err := atomicfile.Write(mem, intent, truncateMagic, truncateVersion, payload[:]); err != nil {
		t.Fatal(err)
	}
	l := openLog(t, mem, "/d", truncCfg, State{Clean: true})
	if l.EndOffset() != end {
		t.Fatalf("end %d, want %d", l.EndOffset(), end)
	}
	if _, err := mem.Stat(intent); err == nil {
		t.Fatal("intent file left")
	}
	l.Close()
}

// crashSteps runs run on mem and returns the images a power cut would
// leave before each file operation that changes something (keeping none,
// then all, of the unsynced bytes), and at the end.
func crashSteps(t *testing.T, mem *memfs.FS, run func(vfs.FS)) []*memfs.FS {
	t.Helper()
	var mu sync.Mutex
	var images []*memfs.FS
	run(errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		switch op {
		case errorfs.OpRead, errorfs.OpList, errorfs.OpStat, errorfs.OpOpen:
			return nil
		}
		mu.Lock()
		images = append(images, mem.Crash(memfs.CrashOptions{}), mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}))
		mu.Unlock()
		return nil
	})))
	return append(images, mem.Crash(memfs.CrashOptions{}))
}
