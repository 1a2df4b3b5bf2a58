package raftlog

import (
	"errors"
	"fmt"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func snapMeta(index, term uint64, voters ...uint64) *raftpb.SnapshotMetadata {
	return &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(term), ConfState: &raftpb.ConfState{Voters: voters}}
}

// Snapshot answers what the installed source has, and
// ErrSnapshotTemporarilyUnavailable (the exact value: raft compares with ==
// and panics on anything else) when there is none or it fails.
func TestSnapshotSource(t *testing.T) {
	s, _, _ := newStorage(t)
	fill(t, s, 1, 10, 1)
	if _, err := s.Snapshot(); err != raft.ErrSnapshotTemporarilyUnavailable {
		t.Fatalf("no source: %v", err)
	}
	want := &raftpb.Snapshot{Data: []byte("state"), Metadata: snapMeta(8, 1, 1, 2, 3)}
	var fail error
	s.SetSnapshotSource(func() (*raftpb.Snapshot, error) { return want, fail })
	got, err := s.Snapshot()
	if err != nil || !proto.Equal(got, want) {
		t.Fatalf("Snapshot = %v, %v; want %v", got, err, want)
	}
	fail = errors.New("disk on fire")
	if _, err := s.Snapshot(); err != raft.ErrSnapshotTemporarilyUnavailable {
		t.Fatalf("failing source: %v", err)
	}
	fail = nil
	// Once the log starts past the snapshot, sending it would loop.
	if err := s.Compact(10); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Snapshot(); err != raft.ErrSnapshotTemporarilyUnavailable {
		t.Fatalf("snapshot at 8 with first index 10: %v", err)
	}
	s.SetSnapshotSource(func() (*raftpb.Snapshot, error) { return nil, nil })
	if _, err := s.Snapshot(); err != raft.ErrSnapshotTemporarilyUnavailable {
		t.Fatalf("empty snapshot: %v", err)
	}
}

// Compact moves FirstIndex; the entries after it and Term(first-1) stay,
// also after a reopen.
func TestCompact(t *testing.T) {
	s, l, fs := newStorage(t)
	ents := fill(t, s, 1, 30, 2)
	if err := s.Compact(12); err != nil {
		t.Fatal(err)
	}
	checkContract(t, s, 12, 2, ents[11:])
	if err := s.Compact(5); err != nil { // backwards: nothing
		t.Fatal(err)
	}
	checkContract(t, s, 12, 2, ents[11:])
	if err := s.Compact(40); !errors.Is(err, raft.ErrUnavailable) {
		t.Fatalf("compact past the end: %v", err)
	}
	l.Close()
	s2, l2 := openStorage(t, fs.Crash(memfs.CrashOptions{}))
	defer l2.Close()
	checkContract(t, s2, 12, 2, ents[11:])
	// Everything: the log is empty and starts after index 30.
	if err := s2.Compact(31); err != nil {
		t.Fatal(err)
	}
	if fi, _ := s2.FirstIndex(); fi != 31 {
		t.Fatalf("FirstIndex %d after compacting all", fi)
	}
	if li, _ := s2.LastIndex(); li != 30 {
		t.Fatalf("LastIndex %d after compacting all", li)
	}
	if tm, err := s2.Term(30); err != nil || tm != 2 {
		t.Fatalf("Term(30) = %d, %v", tm, err)
	}
}

// InstallSnapshot discards the log: FirstIndex is the snapshot's index + 1,
// Term(index) its term, the conf state its, the commit at least its index;
// entries appended after it follow; and all of it survives a power cut.
func TestInstallSnapshot(t *testing.T) {
	for _, tc := range []struct {
		name        string
		have        int // entries in the log before
		index, term uint64
	}{
		{"empty log", 0, 40, 3},
		{"behind", 10, 40, 3},
		{"conflicting longer tail", 60, 40, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _, fs := newStorage(t)
			if tc.have > 0 {
				fill(t, s, 1, tc.have, 1)
			}
			if err := s.SetHardState(&raftpb.HardState{Term: proto.Uint64(2), Vote: proto.Uint64(2), Commit: proto.Uint64(uint64(min(tc.have, 5)))}); err != nil {
				t.Fatal(err)
			}
			meta := snapMeta(tc.index, tc.term, 1, 2, 3)
			if err := s.InstallSnapshot(meta); err != nil {
				t.Fatal(err)
			}
			check := func(s *Storage, after []*raftpb.Entry) {
				t.Helper()
				checkContract(t, s, tc.index+1, tc.term, after)
				hs, cs, _ := s.InitialState()
				if hs.GetCommit() != tc.index || hs.GetTerm() != 2 || hs.GetVote() != 2 {
					t.Fatalf("hard state %v after install at %d", hs, tc.index)
				}
				if !proto.Equal(cs, meta.GetConfState()) {
					t.Fatalf("conf state %v, want %v", cs, meta.GetConfState())
				}
			}
			check(s, nil)
			s2, l2 := openStorage(t, fs.Crash(memfs.CrashOptions{}))
			check(s2, nil)
			after := fill(t, s2, tc.index+1, 5, 4)
			check(s2, after)
			l2.Close()
			s3, l3 := openStorage(t, fs.Crash(memfs.CrashOptions{}))
			defer l3.Close()
			check(s3, nil) // fs is the first image's source: nothing after
			if err := s.InstallSnapshot(snapMeta(tc.index-1, tc.term)); !errors.Is(err, raft.ErrSnapOutOfDate) {
				t.Fatalf("older snapshot: %v", err)
			}
		})
	}
}

// A power cut at any write of an InstallSnapshot leaves the log as it was
// or as the install makes it, never something that fails to open.
func TestCrashDuringInstallSnapshot(t *testing.T) {
	for k := 1; k <= 8; k++ {
		t.Run(fmt.Sprintf("write%d", k), func(t *testing.T) {
			s, _, fs := newStorage(t)
			ents := fill(t, s, 1, 20, 1)
			if err := s.SetHardState(&raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(3)}); err != nil {
				t.Fatal(err)
			}
			cut := fs.CrashAtWrite(k, memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}, nil)
			if err := s.InstallSnapshot(snapMeta(50, 2, 1)); err != nil {
				t.Fatal(err)
			}
			s2, _ := reopenCrashed(t, cut())
			if fi, _ := s2.FirstIndex(); fi == 1 {
				checkContract(t, s2, 1, 0, ents)
			} else {
				checkContract(t, s2, 51, 2, nil)
			}
		})
	}
}
