package raftlog

import (
	"errors"
	"fmt"
	"sort"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/seglog"
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
	if err := s.checkInstallLocked(index, term); err != nil {
		return err
	}
	end := s.log.EndOffset()
	p := s.mu.st
	p.an = anchor{index: index + 1, offset: end, prevTerm: term}
	p.start = end
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
	s.mu.cache.clear()
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

// ErrConfAboveStart: AdvanceStartApplied refused to move the start because
// a conf-change entry lies between the new start and the applied index:
// the configuration as of the new anchor is not the applied one, and a
// snapshot claiming it would make a follower apply that change twice.
var ErrConfAboveStart = errors.New("raftlog: a conf change lies above the new start")

// ErrNotApplied: AdvanceStartApplied was asked to discard entries that are
// not applied yet.
var ErrNotApplied = errors.New("raftlog: start past the applied index")

// AdvanceStartApplied is AdvanceStart for an owner whose state machine is
// the log itself (a partition: its snapshot is the log start offset and
// the producer state, internal/replica). The rule that keeps the
// snapshot's configuration right: the new first index k must be at most
// applied+1 (never discard what is not applied; ErrNotApplied), and no
// conf-change entry may lie in [k, applied] (ErrConfAboveStart), so that
// the configuration as of k-1 is the applied one (SetConfState's, which
// the owner calls for every conf change it applies), which is recorded
// with the anchor. So the start never stops between a conf change and the
// applied index: retention waits until it can move past the change (the
// disk may then hold up to the segments that reach past the change more
// than retention asks). It reports whether the start moved.
func (s *Storage) AdvanceStartApplied(offset int64, applied uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset <= s.mu.st.start {
		return false, nil
	}
	if offset <= s.mu.st.an.offset {
		// Below the anchor: no entry goes, the anchor's configuration
		// stays.
		return s.advanceStartLocked(offset, s.mu.st.acs)
	}
	if _, err := s.checkAppliedLocked("advance start", offset, applied); err != nil {
		return false, err
	}
	return s.advanceStartLocked(offset, proto.CloneOf(s.mu.st.cs))
}

// checkAppliedLocked returns the position k of the entry at offset (the
// new first entry would be the anchor's index + k) once the rule of
// AdvanceStartApplied holds for it: at most applied+1 (ErrNotApplied), no
// conf change in [new first index, applied] (ErrConfAboveStart). mu must
// be held; offset is above the anchor's.
func (s *Storage) checkAppliedLocked(what string, offset int64, applied uint64) (int, error) {
	k := sort.Search(len(s.mu.offs), func(k int) bool { return s.mu.offs[k] >= offset })
	idx := s.mu.st.an.index + uint64(k) // the new first index
	if idx > applied+1 {
		return 0, fmt.Errorf("raftlog %s: %s to %d (index %d), applied %d: %w", s.log.Dir(), what, offset, idx, applied, ErrNotApplied)
	}
	c := sort.Search(len(s.mu.confs), func(i int) bool { return s.mu.confs[i] >= idx })
	if c < len(s.mu.confs) && s.mu.confs[c] <= applied {
		return 0, fmt.Errorf("raftlog %s: %s to %d (index %d): conf change at %d, applied %d: %w", s.log.Dir(), what, offset, idx, s.mu.confs[c], applied, ErrConfAboveStart)
	}
	return k, nil
}

// AdvanceAnchorApplied moves FirstIndex up to the entry whose batch is at
// offset (a batch boundary, or the log end offset) WITHOUT moving the log
// start: the batches in [log start, offset) stay in the segments, readable
// as before, but are no longer raft entries (Entries and Term below are
// raft.ErrCompacted), so the log cleaner may rewrite them (a compacted
// replicated partition: its cleaning is bounded by AnchorOffset). The rule
// is AdvanceStartApplied's (at most applied+1: ErrNotApplied; no conf
// change in [new first index, applied]: ErrConfAboveStart), and the
// applied configuration is recorded with the anchor, in one durable write
// of StateFile: the commit point (nothing else changes on disk, so a crash
// leaves the old anchor or the new). A move at or below the anchor is a
// no-op. It reports whether the anchor moved.
func (s *Storage) AdvanceAnchorApplied(offset int64, applied uint64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if offset <= s.mu.st.an.offset {
		return false, nil
	}
	k, err := s.checkAppliedLocked("advance anchor", offset, applied)
	if err != nil {
		return false, err
	}
	if offset != s.log.EndOffset() && (k == len(s.mu.offs) || s.mu.offs[k] != offset) {
		return false, fmt.Errorf("raftlog %s: advance anchor to %d: %w", s.log.Dir(), offset, seglog.ErrNotBatchBoundary)
	}
	if k == 0 {
		return false, nil
	}
	if err := s.moveAnchorLocked(k, offset, proto.CloneOf(s.mu.st.cs), s.mu.st.start); err != nil {
		return false, fmt.Errorf("raftlog %s: advance anchor to %d: %w", s.log.Dir(), offset, err)
	}
	return true, nil
}

// SnapshotMeta is the metadata of a partition's snapshot: index
// FirstIndex-1, the anchor's term and the configuration recorded with
// the anchor, and the anchor's offset, where the entries after the
// snapshot start; false when there is nothing to snapshot (FirstIndex 1)
// or the anchor's configuration is unknown (the start moved some other
// way). When the log holds batches below the anchor (AdvanceAnchorApplied
// moved it above the log start), the snapshot must carry them (Region,
// InstallSnapshotRegion), or the follower's copy would have a hole.
func (s *Storage) SnapshotMeta() (*raftpb.SnapshotMetadata, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	an := s.mu.st.an
	if an.index <= 1 || s.mu.st.acs == nil {
		return nil, 0, false
	}
	return &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(an.index - 1),
		Term:      proto.Uint64(an.prevTerm),
		ConfState: proto.CloneOf(s.mu.st.acs),
	}, an.offset, true
}

// SnapshotMetaApplied is SnapshotMeta at the applied index instead of the
// anchor: index applied, its term, the configuration as applied
// (SetConfState's), and the offset of entry applied+1, where the
// follower's log then ends. A partition snapshot must be taken there when
// the configuration changed since the anchor: raft refuses a snapshot
// whose configuration does not hold the recipient, and a learner added
// after the anchor is not in the anchor's. The snapshot then carries the
// log below that offset (Region). False when applied is outside the log
// (below FirstIndex-1 or past LastIndex).
func (s *Storage) SnapshotMetaApplied(applied uint64) (*raftpb.SnapshotMetadata, int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.mu.st.an.index
	if applied == 0 || applied+1 < first || applied > s.lastLocked() {
		return nil, 0, false
	}
	term := s.mu.st.an.prevTerm
	if applied >= first {
		term = uint64(s.mu.terms[applied-first])
	}
	off, ok := s.offsetOfLocked(applied + 1)
	if !ok {
		return nil, 0, false
	}
	return &raftpb.SnapshotMetadata{
		Index:     proto.Uint64(applied),
		Term:      proto.Uint64(term),
		ConfState: proto.CloneOf(s.mu.st.cs),
	}, off, true
}

// InstallSnapshotAt is InstallSnapshot for a partition: the log restarts
// empty at offset, the leader's log start offset (seglog.ResetAt; Kafka's
// truncateFullyAndStartAt), which may lie above or below this log's end,
// so that every replica holds the same batches at the same offsets.
// Crash-safe by the anchor's rule: the new state (anchor at offset,
// FirstIndex meta's index + 1, conf state meta's, commit at least index)
// is written with a "reset pending" mark in one atomic file, the commit
// point; then the log is reset, Options.AfterReset runs, and the mark is
// cleared. OpenWith finishes an install a crash cut after the commit
// point. The caller makes what AfterReset needs durable before (the
// snapshot's data). A snapshot at or below FirstIndex-1 is
// ErrSnapshotOutOfDate and changes nothing.
func (s *Storage) InstallSnapshotAt(meta *raftpb.SnapshotMetadata, offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index, term := meta.GetIndex(), meta.GetTerm()
	if err := s.checkInstallLocked(index, term); err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("raftlog %s: install snapshot at offset %d: %w", s.log.Dir(), offset, seglog.ErrOffsetOutOfRange)
	}
	p := installedState(s.mu.st, meta, offset, offset)
	if err := s.saveLocked(p); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	s.mu.offs, s.mu.terms, s.mu.confs = s.mu.offs[:0], s.mu.terms[:0], s.mu.confs[:0]
	s.mu.cache.clear()
	if err := s.finishResetLocked(&s.mu.st); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	return nil
}

// finishResetLocked restarts the log empty at p's anchor offset (or, for
// an install with a region, at its start holding the region up to the
// anchor: fillRegionLocked), runs AfterReset and clears p's reset mark
// durably (p is s.mu.st, or the state
// Open read); mu must be held, or s not yet shared.
func (s *Storage) finishResetLocked(p *persisted) error {
	if p.region {
		if err := s.fillRegionLocked(p); err != nil {
			return err
		}
	} else if err := s.log.ResetAt(p.an.offset); err != nil {
		return fmt.Errorf("raftlog %s: restart the log at %d: %w", s.log.Dir(), p.an.offset, err)
	}
	if s.afterReset != nil {
		if err := s.afterReset(p.an.offset); err != nil {
			return fmt.Errorf("raftlog %s: after the reset at %d: %w", s.log.Dir(), p.an.offset, err)
		}
	}
	done := *p
	done.reset, done.region, done.stream = false, false, false
	if err := writeState(s.fs, s.log.Dir(), done); err != nil {
		return err
	}
	hadRegion := p.region
	*p = done
	if hadRegion {
		if err := s.removeRegion(); err != nil {
			return err
		}
	}
	return nil
}

// installedState is p once a snapshot of meta is installed: the anchor at
// meta's index + 1 and offset anchorOff, with meta's term before it, the
// log start at start, meta's configuration (also the anchor's), a commit
// of at least meta's index, and a log reset pending.
func installedState(p persisted, meta *raftpb.SnapshotMetadata, start, anchorOff int64) persisted {
	index := meta.GetIndex()
	p.an = anchor{index: index + 1, offset: anchorOff, prevTerm: meta.GetTerm()}
	p.start = start
	p.cs = proto.CloneOf(raftpb.EnsureConfState(meta.GetConfState()))
	p.acs = proto.CloneOf(p.cs)
	hs := &raftpb.HardState{}
	if p.hs != nil {
		hs = proto.CloneOf(p.hs)
	}
	if hs.GetCommit() < index {
		hs.Commit = proto.Uint64(index)
	}
	p.hs = hs
	p.reset = true
	return p
}

// checkInstallLocked refuses a snapshot at or below FirstIndex-1
// (ErrSnapshotOutOfDate) and a term beyond int32 (ErrBadEntry), for every
// install; s.mu held.
// checkRegionInstallLocked is checkInstallLocked for an install that
// restarts the log at start with a region up to anchorOff.
func (s *Storage) checkRegionInstallLocked(index, term uint64, start, anchorOff int64) error {
	if err := s.checkInstallLocked(index, term); err != nil {
		return err
	}
	if start < 0 || start > anchorOff {
		return fmt.Errorf("raftlog %s: install snapshot: log start %d, anchor %d: %w", s.log.Dir(), start, anchorOff, seglog.ErrOffsetOutOfRange)
	}
	return nil
}

func (s *Storage) checkInstallLocked(index, term uint64) error {
	if index == 0 || index+1 <= s.mu.st.an.index {
		return fmt.Errorf("raftlog %s: install snapshot at %d, first index %d: %w", s.log.Dir(), index, s.mu.st.an.index, ErrSnapshotOutOfDate)
	}
	if term > maxTerm {
		return fmt.Errorf("raftlog %s: install snapshot: term %d > int32: %w", s.log.Dir(), term, ErrBadEntry)
	}
	return nil
}
