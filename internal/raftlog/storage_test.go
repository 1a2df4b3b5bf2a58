package raftlog

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// fill appends n entries from index first with term term: client batches of
// 1-3 records, a leader's empty entry first and a conf change every 7th.
func fill(t *testing.T, s *Storage, first uint64, n int, term uint64) []*raftpb.Entry {
	t.Helper()
	var ents []*raftpb.Entry
	for i := uint64(0); i < uint64(n); i++ {
		idx := first + i
		switch {
		case i == 0:
			ents = append(ents, normal(idx, term, nil))
		case idx%7 == 0:
			ents = append(ents, typed(idx, term, raftpb.EntryConfChangeV2, []byte(fmt.Sprintf("cc%d", idx))))
		default:
			ents = append(ents, normal(idx, term, clientBatch(t, fmt.Sprintf("e%d", idx), 1+int(idx%3), 40)))
		}
	}
	if err := s.Append(ents); err != nil {
		t.Fatal(err)
	}
	return ents
}

// checkContract verifies FirstIndex, LastIndex, Term and Entries of s
// against model (the entries expected from first on) and prevTerm.
func checkContract(t *testing.T, s *Storage, first uint64, prevTerm uint64, model []*raftpb.Entry) {
	t.Helper()
	last := first + uint64(len(model)) - 1
	if fi, _ := s.FirstIndex(); fi != first {
		t.Fatalf("FirstIndex %d, want %d", fi, first)
	}
	if li, _ := s.LastIndex(); li != last {
		t.Fatalf("LastIndex %d, want %d", li, last)
	}
	if tm, err := s.Term(first - 1); err != nil || tm != prevTerm {
		t.Fatalf("Term(first-1) = %d, %v; want %d", tm, err, prevTerm)
	}
	if first >= 2 {
		if _, err := s.Term(first - 2); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Term(first-2): %v, want ErrCompacted", err)
		}
		if _, err := s.Entries(first-1, first+1, 1<<30); !errors.Is(err, raft.ErrCompacted) {
			t.Fatalf("Entries(first-1): %v, want ErrCompacted", err)
		}
	}
	if _, err := s.Term(last + 1); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Term(last+1): %v, want ErrUnavailable", err)
	}
	if _, err := s.Entries(first, last+2, 1<<30); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("Entries past last: %v, want ErrUnavailable", err)
	}
	for k, w := range model {
		if tm, err := s.Term(w.GetIndex()); err != nil || tm != w.GetTerm() {
			t.Fatalf("Term(%d) = %d, %v; want %d", w.GetIndex(), tm, err, w.GetTerm())
		}
		// Every window [lo, hi) from this entry.
		for hi := first + uint64(k) + 1; hi <= last+1; hi++ {
			got, err := s.Entries(w.GetIndex(), hi, 1<<30)
			if err != nil {
				t.Fatalf("Entries(%d, %d): %v", w.GetIndex(), hi, err)
			}
			if uint64(len(got)) != hi-w.GetIndex() {
				t.Fatalf("Entries(%d, %d): %d entries", w.GetIndex(), hi, len(got))
			}
			for j, g := range got {
				if err := sameEntry(t, g, model[k+j]); err != nil {
					t.Fatalf("Entries(%d, %d): %v", w.GetIndex(), hi, err)
				}
			}
		}
	}
	if len(model) == 0 {
		return
	}
	// maxSize: 0 still returns one entry; the sum of sizes is a limit.
	got, err := s.Entries(first, last+1, 0)
	if err != nil || len(got) != 1 {
		t.Fatalf("Entries(maxSize 0): %d entries, %v", len(got), err)
	}
	if len(model) >= 3 {
		limit := uint64(proto.Size(got[0]))
		two, _ := s.Entries(first, first+2, 1<<30)
		limit += uint64(proto.Size(two[1]))
		got, err = s.Entries(first, last+1, limit)
		if err != nil || len(got) != 2 {
			t.Fatalf("Entries(maxSize of two): %d entries, %v", len(got), err)
		}
	}
}

func TestStorageContract(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *Storage) (first, prevTerm uint64, model []*raftpb.Entry)
	}{
		{"across segments", func(t *testing.T, s *Storage) (uint64, uint64, []*raftpb.Entry) {
			m := fill(t, s, 1, 10, 1)
			m = append(m, fill(t, s, 11, 10, 3)...)
			return 1, 0, m
		}},
		{"tail truncated by a new term", func(t *testing.T, s *Storage) (uint64, uint64, []*raftpb.Entry) {
			m := fill(t, s, 1, 20, 1)
			m = append(m[:12], fill(t, s, 13, 5, 2)...)
			return 1, 0, m
		}},
		{"tail truncated after the first entry", func(t *testing.T, s *Storage) (uint64, uint64, []*raftpb.Entry) {
			m := fill(t, s, 1, 20, 1)
			return 1, 0, append(m[:1], fill(t, s, 2, 12, 2)...)
		}},
		{"start moved inside a segment", func(t *testing.T, s *Storage) (uint64, uint64, []*raftpb.Entry) {
			m := fill(t, s, 1, 20, 1)
			m = append(m, fill(t, s, 21, 5, 4)...)
			off, _ := s.OffsetOf(9)
			if err := s.AdvanceStart(off); err != nil {
				t.Fatal(err)
			}
			return 9, 1, m[8:]
		}},
		{"start moved then tail truncated", func(t *testing.T, s *Storage) (uint64, uint64, []*raftpb.Entry) {
			m := fill(t, s, 1, 20, 2)
			off, _ := s.OffsetOf(15)
			if err := s.AdvanceStart(off); err != nil {
				t.Fatal(err)
			}
			m = append(m[14:17], fill(t, s, 18, 6, 5)...)
			return 15, 2, m
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, l, fs := newStorage(t)
			first, prev, model := c.run(t, s)
			if l.NumSegments() < 2 {
				t.Fatalf("%d segments: the case does not cross a segment", l.NumSegments())
			}
			checkContract(t, s, first, prev, model)
			// The same after a reopen (translator rebuilt from headers).
			l.Close()
			s2, l2 := openStorage(t, fs)
			defer l2.Close()
			checkContract(t, s2, first, prev, model)
		})
	}
}

func TestControlEntriesAreControlBatches(t *testing.T) {
	s, l, _ := newStorage(t)
	fill(t, s, 1, 8, 1) // 1: empty entry, 7: conf change
	for _, idx := range []uint64{1, 7} {
		off, _ := s.OffsetOf(idx)
		res, err := l.Read(off, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		h, err := record.ReadBatchHeader(res.Data)
		if err != nil || !h.IsControl() || h.PartitionLeaderEpoch != 1 {
			t.Fatalf("entry %d: batch control=%v epoch=%d err=%v", idx, h.IsControl(), h.PartitionLeaderEpoch, err)
		}
	}
	off, _ := s.OffsetOf(2)
	res, _ := l.Read(off, 1, true)
	if h, _ := record.ReadBatchHeader(res.Data); h.IsControl() {
		t.Fatal("client entry stored as a control batch")
	}
}

func TestHardStatePersisted(t *testing.T) {
	s, l, fs := newStorage(t)
	hs, cs, err := s.InitialState()
	if err != nil || hs != nil || cs == nil {
		t.Fatalf("fresh state: %v %v %v", hs, cs, err)
	}
	want := &raftpb.HardState{Term: proto.Uint64(5), Vote: proto.Uint64(2), Commit: proto.Uint64(0)}
	if err := s.SetHardState(want); err != nil {
		t.Fatal(err)
	}
	if err := s.SetConfState(&raftpb.ConfState{Voters: []uint64{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	// Power cut right after: both are durable.
	l.Close()
	crashed := fs.Crash(memfsDropUnsynced)
	s2, l2 := openStorage(t, crashed)
	defer l2.Close()
	hs, cs, _ = s2.InitialState()
	if !proto.Equal(hs, want) || len(cs.GetVoters()) != 3 {
		t.Fatalf("after crash: %v %v", hs, cs)
	}
}

func TestAppendRefusesWhatItCannotStore(t *testing.T) {
	s, _, _ := newStorage(t)
	fill(t, s, 1, 3, 1)
	if err := s.Append([]*raftpb.Entry{normal(4, 1, []byte("not a batch"))}); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("non-batch data: %v, want ErrBadEntry", err)
	}
	if err := s.Append([]*raftpb.Entry{normal(4, 1<<31, nil)}); !errors.Is(err, ErrBadEntry) {
		t.Fatalf("term past int32: %v, want ErrBadEntry", err)
	}
	if err := s.Append([]*raftpb.Entry{normal(6, 1, nil)}); !errors.Is(err, ErrGap) {
		t.Fatalf("gap: %v, want ErrGap", err)
	}
	if li, _ := s.LastIndex(); li != 3 {
		t.Fatalf("LastIndex %d after refused appends, want 3", li)
	}
	if _, err := s.Snapshot(); !errors.Is(err, raft.ErrSnapshotTemporarilyUnavailable) {
		t.Fatalf("Snapshot: %v", err)
	}
}

// The start moved around the raft storage (seglog's own retention) leaves
// the first batch's index unknown: Open refuses rather than guess.
func TestOpenRefusesStartMovedAround(t *testing.T) {
	s, l, fs := newStorage(t)
	fill(t, s, 1, 10, 1)
	off, _ := s.OffsetOf(5)
	if err := l.AdvanceStartOffset(off); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2, err := seglog.Open(fs, testDir, testCfg, seglog.State{LogStartOffset: off})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if _, err := Open(fs, l2); !errors.Is(err, ErrStartMoved) {
		t.Fatalf("Open: %v, want ErrStartMoved", err)
	}
}

// AdvanceStart at an offset inside a batch is refused.
func TestAdvanceStartNeedsABatchBoundary(t *testing.T) {
	s, _, _ := newStorage(t)
	fill(t, s, 1, 6, 1)
	off, _ := s.OffsetOf(3) // entry 3 holds 1+3%3 = 1 record; entry 2 holds 3
	off2, _ := s.OffsetOf(2)
	if off-off2 < 2 {
		t.Fatalf("entry 2 holds %d records, the case needs more", off-off2)
	}
	if err := s.AdvanceStart(off2 + 1); !errors.Is(err, seglog.ErrNotBatchBoundary) {
		t.Fatalf("AdvanceStart inside a batch: %v", err)
	}
	if fi, _ := s.FirstIndex(); fi != 1 {
		t.Fatalf("FirstIndex %d after a refused move", fi)
	}
}

// A start move whose segment deletion fails after the anchor is durable
// leaves the translator on the new anchor (FirstIndex and the offsets
// agree with what a reopen gives), and the reopen finishes the move.
func TestAdvanceStartFailedDeleteKeepsTranslatorOnAnchor(t *testing.T) {
	mem := memfs.New()
	if err := mem.MkdirAll("/p"); err != nil {
		t.Fatal(err)
	}
	failRemove := false
	fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if failRemove && op == errorfs.OpRemove && strings.HasSuffix(name, ".log") {
			return errors.New("injected remove failure")
		}
		return nil
	}))
	s, l := openStorage(t, fsys)
	defer l.Close()
	model := fill(t, s, 1, 20, 1)
	if l.NumSegments() < 3 {
		t.Fatalf("%d segments", l.NumSegments())
	}
	off, _ := s.OffsetOf(15)
	failRemove = true
	if err := s.AdvanceStart(off); err == nil {
		t.Fatal("AdvanceStart: no error with segment removal failing")
	}
	failRemove = false
	checkContract(t, s, 15, 1, model[14:])
	l.Close()
	s2, l2 := openStorage(t, fsys)
	defer l2.Close()
	checkContract(t, s2, 15, 1, model[14:])
}

// A log that ends before the anchor (batches lost under the raft state) is
// refused at Open instead of giving indexes that point nowhere.
func TestOpenRefusesLogEndingBeforeAnchor(t *testing.T) {
	s, l, fs := newStorage(t)
	fill(t, s, 1, 5, 1)
	p := s.mu.st
	p.an = anchor{index: 9, offset: l.EndOffset() + 10, prevTerm: 1}
	if err := writeState(fs, testDir, p); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l2 := openLog(t, fs)
	defer l2.Close()
	if _, err := Open(fs, l2); !errors.Is(err, ErrLostEntries) {
		t.Fatalf("Open: %v, want ErrLostEntries", err)
	}
}
