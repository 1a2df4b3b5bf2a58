package raftlog

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func partSnapMeta(index, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: voters}}
}

// checkInstalled checks a storage after a partition snapshot install at
// (index, term) with the log restarted at offset, and that the next entry
// is stored at offset.
func checkInstalled(t *testing.T, s *Storage, l *seglog.Log, index, term uint64, offset int64, label string) {
	t.Helper()
	if fi, _ := s.FirstIndex(); fi != index+1 {
		t.Fatalf("%s: FirstIndex %d, want %d", label, fi, index+1)
	}
	if li, _ := s.LastIndex(); li != index {
		t.Fatalf("%s: LastIndex %d, want %d", label, li, index)
	}
	if tm, err := s.Term(index); err != nil || tm != term {
		t.Fatalf("%s: Term(%d) = %d %v, want %d", label, index, tm, err, term)
	}
	if l.StartOffset() != offset || l.EndOffset() != offset {
		t.Fatalf("%s: log [%d, %d), want empty at %d", label, l.StartOffset(), l.EndOffset(), offset)
	}
	hs, cs, _ := s.InitialState()
	if hs.GetCommit() < index || !slices.Equal(cs.GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("%s: commit %d voters %v", label, hs.GetCommit(), cs.GetVoters())
	}
	if err := s.Append([]*raftpb.Entry{normal(index+1, term, clientBatch(t, "after", 2, 10))}); err != nil {
		t.Fatalf("%s: append after install: %v", label, err)
	}
	if off, _ := s.OffsetOf(index + 1); off != offset {
		t.Fatalf("%s: entry %d at offset %d, want %d", label, index+1, off, offset)
	}
}

// A partition's snapshot install restarts the log empty at the leader's
// log start offset, above or below this log's end: the next entry gets
// that offset, as on the leader (the old InstallSnapshot kept this log's
// own end, so offsets differed between replicas).
func TestInstallSnapshotAtRestartsLogAtOffset(t *testing.T) {
	for _, offset := range []int64{3, 5000} {
		t.Run(fmt.Sprint(offset), func(t *testing.T) {
			s, l, fs := newStorage(t)
			fill(t, s, 1, 20, 1)
			var resets []int64
			s.afterReset = func(off int64) error { resets = append(resets, off); return nil }
			if err := s.InstallSnapshotAt(partSnapMeta(40, 2, 1, 2, 3), offset); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(resets, []int64{offset}) {
				t.Fatalf("AfterReset calls %v", resets)
			}
			meta, at, ok := s.SnapshotMeta()
			if !ok || meta.GetIndex() != 40 || meta.GetTerm() != 2 || at != offset {
				t.Fatalf("SnapshotMeta after install: %v %d %v", meta, at, ok)
			}
			checkInstalled(t, s, l, 40, 2, offset, "live")
			l.Close()
			s2, l2 := openStorage(t, fs)
			defer l2.Close()
			if off, _ := s2.OffsetOf(41); off != offset {
				t.Fatalf("reopened: entry 41 at %d", off)
			}
			if err := s2.InstallSnapshotAt(partSnapMeta(30, 2, 1, 2, 3), 0); !errors.Is(err, ErrSnapshotOutOfDate) {
				t.Fatalf("older snapshot: %v", err)
			}
		})
	}
}

// A power cut at every filesystem operation of InstallSnapshotAt leaves,
// after OpenWith, the old log and raft state whole, or the installed state
// with the log empty at the offset and AfterReset run; never a mix (once
// the state file says so, the reset is finished by Open).
func TestInstallSnapshotAtCrashAtEveryStep(t *testing.T) {
	const offset = 5000
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
		oldEnd := l.EndOffset()
		armed.Store(true)
		err := s.InstallSnapshotAt(partSnapMeta(40, 2, 1, 2, 3), offset)
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
			return
		}
		for _, im := range []vfs.FS{img, mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll})} {
			l2 := openLog(t, im)
			var resets []int64
			s2, err := OpenWith(im, l2, Options{AfterReset: func(off int64) error { resets = append(resets, off); return nil }})
			if err != nil {
				t.Fatalf("%s: reopen: %v", label, err)
			}
			if fi, _ := s2.FirstIndex(); fi == 1 {
				sawOld = true
				if l2.EndOffset() != oldEnd {
					t.Fatalf("%s: old state with log end %d, had %d", label, l2.EndOffset(), oldEnd)
				}
				checkContract(t, s2, 1, 0, model)
			} else {
				sawNew = true
				st, _, _ := readState(im, testDir)
				if st.reset {
					t.Fatalf("%s: reset still pending after Open", label)
				}
				checkInstalled(t, s2, l2, 40, 2, offset, label)
			}
			l2.Close()
		}
		if k > 300 {
			t.Fatal("InstallSnapshotAt takes more than 300 operations?")
		}
	}
}

// The partition's start-move rule: never past the applied index, never
// to a point with a conf change between it and the applied index; the
// conf state recorded with the anchor is what SnapshotMeta gives.
func TestAdvanceStartAppliedConfRule(t *testing.T) {
	s, _, _ := newStorage(t)
	fill(t, s, 1, 20, 1) // conf changes at 7 and 14
	if err := s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.SnapshotMeta(); ok {
		t.Fatal("SnapshotMeta with FirstIndex 1")
	}
	off10, _ := s.OffsetOf(10)
	if moved, err := s.AdvanceStartApplied(off10, 20); moved || !errors.Is(err, ErrConfAboveStart) {
		t.Fatalf("start to 10 with a conf change at 14 applied: %v %v", moved, err)
	}
	// Not applied yet: the conf change at 14 does not count, the start
	// may not pass the applied index either.
	if moved, err := s.AdvanceStartApplied(off10, 12); !moved || err != nil {
		t.Fatalf("start to 10, applied 12: %v %v", moved, err)
	}
	off18, _ := s.OffsetOf(18)
	if moved, err := s.AdvanceStartApplied(off18, 12); moved || !errors.Is(err, ErrNotApplied) {
		t.Fatalf("start past applied: %v %v", moved, err)
	}
	off15, _ := s.OffsetOf(15)
	if moved, err := s.AdvanceStartApplied(off15, 20); !moved || err != nil {
		t.Fatalf("start to 15 past the last conf change: %v %v", moved, err)
	}
	meta, at, ok := s.SnapshotMeta()
	if !ok || meta.GetIndex() != 14 || meta.GetTerm() != 1 || at != off15 || !slices.Equal(meta.GetConfState().GetVoters(), []uint64{1, 2, 3}) {
		t.Fatalf("SnapshotMeta: %v at %d %v", meta, at, ok)
	}
	// A plain AdvanceStart does not know the configuration: no snapshot.
	off17, _ := s.OffsetOf(17)
	if err := s.AdvanceStart(off17); err != nil {
		t.Fatal(err)
	}
	if _, _, ok := s.SnapshotMeta(); ok {
		t.Fatal("SnapshotMeta after a move that did not record the configuration")
	}
}

// The conf-change indexes survive a reopen (rebuilt from the control
// batches) and a cut tail.
func TestConfIndexesRebuilt(t *testing.T) {
	s, l, fs := newStorage(t)
	fill(t, s, 1, 20, 1)
	fill(t, s, 12, 2, 2) // cuts 12.. (the conf change at 14 goes)
	if !slices.Equal(s.mu.confs, []uint64{7}) {
		t.Fatalf("confs after the cut: %v", s.mu.confs)
	}
	fill(t, s, 14, 15, 2) // 21 and 28 are conf changes
	want := []uint64{7, 21, 28}
	if !slices.Equal(s.mu.confs, want) {
		t.Fatalf("confs: %v, want %v", s.mu.confs, want)
	}
	l.Close()
	s2, l2 := openStorage(t, fs)
	defer l2.Close()
	if !slices.Equal(s2.mu.confs, want) {
		t.Fatalf("confs after reopen: %v, want %v", s2.mu.confs, want)
	}
}

// The state file's version 3 keeps the log start below the anchor, and
// (since version 2) the reset flag and the anchor's conf state (unknown,
// empty and set are three different things); version 2 files (no log
// start: the anchor's offset) and version 1 files (no flags, no anchor
// conf state) still read.
func TestStateFileVersions(t *testing.T) {
	base := persisted{
		hs:    &raftpb.HardState{Term: proto.Uint64(3), Commit: proto.Uint64(9)},
		cs:    &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
		an:    anchor{index: 10, offset: 500, prevTerm: 2},
		start: 400,
	}
	for _, c := range []struct {
		name  string
		reset bool
		acs   *raftpb.ConfState
	}{
		{"unknown", false, nil},
		{"empty", true, &raftpb.ConfState{}},
		{"set", false, &raftpb.ConfState{Voters: []uint64{1, 2}, Learners: []uint64{4}}},
	} {
		p := base
		p.reset, p.acs = c.reset, c.acs
		b, err := p.encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeState(stateVersion, b)
		if err != nil || got.reset != c.reset || (got.acs == nil) != (c.acs == nil) || (c.acs != nil && !proto.Equal(got.acs, c.acs)) ||
			got.an != p.an || got.start != p.start || !proto.Equal(got.cs, p.cs) {
			t.Fatalf("%s: %+v %v", c.name, got, err)
		}
	}
	p := base
	b, _ := p.encode()
	v2 := b[:len(b)-8]   // the log start
	v1 := v2[:len(v2)-5] // flags byte and the 0xffffffff length of an unknown anchor conf state
	got, err := decodeState(2, v2)
	if err != nil || got.reset || got.acs != nil || got.an != base.an || got.start != base.an.offset {
		t.Fatalf("version 2: %+v %v", got, err)
	}
	got, err = decodeState(1, v1)
	if err != nil || got.reset || got.acs != nil || got.an != base.an || got.start != base.an.offset {
		t.Fatalf("version 1: %+v %v", got, err)
	}
	if _, err := decodeState(2, v1); err == nil {
		t.Fatal("a version 1 layout read as version 2")
	}
	if _, err := decodeState(1, b); err == nil {
		t.Fatal("a version 3 layout read as version 1")
	}
	bad := p
	bad.start = 501 // above the anchor
	bb, _ := bad.encode()
	if _, err := decodeState(3, bb); err == nil {
		t.Fatal("a log start above the anchor read")
	}
}
