package raftlog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

var (
	// ErrStartMoved: the log's start offset is past the anchor StateFile
	// records, so the raft index of its first batch is unknown (the start
	// was moved around this package, not through AdvanceStart).
	ErrStartMoved = errors.New("raftlog: log start moved without the raft storage")
	// ErrLostEntries: the log ends before the anchor's offset: batches
	// raft had durably were lost (a damaged disk), so its indexes cannot
	// be trusted.
	ErrLostEntries = errors.New("raftlog: log lost entries below the anchor")
	// ErrGap: Append was given entries that do not follow the last index.
	ErrGap = errors.New("raftlog: entries leave a gap after the last index")
)

// Storage is raft.Storage over one partition's segment log. It is safe for
// concurrent use; one mutex serializes every method (reads included, whose
// segment reads run under it).
type Storage struct {
	fs  vfs.FS
	log *seglog.Log

	mu struct {
		sync.Mutex
		// st is the hard state, conf state and anchor as on disk, but
		// for a commit index SetHardState kept in memory (dirty).
		st    persisted
		dirty bool
		// offs[k] is the base offset and terms[k] the term of the
		// entry of index st.an.index+k.
		offs  []int64
		terms []int32
		// confs are the indexes of the conf-change entries in the log,
		// ascending (the partition's start-move rule: snapshot.go).
		confs []uint64
		snap  SnapshotSource // what Snapshot answers (snapshot.go); nil: none
		cache entryCache     // the last entries appended (cache.go)
	}
	afterReset func(offset int64) error // Options.AfterReset
}

// Options configure OpenWith.
type Options struct {
	// AfterReset, when set, is called after the log was restarted empty at
	// offset by a snapshot install (InstallSnapshotAt, or Open finishing
	// one a crash interrupted), before the install is marked done: the
	// owner finishes its own part there (a partition takes the producer
	// state the snapshot carried). It must be idempotent.
	AfterReset func(offset int64) error
}

var _ raft.Storage = (*Storage)(nil)

// Open returns the raft storage of log, reading StateFile from the log's
// directory (none: an empty raft state whose first index, 1, is the log's
// first batch, written to a new StateFile at once) and rebuilding the translator from the batch headers. A
// start offset move that a crash interrupted (StateFile written, segments
// not yet trimmed) is finished here.
func Open(fsys vfs.FS, log *seglog.Log) (*Storage, error) {
	return OpenWith(fsys, log, Options{})
}

// OpenWith is Open with options. A snapshot install a crash interrupted
// (StateFile says a reset is pending) is finished first: the log is
// restarted empty at the anchor's offset (seglog.ResetAt, idempotent),
// AfterReset runs, and the pending mark is cleared.
func OpenWith(fsys vfs.FS, log *seglog.Log, opts Options) (*Storage, error) {
	s := &Storage{fs: fsys, log: log, afterReset: opts.AfterReset}
	p, ok, err := readState(fsys, log.Dir())
	if err != nil {
		return nil, err
	}
	if ok && p.reset {
		if err := s.finishResetLocked(&p); err != nil {
			return nil, err
		}
	} else {
		for _, name := range []string{RegionFile, RegionStreamFile} {
			if _, err := fsys.Stat(filepath.Join(log.Dir(), name)); err == nil {
				// A region whose install never reached its commit point.
				if err := s.removeRegion(); err != nil {
					return nil, err
				}
				break
			}
		}
	}
	if !ok {
		// The anchor is written at once: a start moved later around
		// this package must be detected, not taken for index 1.
		p.an = anchor{index: 1, offset: log.StartOffset()}
		p.start = log.StartOffset()
		p.cs = &raftpb.ConfState{}
		if err := writeState(fsys, log.Dir(), p); err != nil {
			return nil, err
		}
	}
	switch start := log.StartOffset(); {
	case log.EndOffset() < p.an.offset:
		return nil, fmt.Errorf("raftlog %s: log ends at %d, before the anchor %d: %w", log.Dir(), log.EndOffset(), p.an.offset, ErrLostEntries)
	case start > p.start:
		return nil, fmt.Errorf("raftlog %s: log start %d, recorded start %d (anchor %d): %w", log.Dir(), start, p.start, p.an.offset, ErrStartMoved)
	case start < p.start:
		if err := log.AdvanceStartOffset(p.start); err != nil {
			return nil, fmt.Errorf("raftlog %s: finish start move to %d: %w", log.Dir(), p.start, err)
		}
	}
	s.mu.st = p
	if err := s.rebuildLocked(); err != nil {
		return nil, err
	}
	return s, nil
}

// rebuildLocked refills the translator from the anchor's offset on; mu
// must be held (or s not yet shared).
func (s *Storage) rebuildLocked() error {
	s.mu.offs, s.mu.terms, s.mu.confs = s.mu.offs[:0], s.mu.terms[:0], s.mu.confs[:0]
	s.mu.cache.clear()
	from := s.mu.st.an.offset
	var bad error
	var controls []int // positions of one-record control batches
	err := s.log.WalkHeaders(from, func(h record.BatchHeader) bool {
		if h.BaseOffset < from {
			bad = fmt.Errorf("raftlog %s: anchor offset %d inside the batch at %d: %w", s.log.Dir(), from, h.BaseOffset, seglog.ErrNotBatchBoundary)
			return false
		}
		if h.IsControl() && h.NumRecords == 1 {
			controls = append(controls, len(s.mu.offs))
		}
		s.mu.offs = append(s.mu.offs, h.BaseOffset)
		s.mu.terms = append(s.mu.terms, h.PartitionLeaderEpoch)
		return true
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("raftlog %s: rebuild translator: %w", s.log.Dir(), err)
	}
	// Conf changes are among the control batches (one per leader change
	// and per conf change: few), whose one record says which they are.
	for _, k := range controls {
		idx := s.mu.st.an.index + uint64(k)
		res, err := s.log.Read(s.mu.offs[k], 1, true)
		if err != nil {
			return fmt.Errorf("raftlog %s: rebuild translator: entry %d: %w", s.log.Dir(), idx, err)
		}
		h, err := record.ReadBatchHeader(res.Data)
		if err != nil || h.Size() > len(res.Data) {
			return fmt.Errorf("raftlog %s: rebuild translator: entry %d: %w", s.log.Dir(), idx, record.ErrCorrupt)
		}
		e, err := decodeEntry(idx, res.Data[:h.Size()])
		if err != nil {
			return fmt.Errorf("raftlog %s: rebuild translator: %w", s.log.Dir(), err)
		}
		if isConf(e) {
			s.mu.confs = append(s.mu.confs, idx)
		}
	}
	return nil
}

func isConf(e *raftpb.Entry) bool {
	return e.GetType() == raftpb.EntryConfChange || e.GetType() == raftpb.EntryConfChangeV2
}

// InitialState implements raft.Storage.
// The states returned are copies.
func (s *Storage) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var hs *raftpb.HardState
	if s.mu.st.hs != nil {
		hs = proto.CloneOf(s.mu.st.hs)
	}
	return hs, proto.CloneOf(s.mu.st.cs), nil
}

// SetHardState records hs. A new term or vote is durable (fsynced) on
// return, as raft requires before the messages of the same Ready are sent:
// a node must never vote twice in a term. A change of the commit index
// alone is kept in memory and written with the next write of StateFile
// (Flush, a term or vote, SetConfState, a start move, a snapshot install),
// which saves the atomic file's two fsyncs on every commit. A commit index
// on disk that lags is safe (etcd raft's MustSync rule): the entries below
// the real one are durable, raft learns the commit again from the leader,
// and re-applies the committed entries from the lagging one, so what is
// applied must be idempotent; a conf change never is re-applied, because
// SetConfState writes the commit that covers it with the conf state.
func (s *Storage) SetHardState(hs *raftpb.HardState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mu.st
	cur := p.hs
	p.hs = proto.CloneOf(hs)
	if cur != nil && cur.GetTerm() == hs.GetTerm() && cur.GetVote() == hs.GetVote() && hs.GetCommit() >= cur.GetCommit() {
		s.mu.st = p
		s.mu.dirty = s.mu.dirty || hs.GetCommit() > cur.GetCommit()
		return nil
	}
	return s.saveLocked(p)
}

// TermVoteDurable reports whether hs's term and vote are those on disk
// (empty hs: true): SetHardState(hs) would then not write, so messages
// need not wait for it.
func (s *Storage) TermVoteDurable(hs *raftpb.HardState) bool {
	if raft.IsEmptyHardState(hs) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.mu.st.hs
	return cur != nil && cur.GetTerm() == hs.GetTerm() && cur.GetVote() == hs.GetVote()
}

// Flush writes a commit index SetHardState kept in memory (fsynced on
// return); a no-op when StateFile holds it already. Owners call it now
// and then and before they stop, so that a restart re-applies little.
func (s *Storage) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.mu.dirty {
		return nil
	}
	return s.saveLocked(s.mu.st)
}

// SetConfState persists cs (fsynced on return), once an applied
// configuration change produced it.
func (s *Storage) SetConfState(cs *raftpb.ConfState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.mu.st
	p.cs = proto.CloneOf(raftpb.EnsureConfState(cs))
	return s.saveLocked(p)
}

func (s *Storage) saveLocked(p persisted) error {
	if err := writeState(s.fs, s.log.Dir(), p); err != nil {
		return err
	}
	s.mu.st, s.mu.dirty = p, false
	return nil
}

// FirstIndex implements raft.Storage: the index of the log's first batch.
func (s *Storage) FirstIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.st.an.index, nil
}

// LastIndex implements raft.Storage.
func (s *Storage) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastLocked(), nil
}

func (s *Storage) lastLocked() uint64 {
	return s.mu.st.an.index + uint64(len(s.mu.offs)) - 1
}

// Term implements raft.Storage: the batch's PartitionLeaderEpoch, or, for
// FirstIndex-1, the term the anchor kept.
func (s *Storage) Term(i uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.mu.st.an.index
	switch {
	case i+1 == first:
		return s.mu.st.an.prevTerm, nil
	case i < first:
		return 0, raft.ErrCompacted
	case i > s.lastLocked():
		return 0, raft.ErrUnavailable
	}
	return uint64(s.mu.terms[i-first]), nil
}

// Entries implements raft.Storage: entries [lo, hi), at least one, then as
// many as fit in maxSize bytes (raftpb.Entry.Size). The entries the cache
// holds (cache.go) are shared and must not be modified; the others are
// freshly read. The slice is the caller's.
func (s *Storage) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.mu.st.an.index
	if lo < first {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastLocked()+1 || lo > hi {
		return nil, fmt.Errorf("raftlog %s: entries [%d, %d) past last index %d: %w", s.log.Dir(), lo, hi, s.lastLocked(), raft.ErrUnavailable)
	}
	// [lo, split) from the segments, [split, hi) from the cache, which
	// holds a suffix of the log (cache.go).
	split := hi
	if c := &s.mu.cache; len(c.ents) > 0 {
		split = min(max(c.first, lo), hi)
	}
	out, size, err := s.readEntriesLocked(lo, split, maxSize)
	if err != nil || uint64(len(out)) < split-lo {
		return out, err // maxSize reached before the cached part
	}
	for i := split; i < hi; i++ {
		e := s.mu.cache.get(i)
		size += uint64(proto.Size(e))
		if len(out) > 0 && size > maxSize {
			break
		}
		out = append(out, e)
	}
	return out, nil
}

// readEntriesLocked returns the entries [lo, hi) read from
// the segments, at least one, then while their size stays within
// maxSize; it returns them and their size. mu must be held.
func (s *Storage) readEntriesLocked(lo, hi, maxSize uint64) ([]*raftpb.Entry, uint64, error) {
	var out []*raftpb.Entry
	first := s.mu.st.an.index
	var size uint64
	for i := lo; i < hi; {
		budget := min(maxSize-min(size, maxSize), 1<<20)
		res, err := s.log.Read(s.mu.offs[i-first], int(max(budget, 1)), true)
		if err != nil {
			return nil, 0, fmt.Errorf("raftlog %s: entry %d at offset %d: %w", s.log.Dir(), i, s.mu.offs[i-first], err)
		}
		if len(res.Data) == 0 {
			return nil, 0, fmt.Errorf("raftlog %s: entry %d at offset %d: nothing read: %w", s.log.Dir(), i, s.mu.offs[i-first], raft.ErrUnavailable)
		}
		for data := res.Data; len(data) > 0 && i < hi; i++ {
			h, err := record.ReadBatchHeader(data)
			if err != nil || h.Size() > len(data) {
				return nil, 0, fmt.Errorf("raftlog %s: entry %d: bad batch: %w", s.log.Dir(), i, record.ErrCorrupt)
			}
			if h.BaseOffset != s.mu.offs[i-first] {
				return nil, 0, fmt.Errorf("raftlog %s: entry %d: batch at %d, translator says %d: %w", s.log.Dir(), i, h.BaseOffset, s.mu.offs[i-first], record.ErrCorrupt)
			}
			e, err := decodeEntry(i, data[:h.Size():h.Size()])
			if err != nil {
				return nil, 0, fmt.Errorf("raftlog %s: %w", s.log.Dir(), err)
			}
			size += uint64(proto.Size(e))
			if len(out) > 0 && size > maxSize {
				return out, size, nil
			}
			out = append(out, e)
			data = data[h.Size():]
		}
	}
	return out, size, nil
}

// Append stores entries, one batch each. When the first one's index is at
// or below LastIndex, the log's tail from that index on is cut first
// (seglog.TruncateTo); entries below FirstIndex are skipped. The entries
// are fsynced when Append returns (it waits for WaitDurable), so a Ready's
// entries may be followed by its messages at once.
func (s *Storage) Append(entries []*raftpb.Entry) error {
	return s.append(entries, nil, false)
}

// AppendChecked is Append, but an entry for which checked reports true
// skips the batch's CRC check: its owner checked that very batch already
// (a leader's own proposal, validated when it was produced). Every other
// check stays. And the entries' batches are not copied: the base offset
// and PartitionLeaderEpoch of each normal entry's Data are written in
// place (fields outside the batch's CRC), so Data then holds the batch as
// stored; the caller must let Append do that (raft does not read those
// bytes; a message that carries the entry, marshalled later, carries them
// too, and a follower sets both again as it stores the batch).
func (s *Storage) AppendChecked(entries []*raftpb.Entry, checked func(*raftpb.Entry) bool) error {
	return s.append(entries, checked, true)
}

func (s *Storage) append(entries []*raftpb.Entry, checked func(*raftpb.Entry) bool, inPlace bool) error {
	if len(entries) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.mu.st.an.index
	if last := entries[len(entries)-1].GetIndex(); last < first {
		return nil
	}
	if entries[0].GetIndex() < first {
		entries = entries[first-entries[0].GetIndex():]
	}
	next := entries[0].GetIndex()
	switch last := s.lastLocked(); {
	case next > last+1:
		return fmt.Errorf("raftlog %s: append at %d after last %d: %w", s.log.Dir(), next, last, ErrGap)
	case next <= last:
		k := next - first
		if err := s.log.TruncateTo(s.mu.offs[k]); err != nil {
			return fmt.Errorf("raftlog %s: cut tail from index %d: %w", s.log.Dir(), next, err)
		}
		s.mu.offs, s.mu.terms = s.mu.offs[:k], s.mu.terms[:k]
		s.dropConfsFromLocked(next)
		s.mu.cache.cutFrom(next)
	}
	lastOffset := int64(-1)
	for _, e := range entries {
		b, err := encodeEntry(e, inPlace)
		if err != nil {
			return fmt.Errorf("raftlog %s: %w", s.log.Dir(), err)
		}
		// Not seglog's Append: a log's own write rules (a compacted
		// topic's keys, recompression, max.message.bytes) are the
		// leader's to apply before it proposes; an entry raft
		// committed is stored as it is, as a Kafka follower does.
		h, err := record.ReadBatchHeader(b)
		if err == nil && (checked == nil || !checked(e)) {
			_, err = record.ValidateBatch(b, s.log.MaxDecompressedBytes())
		}
		if err != nil {
			return fmt.Errorf("raftlog %s: entry %d: %w: %w", s.log.Dir(), e.GetIndex(), ErrBadEntry, err)
		}
		res, err := s.log.AppendValidated(b, []record.BatchHeader{h}, seglog.AppendOptions{LeaderEpoch: int32(e.GetTerm())})
		if err != nil {
			return fmt.Errorf("raftlog %s: append entry %d: %w", s.log.Dir(), e.GetIndex(), err)
		}
		if len(res.Batches) != 1 {
			return fmt.Errorf("raftlog %s: entry %d became %d batches: %w", s.log.Dir(), e.GetIndex(), len(res.Batches), ErrBadEntry)
		}
		s.mu.offs = append(s.mu.offs, res.FirstOffset)
		s.mu.terms = append(s.mu.terms, int32(e.GetTerm()))
		if isConf(e) {
			s.mu.confs = append(s.mu.confs, e.GetIndex())
		}
		// b is now the batch as written (base offset and epoch set in
		// place): what Entries would read back.
		if ce, err := decodeEntry(e.GetIndex(), b[:len(b):len(b)]); err == nil {
			s.mu.cache.add(ce)
		} else {
			s.mu.cache.clear()
		}
		lastOffset = res.LastOffset
	}
	if err := s.log.WaitDurable(context.Background(), lastOffset); err != nil {
		return fmt.Errorf("raftlog %s: fsync entries: %w", s.log.Dir(), err)
	}
	return nil
}

// OffsetOf returns the log offset of the batch holding entry index, or the
// log end offset for LastIndex+1; false outside [FirstIndex, LastIndex+1].
func (s *Storage) OffsetOf(index uint64) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.offsetOfLocked(index)
}

func (s *Storage) offsetOfLocked(index uint64) (int64, bool) {
	first := s.mu.st.an.index
	switch {
	case index < first || index > s.lastLocked()+1:
		return 0, false
	case index == s.lastLocked()+1:
		return s.log.EndOffset(), true
	}
	return s.mu.offs[index-first], true
}

// IndexOf returns the index of the entry whose batch holds offset (a record
// inside a batch maps to that batch's entry); false when offset is outside
// the log.
func (s *Storage) IndexOf(offset int64) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	offs := s.mu.offs
	k := sort.Search(len(offs), func(k int) bool { return offs[k] > offset }) - 1
	if k < 0 || offset >= s.log.EndOffset() {
		return 0, false
	}
	return s.mu.st.an.index + uint64(k), true
}

// AdvanceStart moves the log start to offset, which must be the base offset
// of a batch (an entry) or the log end offset, as retention and
// DeleteRecords will: FirstIndex becomes that entry's index. The new anchor
// is made durable first, then seglog's start moves; Open finishes a move a
// crash cut in between. Moving backwards is a no-op.
func (s *Storage) AdvanceStart(offset int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.advanceStartLocked(offset, nil)
	return err
}

// advanceStartLocked is AdvanceStart, recording acs as the configuration
// as of the new anchor (nil: unknown); mu must be held. It reports
// whether the start moved.
func (s *Storage) advanceStartLocked(offset int64, acs *raftpb.ConfState) (bool, error) {
	if offset <= s.mu.st.start {
		return false, nil
	}
	if offset <= s.mu.st.an.offset {
		// Below the anchor (the region AdvanceAnchorApplied left to
		// the cleaner): no raft entry goes, only the start moves, to
		// any offset there (the region is not raft's, and a cleaned
		// one has gaps).
		p := s.mu.st
		p.start = offset
		if err := s.saveLocked(p); err != nil {
			return false, err
		}
		if err := s.log.AdvanceStartOffset(offset); err != nil {
			return true, fmt.Errorf("raftlog %s: advance log start to %d: %w", s.log.Dir(), offset, err)
		}
		return true, nil
	}
	k := sort.Search(len(s.mu.offs), func(k int) bool { return s.mu.offs[k] >= offset })
	if offset != s.log.EndOffset() && (k == len(s.mu.offs) || s.mu.offs[k] != offset) {
		return false, fmt.Errorf("raftlog %s: advance start to %d: %w", s.log.Dir(), offset, seglog.ErrNotBatchBoundary)
	}
	if k == 0 {
		return false, nil
	}
	// The anchor is durable: the translator follows it even if seglog's
	// move fails below (Open would finish that move).
	if err := s.moveAnchorLocked(k, offset, acs, offset); err != nil {
		return false, err
	}
	if err := s.log.AdvanceStartOffset(offset); err != nil {
		return true, fmt.Errorf("raftlog %s: advance log start to %d: %w", s.log.Dir(), offset, err)
	}
	return true, nil
}

// dropConfsFromLocked forgets the conf-change entries at or above index (a
// cut tail); mu must be held.
func (s *Storage) dropConfsFromLocked(index uint64) {
	c := sort.Search(len(s.mu.confs), func(i int) bool { return s.mu.confs[i] >= index })
	s.mu.confs = s.mu.confs[:c]
}

// moveAnchorLocked makes the k-th entry from the anchor (at offset, a
// batch boundary, or the log end for k = len(offs)) the new first entry,
// with acs as the configuration as of it and start as the log start, in
// one durable write of StateFile; then the translator forgets the
// entries below. mu must be held; 0 < k <= len(offs).
func (s *Storage) moveAnchorLocked(k int, offset int64, acs *raftpb.ConfState, start int64) error {
	p := s.mu.st
	p.an = anchor{index: s.mu.st.an.index + uint64(k), offset: offset, prevTerm: uint64(s.mu.terms[k-1])}
	p.acs = acs
	p.start = start
	if err := s.saveLocked(p); err != nil {
		return err
	}
	s.mu.cache.dropBelow(p.an.index)
	s.mu.offs = append(s.mu.offs[:0], s.mu.offs[k:]...)
	s.mu.terms = append(s.mu.terms[:0], s.mu.terms[k:]...)
	c := sort.Search(len(s.mu.confs), func(i int) bool { return s.mu.confs[i] >= p.an.index })
	s.mu.confs = append(s.mu.confs[:0], s.mu.confs[c:]...)
	return nil
}

// AnchorOffset is the offset of FirstIndex's batch (the log end when the
// log holds no entry): every batch below it is out of raft's reach, so
// the cleaner may rewrite it (the bound of a replicated partition's
// cleaning).
func (s *Storage) AnchorOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.st.an.offset
}

// StartOffset is the log start offset as this package last recorded it
// (at or below AnchorOffset).
func (s *Storage) StartOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.st.start
}
