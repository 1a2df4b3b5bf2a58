package raftlog

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// SnapshotSource supplies the snapshot raft sends to a follower behind
// FirstIndex: the newest one its owner has durably (a raft group's state
// machine snapshot, later a partition's own). It is called on the
// goroutine that drives the RawNode, without the Storage's lock held. It
// answers raft.ErrSnapshotTemporarilyUnavailable (or a nil snapshot) when
// it has none; any other error is treated alike (raft panics on others),
// so a source logs its own failures.
type SnapshotSource func() (*raftpb.Snapshot, error)

// SetSnapshotSource installs src as what Snapshot answers; nil restores
// the default, raft.ErrSnapshotTemporarilyUnavailable.
func (s *Storage) SetSnapshotSource(src SnapshotSource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mu.snap = src
}

// Snapshot implements raft.Storage: the SnapshotSource's snapshot, or
// raft.ErrSnapshotTemporarilyUnavailable when there is no source, it has
// no snapshot, it fails, or its snapshot is older than FirstIndex-1 (raft
// would send it, move the follower to its index + 1, find that compacted
// and send it again, forever).
func (s *Storage) Snapshot() (*raftpb.Snapshot, error) {
	s.mu.Lock()
	src := s.mu.snap
	s.mu.Unlock()
	if src == nil {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	snap, err := src()
	if err != nil || snap.GetMetadata().GetIndex() == 0 {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	s.mu.Lock()
	first := s.mu.st.an.index
	s.mu.Unlock()
	if snap.GetMetadata().GetIndex()+1 < first {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return snap, nil
}

// ErrSnapshotOutOfDate: InstallSnapshot was given a snapshot older than
// the log's start (the Storage already has everything it holds). It
// wraps raft.ErrSnapOutOfDate.
var ErrSnapshotOutOfDate = fmt.Errorf("raftlog: %w", raft.ErrSnapOutOfDate)

// InstallSnapshot makes the log start right after the snapshot meta
// describes, as a follower must when raft hands it a snapshot (Ready's
// Snapshot): every entry is discarded, FirstIndex becomes meta's index + 1,
// Term(index) meta's term, the conf state meta's, and the hard state's
// commit at least index (the snapshot holds only committed state, and raft
// refuses to start with a commit below FirstIndex-1). The caller makes the
// snapshot's data durable first: once this returns the entries it covers
// are gone.
//
// It is crash-safe by the anchor's rule: the new state (anchor at the log
// end offset, so the old batches are below the start) is written in one
// atomic file, the commit point, then seglog's start moves to the end;
// Open finishes a move a crash cut in between. A snapshot at or below
// FirstIndex-1 is ErrSnapshotOutOfDate and changes nothing.
func (s *Storage) InstallSnapshot(meta *raftpb.SnapshotMetadata) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index, term := meta.GetIndex(), meta.GetTerm()
	if index == 0 || index+1 <= s.mu.st.an.index {
		return fmt.Errorf("raftlog %s: install snapshot at %d, first index %d: %w", s.log.Dir(), index, s.mu.st.an.index, ErrSnapshotOutOfDate)
	}
	if term > maxTerm {
		return fmt.Errorf("raftlog %s: install snapshot: term %d > int32: %w", s.log.Dir(), term, ErrBadEntry)
	}
	end := s.log.EndOffset()
	p := s.mu.st
	p.an = anchor{index: index + 1, offset: end, prevTerm: term}
	p.cs = proto.CloneOf(raftpb.EnsureConfState(meta.GetConfState()))
	hs := &raftpb.HardState{}
	if p.hs != nil {
		hs = proto.CloneOf(p.hs)
	}
	if hs.GetCommit() < index {
		hs.Commit = proto.Uint64(index)
	}
	p.hs = hs
	if err := s.saveLocked(p); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	s.mu.offs, s.mu.terms = s.mu.offs[:0], s.mu.terms[:0]
	if err := s.log.AdvanceStartOffset(end); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: move log start to %d: %w", s.log.Dir(), index, end, err)
	}
	return nil
}

// Compact discards the entries below first (a snapshot holds what they
// did): FirstIndex becomes first, through AdvanceStart at that entry's
// batch (or at the log end for LastIndex+1). A first at or below
// FirstIndex is a no-op; past LastIndex+1 is an error.
func (s *Storage) Compact(first uint64) error {
	s.mu.Lock()
	cur, last := s.mu.st.an.index, s.lastLocked()
	off, ok := s.offsetOfLocked(first)
	s.mu.Unlock()
	if first <= cur {
		return nil
	}
	if !ok {
		return fmt.Errorf("raftlog %s: compact to %d past last index %d: %w", s.log.Dir(), first, last, raft.ErrUnavailable)
	}
	// Between the unlock and AdvanceStart only the caller (raft's one
	// goroutine, which also appends) could move the log: it is calling us.
	if err := s.AdvanceStart(off); err != nil {
		return fmt.Errorf("raftlog %s: compact to %d: %w", s.log.Dir(), first, err)
	}
	return nil
}
