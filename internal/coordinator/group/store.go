package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// kv is one record of the offsets log; a nil value is a tombstone.
type kv struct {
	key, value []byte
}

// store is the coordinator's side of the offsets log (the one partition of
// __consumer_offsets). It appends records and replays them at start; the
// log cleaner compacts the log (the topic has cleanup.policy=compact), and
// replay handles what it leaves: offset gaps and empty batches. Its
// methods are safe for concurrent use; mu serializes appends.
type store struct {
	open      func(create bool) (*partition.Partition, error)
	maxDecomp int
	log       *slog.Logger
	now       func() int64 // unix ms, for batch timestamps

	mu sync.Mutex
	p  *partition.Partition // nil until the log exists
}

// errNoLog is returned by load when the offsets log does not exist yet.
var errNoLog = errors.New("group: no offsets log yet")

// load replays the whole log from its start, calling apply for every record
// in log order.
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
				apply(r.Key, r.Value)
			}
			off = next
		}
	}
	return nil
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
	}
	last, err := s.appendLocked(recs)
	if err != nil {
		return nil, 0, err
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
