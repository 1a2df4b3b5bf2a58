package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// kv is one record of the offsets log; a nil value is a tombstone.
type kv struct {
	key, value []byte
}

// store is the coordinator's side of the offsets log (the one partition of
// __consumer_offsets). It appends records, replays them at start, and keeps
// the live table (latest value of every key) that snapshot compaction
// rewrites. Its methods are safe for concurrent use; mu serializes appends
// with compaction.
type store struct {
	open         func(create bool) (*partition.Partition, error)
	compactBytes int64
	maxDecomp    int
	log          *slog.Logger
	now          func() int64 // unix ms, for batch timestamps
	checkpoint   func() error

	mu         sync.Mutex
	p          *partition.Partition // nil until the log exists
	live       map[string][]byte
	liveBytes  int64
	compacting bool
}

// errNoLog is returned by load when the offsets log does not exist yet.
var errNoLog = errors.New("group: no offsets log yet")

// load replays the whole log from its start, calling apply for every record
// in log order, and fills the live table.
func (s *store) load(apply func(key, value []byte)) error {
	p, err := s.open(false)
	if err != nil {
		return err
	}
	if p == nil {
		return errNoLog
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.p = p
	s.live = map[string][]byte{}
	for off := p.StartOffset(); off < p.EndOffset(); {
		res, err := p.Read(off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("offsets log: read at %d: %w", off, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				return fmt.Errorf("offsets log: batch at %d: %w", off, errors.Join(err, record.ErrCorrupt))
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			next := h.LastOffset() + 1
			if next <= off || h.IsControl() {
				off = max(off, next)
				continue
			}
			_, recs, err := record.Records(batch, s.maxDecomp)
			if err != nil {
				// The log's own recovery validated every batch; a batch that
				// still fails is skipped, not fatal.
				s.log.Warn("offsets log: skipping undecodable batch", "offset", h.BaseOffset, "err", err)
				off = next
				continue
			}
			for _, r := range recs {
				if h.BaseOffset+int64(r.OffsetDelta) < off {
					continue
				}
				s.setLiveLocked(r.Key, r.Value)
				apply(r.Key, r.Value)
			}
			off = next
		}
	}
	return nil
}

func (s *store) setLiveLocked(key, value []byte) {
	k := string(key)
	if old, ok := s.live[k]; ok {
		s.liveBytes -= int64(len(k) + len(old))
	}
	if value == nil {
		delete(s.live, k)
		return
	}
	s.live[k] = value
	s.liveBytes += int64(len(k) + len(value))
}

// append writes recs as one batch and returns the log, and the offset to
// wait on for durability.
func (s *store) append(recs []kv) (*partition.Partition, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil {
		p, err := s.open(true)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: create the offsets log: %v", ErrCoordinatorNotAvailable, err)
		}
		if p == nil {
			return nil, 0, nil // in memory only: nothing to persist
		}
		s.p = p
		if s.live == nil {
			s.live = map[string][]byte{}
		}
	}
	last, err := s.appendLocked(recs)
	if err != nil {
		return nil, 0, err
	}
	for _, r := range recs {
		s.setLiveLocked(r.key, r.value)
	}
	return s.p, last, nil
}

func (s *store) appendLocked(recs []kv) (int64, error) {
	rs := make([]record.Record, len(recs))
	for i, r := range recs {
		rs[i] = record.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
	}
	batch, err := record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, BaseTimestamp: s.now(),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, rs)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrInvalidCommitOffsetSize, err)
	}
	res, err := s.p.Append(batch, partition.AppendRules{})
	switch {
	case errors.Is(err, partition.ErrBatchTooLarge):
		return 0, fmt.Errorf("%w: %v", ErrInvalidCommitOffsetSize, err)
	case errors.Is(err, partition.ErrClosed):
		return 0, fmt.Errorf("%w: %v", ErrNotCoordinator, err)
	case err != nil:
		return 0, fmt.Errorf("%w: offsets log: %v", ErrCoordinatorNotAvailable, err)
	}
	return res.LastOffset, nil
}

// wait returns once offset is durable in p.
func wait(ctx context.Context, p *partition.Partition, offset int64) error {
	if err := p.WaitDurable(ctx, offset); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %v", ErrNotCoordinator, err)
		}
		return fmt.Errorf("%w: offsets log: %v", ErrCoordinatorNotAvailable, err)
	}
	return nil
}

// needsCompaction reports whether the log has grown past the threshold
// with at most half of it live, and claims the compaction if so.
func (s *store) needsCompaction() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.p == nil || s.compacting || s.compactBytes <= 0 {
		return false
	}
	size := s.p.Size()
	if size < s.compactBytes || s.liveBytes*2 > size {
		return false
	}
	s.compacting = true
	return true
}

// compactBatchBytes bounds the batches a compaction writes.
const compactBatchBytes = 512 << 10

// compact is snapshot compaction: roll the log, append the live table as
// fresh records at the head of a new segment, wait until they are durable,
// then move the log start offset to the first of them, which deletes every
// older segment. Appends wait only while the snapshot is written (not for
// its fsync); what they add lands after the snapshot and wins on replay.
// A crash at any step leaves a log whose replay gives the same state: the
// old records, the snapshot (same values), then the rest.
func (s *store) compact(ctx context.Context) error {
	defer func() {
		s.mu.Lock()
		s.compacting = false
		s.mu.Unlock()
	}()
	s.mu.Lock()
	p := s.p
	if err := p.Roll(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("offsets log: compaction: roll: %w", err)
	}
	first := p.EndOffset()
	keys := make([]string, 0, len(s.live))
	for k := range s.live {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	last := first - 1
	var recs []kv
	size := 0
	flush := func() error {
		if len(recs) == 0 {
			return nil
		}
		off, err := s.appendLocked(recs)
		recs, size = recs[:0], 0
		last = off
		return err
	}
	for _, k := range keys {
		v := s.live[k]
		if size+len(k)+len(v) > compactBatchBytes {
			if err := flush(); err != nil {
				s.mu.Unlock()
				return fmt.Errorf("offsets log: compaction: %w", err)
			}
		}
		recs = append(recs, kv{key: []byte(k), value: v})
		size += len(k) + len(v) + 16
	}
	if err := flush(); err != nil {
		s.mu.Unlock()
		return fmt.Errorf("offsets log: compaction: %w", err)
	}
	s.mu.Unlock()
	if last >= first {
		if err := wait(ctx, p, last); err != nil {
			return fmt.Errorf("offsets log: compaction: %w", err)
		}
	}
	before := p.Size()
	if _, err := p.DeleteRecords(first); err != nil {
		return fmt.Errorf("offsets log: compaction: advance start: %w", err)
	}
	if s.checkpoint != nil {
		if err := s.checkpoint(); err != nil {
			return fmt.Errorf("offsets log: compaction: checkpoint: %w", err)
		}
	}
	s.log.Info("compacted the offsets log", "live_records", len(keys), "start_offset", first, "bytes_before", before, "bytes_after", p.Size())
	return nil
}
