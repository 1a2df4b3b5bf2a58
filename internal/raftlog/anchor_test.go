package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// batchesFrom reads every batch of l from offset from to the log end:
// base offset -> bytes (gaps skipped, as Fetch does).
func batchesFrom(t *testing.T, l *seglog.Log, from int64) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	for off := from; off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			break // a gap up to the end
		}
		for data := res.Data; len(data) > 0; {
			h, err := record.ReadBatchHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			out[h.BaseOffset] = data[:h.Size()]
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return out
}

// cleanBelow rewrites every sealed segment of l that ends at or below
// bound keeping one batch in two (as a cleaner leaves gaps), and returns
// how many batches it dropped.
func cleanBelow(t *testing.T, l *seglog.Log, bound int64) int {
	t.Helper()
	segs, err := l.SealedSegments()
	if err != nil {
		t.Fatal(err)
	}
	dropped := 0
	for _, seg := range segs {
		if seg.End > bound {
			break
		}
		data, err := l.ReadSealed(seg.Base, seg.Base, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		var kept []byte
		for k, b := 0, data; len(b) > 0; k++ {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if k%2 == 0 {
				kept = append(kept, b[:h.Size()]...)
			} else {
				dropped++
			}
			b = b[h.Size():]
		}
		if err := l.ReplaceSegments(seg.Base, seg.End, func(w io.Writer) error { _, err := w.Write(kept); return err }); err != nil {
			t.Fatal(err)
		}
	}
	return dropped
}

// lastSealedEndBelow is the end of the last sealed segment of l at or
// below off (0: none).
func lastSealedEndBelow(t *testing.T, l *seglog.Log, off int64) int64 {
	t.Helper()
	segs, err := l.SealedSegments()
	if err != nil {
		t.Fatal(err)
	}
	var end int64
	for _, s := range segs {
		if s.End <= off {
			end = s.End
		}
	}
	return end
}

// The anchor moves above the log start (AdvanceAnchorApplied): raft's
// entries below it are compacted (Entries and Term say ErrCompacted), the
// log start stays and the batches below the anchor stay readable; the
// move survives a reopen, and after the region below the anchor is
// cleaned (batches dropped, gaps) the translator is still right from the
// anchor on. The move obeys the applied and conf-change rules and needs a
// batch boundary.
func TestAdvanceAnchorKeepsLogStart(t *testing.T) {
	s, l, fs := newStorage(t)
	model := fill(t, s, 1, 40, 1) // conf changes at 7, 14, 21, 28, 35
	if err := s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	before := batchesFrom(t, l, 0)
	off30, _ := s.OffsetOf(30)
	if moved, err := s.AdvanceAnchorApplied(off30, 40); moved || !errors.Is(err, ErrConfAboveStart) {
		t.Fatalf("anchor to 30 with a conf change at 35 applied: %v %v", moved, err)
	}
	off36, _ := s.OffsetOf(36)
	if moved, err := s.AdvanceAnchorApplied(off36, 30); moved || !errors.Is(err, ErrNotApplied) {
		t.Fatalf("anchor past applied: %v %v", moved, err)
	}
	off38, _ := s.OffsetOf(38) // entry 37 holds 2 records
	if moved, err := s.AdvanceAnchorApplied(off38-1, 40); moved || !errors.Is(err, seglog.ErrNotBatchBoundary) {
		t.Fatalf("anchor inside a batch: %v %v", moved, err)
	}
	if moved, err := s.AdvanceAnchorApplied(off36, 40); !moved || err != nil {
		t.Fatalf("anchor to 36: %v %v", moved, err)
	}
	check := func(s *Storage, l *seglog.Log, label string) {
		t.Helper()
		checkContract(t, s, 36, 1, model[35:])
		if l.StartOffset() != 0 || s.StartOffset() != 0 || s.AnchorOffset() != off36 {
			t.Fatalf("%s: log start %d, recorded %d, anchor %d; want 0, 0, %d", label, l.StartOffset(), s.StartOffset(), s.AnchorOffset(), off36)
		}
		if off, ok := s.OffsetOf(35); ok {
			t.Fatalf("%s: entry 35 still translated to %d", label, off)
		}
		meta, at, ok := s.SnapshotMeta()
		if !ok || meta.GetIndex() != 35 || at != off36 || !slices.Equal(meta.GetConfState().GetVoters(), []uint64{1, 2, 3}) {
			t.Fatalf("%s: SnapshotMeta %v at %d %v", label, meta, at, ok)
		}
	}
	check(s, l, "live")
	if got := batchesFrom(t, l, 0); len(got) != len(before) {
		t.Fatalf("the anchor move changed the log: %d batches, had %d", len(got), len(before))
	}
	l.Close()
	s, l = openStorage(t, fs)
	check(s, l, "reopened")

	bound := lastSealedEndBelow(t, l, s.AnchorOffset())
	if bound == 0 {
		t.Fatal("no sealed segment below the anchor: the case needs one")
	}
	if dropped := cleanBelow(t, l, bound); dropped == 0 {
		t.Fatal("cleaning dropped nothing")
	}
	l.Close()
	s, l = openStorage(t, fs)
	defer l.Close()
	check(s, l, "cleaned and reopened")
	after := batchesFrom(t, l, 0)
	if len(after) >= len(before) {
		t.Fatalf("%d batches after cleaning, %d before", len(after), len(before))
	}
	for off, b := range after {
		if !bytes.Equal(b, before[off]) {
			t.Fatalf("batch at %d changed by cleaning", off)
		}
	}

	// Retention below the anchor moves the start alone; at the anchor's
	// offset or above, both.
	first := int64(-1)
	for off := range after {
		if off > 0 && (first < 0 || off < first) {
			first = off
		}
	}
	if moved, err := s.AdvanceStartApplied(first, 40); !moved || err != nil {
		t.Fatalf("start below the anchor: %v %v", moved, err)
	}
	if l.StartOffset() != first || s.StartOffset() != first || s.AnchorOffset() != off36 {
		t.Fatalf("start %d/%d anchor %d after a start move below the anchor", l.StartOffset(), s.StartOffset(), s.AnchorOffset())
	}
	checkContract(t, s, 36, 1, model[35:])
	if moved, err := s.AdvanceStartApplied(off38, 40); !moved || err != nil {
		t.Fatalf("start above the anchor: %v %v", moved, err)
	}
	if l.StartOffset() != off38 || s.AnchorOffset() != off38 {
		t.Fatalf("start %d anchor %d, want both %d", l.StartOffset(), s.AnchorOffset(), off38)
	}
	checkContract(t, s, 38, 1, model[37:])
}

// A power cut at each file operation of an anchor move leaves the old
// anchor or the new one after the reopen, never anything else: the log
// start and every batch are untouched either way.
func TestAdvanceAnchorCrashAtEveryStep(t *testing.T) {
	sawOld, sawNew := false, false
	for k := 1; ; k++ {
		mem := memfs.New()
		if err := mem.MkdirAll("/p"); err != nil {
			t.Fatal(err)
		}
		if err := mem.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		var armed atomic.Bool
		var ops atomic.Int64
		var img *memfs.FS
		fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
			if !armed.Load() || op == errorfs.OpRead || op == errorfs.OpStat {
				return nil
			}
			if ops.Add(1) == int64(k) {
				img = mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll})
				return errorfs.ErrInjected
			}
			return nil
		}))
		s, l := openStorage(t, fsys)
		model := fill(t, s, 1, 20, 1)
		before := batchesFrom(t, l, 0)
		off15, _ := s.OffsetOf(15)
		armed.Store(true)
		_, err := s.AdvanceAnchorApplied(off15, 20)
		armed.Store(false)
		label := fmt.Sprintf("op %d", k)
		if img == nil {
			// Every operation done: durable on return.
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			s2, l2 := reopenCrashed(t, mem.Crash(memfs.CrashOptions{}))
			checkContract(t, s2, 15, 1, model[14:])
			l2.Close()
			l.Close()
			if !sawOld {
				t.Fatal("no cut gave the old anchor: the test missed a side")
			}
			t.Logf("%d operations; cuts gave old %v, new %v", k-1, sawOld, sawNew)
			return
		}
		l.Close()
		for _, im := range []vfs.FS{img, mem.Crash(memfs.CrashOptions{})} {
			s2, l2 := reopenCrashed(t, im)
			if fi, _ := s2.FirstIndex(); fi == 1 {
				sawOld = true
				checkContract(t, s2, 1, 0, model)
			} else {
				sawNew = true
				checkContract(t, s2, 15, 1, model[14:])
			}
			if l2.StartOffset() != 0 {
				t.Fatalf("%s: log start %d", label, l2.StartOffset())
			}
			if got := batchesFrom(t, l2, 0); len(got) != len(before) {
				t.Fatalf("%s: %d batches, had %d", label, len(got), len(before))
			}
			l2.Close()
		}
		if k > 100 {
			t.Fatal("AdvanceAnchorApplied takes more than 100 operations?")
		}
	}
}

// A raft entry is stored as it is even when the log's own write rules
// would refuse or rewrite it (a compacted topic's keyless record,
// compression.type): those rules are the leader's, applied before it
// proposes; a follower refusing a committed entry would stop its replica.
func TestAppendStoresEntryAsIs(t *testing.T) {
	s, l, _ := newStorage(t)
	cfg := l.Config()
	cfg.Compaction = seglog.Compaction{Enabled: true}
	cfg.Compression = seglog.Compression{Recompress: true, Codec: record.CodecGzip, Level: record.DefaultLevel}
	l.SetConfig(cfg)
	b := clientBatch(t, "keyless", 3, 20) // no keys, uncompressed
	if err := s.Append([]*raftpb.Entry{normal(1, 1, b)}); err != nil {
		t.Fatalf("append of a keyless entry to a compacted log: %v", err)
	}
	got, err := s.Entries(1, 2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := record.ReadBatchHeader(got[0].GetData())
	if h.Codec() != record.CodecNone || len(got[0].GetData()) != len(b) {
		t.Fatalf("stored as codec %v, %d bytes; proposed uncompressed, %d bytes", h.Codec(), len(got[0].GetData()), len(b))
	}
}

// regionLeader is a leader's storage whose anchor moved to entry 36 above
// its log start, with the region below cleaned and the start moved inside
// a batch of it: what a snapshot must carry.
type regionLeader struct {
	s             *Storage
	l             *seglog.Log
	model         []*raftpb.Entry
	meta          *raftpb.SnapshotMetadata
	start, anchor int64
	region        []byte
	want          map[int64][]byte // the leader's batches in [start, anchor)
}

func newRegionLeader(t *testing.T) *regionLeader {
	t.Helper()
	s, l, _ := newStorage(t)
	rl := &regionLeader{s: s, l: l, model: fill(t, s, 1, 40, 1)}
	if err := s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	off36, _ := s.OffsetOf(36)
	if moved, err := s.AdvanceAnchorApplied(off36, 40); !moved || err != nil {
		t.Fatalf("anchor: %v %v", moved, err)
	}
	if cleanBelow(t, l, lastSealedEndBelow(t, l, off36)) == 0 {
		t.Fatal("cleaning dropped nothing")
	}
	// The start inside the first batch of several records.
	var inside int64 = -1
	for _, b := range batchesFrom(t, l, 0) {
		h, _ := record.ReadBatchHeader(b)
		if h.NumRecords > 1 && h.LastOffset() < off36 && (inside < 0 || h.BaseOffset+1 < inside) {
			inside = h.BaseOffset + 1
		}
	}
	if inside < 0 {
		t.Fatal("no batch of several records below the anchor")
	}
	if moved, err := s.AdvanceStartApplied(inside, 40); !moved || err != nil {
		t.Fatalf("start: %v %v", moved, err)
	}
	var ok bool
	rl.meta, rl.anchor, ok = s.SnapshotMeta()
	if !ok || rl.anchor != off36 {
		t.Fatalf("SnapshotMeta: %v %d %v", rl.meta, rl.anchor, ok)
	}
	if _, _, err := s.Region(off36, 10); !errors.Is(err, ErrRegionTooLarge) {
		t.Fatalf("Region(10 bytes): %v, want ErrRegionTooLarge", err)
	}
	var err error
	rl.start, rl.region, err = s.Region(off36, 1<<20)
	if err != nil || rl.start != inside || len(rl.region) == 0 {
		t.Fatalf("Region: start %d (want %d), %d bytes, %v", rl.start, inside, len(rl.region), err)
	}
	rl.want = map[int64][]byte{}
	for off, b := range batchesFrom(t, l, inside) {
		if off < off36 {
			rl.want[off] = b
		}
	}
	return rl
}

// checkFollower checks a follower after it installed rl's snapshot: its
// log starts at the leader's start, holds the leader's batches below the
// anchor byte for byte (gaps included) and ends at the anchor, where the
// leader's next entries then land at the leader's offsets.
func (rl *regionLeader) checkFollower(t *testing.T, s *Storage, l *seglog.Log, label string) {
	t.Helper()
	if fi, _ := s.FirstIndex(); fi != 36 {
		t.Fatalf("%s: FirstIndex %d", label, fi)
	}
	if l.StartOffset() != rl.start || l.EndOffset() != rl.anchor || s.StartOffset() != rl.start || s.AnchorOffset() != rl.anchor {
		t.Fatalf("%s: log [%d, %d) recorded start %d anchor %d; want [%d, %d)", label, l.StartOffset(), l.EndOffset(), s.StartOffset(), s.AnchorOffset(), rl.start, rl.anchor)
	}
	got := batchesFrom(t, l, rl.start)
	if len(got) != len(rl.want) {
		t.Fatalf("%s: %d batches below the anchor, the leader has %d", label, len(got), len(rl.want))
	}
	for off, b := range rl.want {
		if !bytes.Equal(got[off], b) {
			t.Fatalf("%s: batch at %d differs from the leader's", label, off)
		}
	}
	ents, err := rl.s.Entries(36, 41, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ents); err != nil {
		t.Fatalf("%s: append after the install: %v", label, err)
	}
	for i := uint64(36); i <= 40; i++ {
		want, _ := rl.s.OffsetOf(i)
		if off, _ := s.OffsetOf(i); off != want {
			t.Fatalf("%s: entry %d at %d, the leader's at %d", label, i, off, want)
		}
	}
	checkContract(t, s, 36, 1, rl.model[35:])
}

// A snapshot that carries the region below the leader's anchor installs
// it: the follower's copy equals the leader's, cleaned batches and gaps
// included, with no hole; a reopen keeps it and no region file is left.
func TestInstallSnapshotRegion(t *testing.T) {
	rl := newRegionLeader(t)
	s, l, fs := newStorage(t)
	fill(t, s, 1, 5, 1)
	var resets []int64
	s.afterReset = func(off int64) error { resets = append(resets, off); return nil }
	if err := s.InstallSnapshotRegion(rl.meta, rl.start, rl.anchor, rl.region); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(resets, []int64{rl.anchor}) {
		t.Fatalf("AfterReset calls %v", resets)
	}
	rl.checkFollower(t, s, l, "live")
	if _, err := fs.Stat(testDir + "/" + RegionFile); err == nil {
		t.Fatal("the region file is left after the install")
	}
	l.Close()
	s2, l2 := openStorage(t, fs)
	defer l2.Close()
	checkContract(t, s2, 36, 1, rl.model[35:])
	if l2.StartOffset() != rl.start {
		t.Fatalf("reopened: log start %d", l2.StartOffset())
	}
	// A region that does not fit its claims is refused before anything
	// changes.
	if err := s2.InstallSnapshotRegion(partSnapMeta(60, 2, 1, 2, 3), rl.start, rl.start, rl.region); err == nil {
		t.Fatal("a region reaching past the anchor was installed")
	}
	// Nor one whose batch was damaged on the way: checked as a streamed
	// region is (RegionCheck), CRCs included.
	bad := slices.Clone(rl.region)
	bad[len(bad)-1] ^= 0xff
	if err := s2.InstallSnapshotRegion(partSnapMeta(60, 2, 1, 2, 3), rl.start, rl.anchor, bad); !errors.Is(err, ErrRegionChunk) {
		t.Fatalf("a region with a damaged batch: %v, want ErrRegionChunk", err)
	}
}

// A power cut at each file operation of an install with a region leaves,
// after the reopen, the follower's old log or the leader's copy (region
// and anchor), never a hole or a half-filled region.
func TestInstallSnapshotRegionCrashAtEveryStep(t *testing.T) {
	rl := newRegionLeader(t)
	crashRegionInstallAtEveryStep(t, rl, RegionFile, func(s *Storage, _ vfs.FS, _ *memfs.FS) func() error {
		return func() error { return s.InstallSnapshotRegion(rl.meta, rl.start, rl.anchor, rl.region) }
	})
}

// crashRegionInstallAtEveryStep cuts the power at the k-th file operation
// (not a read or a stat) of an install, for k = 1, 2, ... until the
// install runs whole: prepare sets up what the install needs on a fresh
// follower (its own operations are not counted) and returns the install.
// Each image (unsynced bytes kept, and lost) must reopen as the old log or
// the leader's copy, with no file named leftover left; both must be seen.
func crashRegionInstallAtEveryStep(t *testing.T, rl *regionLeader, leftover string, prepare func(s *Storage, fsys vfs.FS, mem *memfs.FS) func() error) {
	t.Helper()
	sawOld, sawNew := false, false
	for k := 1; ; k++ {
		mem := memfs.New()
		if err := mem.MkdirAll("/p"); err != nil {
			t.Fatal(err)
		}
		if err := mem.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		var armed atomic.Bool
		var ops atomic.Int64
		var img *memfs.FS
		fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
			if !armed.Load() || op == errorfs.OpRead || op == errorfs.OpStat {
				return nil
			}
			if ops.Add(1) == int64(k) {
				img = mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll})
				return errorfs.ErrInjected
			}
			return nil
		}))
		s, l := openStorage(t, fsys)
		model := fill(t, s, 1, 5, 1)
		install := prepare(s, fsys, mem)
		armed.Store(true)
		err := install()
		armed.Store(false)
		l.Close()
		label := fmt.Sprintf("op %d", k)
		if img == nil {
			if err != nil {
				t.Fatalf("%s: %v", label, err)
			}
			if !sawOld || !sawNew {
				t.Fatalf("cuts gave old %v, new %v: the test missed a side", sawOld, sawNew)
			}
			t.Logf("%d operations", k-1)
			return
		}
		for _, im := range []vfs.FS{img, mem.Crash(memfs.CrashOptions{})} {
			l2 := openLog(t, im)
			s2, err := OpenWith(im, l2, Options{AfterReset: func(int64) error { return nil }})
			if err != nil {
				t.Fatalf("%s: reopen: %v", label, err)
			}
			if fi, _ := s2.FirstIndex(); fi == 1 {
				sawOld = true
				checkContract(t, s2, 1, 0, model)
			} else {
				sawNew = true
				rl.checkFollower(t, s2, l2, label)
			}
			if _, err := im.Stat(testDir + "/" + leftover); err == nil {
				t.Fatalf("%s: %s is left after the reopen", label, leftover)
			}
			l2.Close()
		}
		if k > 400 {
			t.Fatal("the install takes more than 400 operations?")
		}
	}
}

// When the configuration changed since the anchor (a learner added), the
// snapshot is taken at the applied index with the applied configuration
// (raft refuses one that does not hold the recipient) and carries the log
// up to the entry after it: the follower's copy ends there, equal to the
// leader's, and takes the next entries.
func TestSnapshotMetaApplied(t *testing.T) {
	rl := newRegionLeader(t)
	cs := &raftpb.ConfState{Voters: []uint64{1, 2, 3}, Learners: []uint64{4}}
	if err := rl.s.SetConfState(cs); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := rl.s.SnapshotMetaApplied(30); ok {
		t.Fatal("a snapshot below the anchor")
	}
	meta, to, ok := rl.s.SnapshotMetaApplied(38)
	off39, _ := rl.s.OffsetOf(39)
	if !ok || meta.GetIndex() != 38 || meta.GetTerm() != 1 || to != off39 || !slices.Equal(meta.GetConfState().GetLearners(), []uint64{4}) {
		t.Fatalf("SnapshotMetaApplied(38): %v at %d %v", meta, to, ok)
	}
	start, region, err := rl.s.Region(to, 1<<20)
	if err != nil || start != rl.start || len(region) <= len(rl.region) {
		t.Fatalf("Region to %d: start %d, %d bytes (%d to the anchor), %v", to, start, len(region), len(rl.region), err)
	}
	s, l, _ := newStorage(t)
	if err := s.InstallSnapshotRegion(meta, start, to, region); err != nil {
		t.Fatal(err)
	}
	if fi, _ := s.FirstIndex(); fi != 39 || l.EndOffset() != to || l.StartOffset() != rl.start {
		t.Fatalf("FirstIndex %d, log [%d, %d); want 39, [%d, %d)", fi, l.StartOffset(), l.EndOffset(), rl.start, to)
	}
	want := batchesFrom(t, rl.l, rl.start)
	for off, b := range batchesFrom(t, l, rl.start) {
		if !bytes.Equal(b, want[off]) {
			t.Fatalf("batch at %d differs from the leader's", off)
		}
	}
	ents, err := rl.s.Entries(39, 41, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	checkContract(t, s, 39, 1, rl.model[38:])
}
