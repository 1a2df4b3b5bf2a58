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
//
// Following the leader (Config.FollowLeader), the store writes only while
// the coordinator serves a leadership of the partition (serve): p is that
// partition and epoch the leader epoch it was loaded in; an append in any
// other epoch fails with ErrNotCoordinator, so a commit never applies to
// groups loaded in an earlier leadership.
type store struct {
	open      func(create bool) (*partition.Partition, error)
	follow    bool
	maxDecomp int
	log       *slog.Logger
	now       func() int64 // unix ms, for batch timestamps

	mu    sync.Mutex
	p     *partition.Partition // nil until the log exists (following: while not serving)
	epoch int32                // following: the leader epoch served
}

// errNoLog is returned by load when the offsets log does not exist yet.
var errNoLog = errors.New("group: no offsets log yet")

// load replays the whole log from its start, calling apply for every record
// and marker for every transaction marker, in log order.
func (s *store) load(apply func(b partition.ReplayedBatch, key, value []byte), marker func(b partition.ReplayedBatch, commit bool)) error {
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
	return replay(p, s.maxDecomp, s.log, apply, marker)
}

// serve makes the store write to p in leader epoch epoch (following the
// leader); a nil p stops writes.
func (s *store) serve(p *partition.Partition, epoch int32) {
	s.mu.Lock()
	s.p, s.epoch = p, epoch
	s.mu.Unlock()
}

// replay applies every record and marker of the offsets log p
// (partition.ReplayBatches).
func replay(p *partition.Partition, maxDecomp int, log *slog.Logger, apply func(b partition.ReplayedBatch, key, value []byte), marker func(b partition.ReplayedBatch, commit bool)) error {
	err := p.ReplayBatches(maxDecomp, func(offset int64, err error) {
		log.Warn("offsets log: skipping undecodable batch", "offset", offset, "err", err)
	}, apply, marker)
	if err != nil {
		return fmt.Errorf("offsets log: %w", err)
	}
	return nil
}

// batchOwner is whose batch an append writes: the coordinator's own (pid
// -1), or a transactional producer's (TxnOffsetCommit: its producer id and
// epoch, the transactional attribute, no sequence), whose first batch of a
// transaction here is verified with the transaction coordinator (verify,
// partition.AppendRules.VerifyTxn).
type batchOwner struct {
	pid    int64
	epoch  int16
	verify func(pid int64, epoch int16) error
}

// coordinatorBatch is the owner of the coordinator's own batches.
var coordinatorBatch = batchOwner{pid: -1, epoch: -1}

// append writes recs as one batch and returns the log, the offset to wait
// on and the leader epoch it was written in (for WaitCommitted).
func (s *store) append(recs []kv, own batchOwner) (*partition.Partition, int64, int32, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.follow {
		if s.p == nil {
			return nil, 0, 0, fmt.Errorf("%w: this broker does not lead the offsets partition", ErrNotCoordinator)
		}
		if e := s.p.LeaderEpoch(); e != s.epoch {
			return nil, 0, 0, fmt.Errorf("%w: the offsets partition's leader epoch is %d, groups were loaded in %d", ErrNotCoordinator, e, s.epoch)
		}
	}
	if s.p == nil {
		p, err := s.open(true)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: create the offsets log: %v", ErrCoordinatorNotAvailable, err)
		}
		if p == nil {
			return nil, 0, 0, nil // in memory only: nothing to persist
		}
		s.p = p
	}
	last, epoch, err := s.appendLocked(recs, own)
	if err != nil {
		return nil, 0, 0, err
	}
	return s.p, last, epoch, nil
}

func (s *store) appendLocked(recs []kv, own batchOwner) (int64, int32, error) {
	rs := make([]record.Record, len(recs))
	for i, r := range recs {
		rs[i] = record.Record{OffsetDelta: int32(i), Key: r.key, Value: r.value}
	}
	batch, err := record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, BaseTimestamp: s.now(),
		ProducerID: own.pid, ProducerEpoch: own.epoch, BaseSequence: -1,
		Transactional: own.pid >= 0,
	}, rs)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrInvalidCommitOffsetSize, err)
	}
	res, err := s.p.Append(batch, partition.AppendRules{VerifyTxn: own.verify})
	switch {
	case errors.Is(err, partition.ErrTxnVerifyUnavailable):
		// The transaction coordinator is down or moving: retried.
		return 0, 0, fmt.Errorf("%w: %v", ErrCoordinatorLoading, err)
	case errors.Is(err, partition.ErrTxnNotVerified), errors.Is(err, partition.ErrProducerFenced):
		return 0, 0, fmt.Errorf("offsets log: %w", err)
	case errors.Is(err, partition.ErrBatchTooLarge):
		return 0, 0, fmt.Errorf("%w: %v", ErrInvalidCommitOffsetSize, err)
	case errors.Is(err, partition.ErrClosed), errors.Is(err, partition.ErrNotLeader):
		return 0, 0, fmt.Errorf("%w: %v", ErrNotCoordinator, err)
	case err != nil:
		return 0, 0, fmt.Errorf("%w: offsets log: %v", ErrCoordinatorNotAvailable, err)
	}
	if s.follow && s.p.Replicated() && res.LeaderEpoch != s.epoch {
		// Leadership was lost and won again since the groups were loaded:
		// what another leader wrote in between is not in memory. The
		// batch may still commit; the client retries at the coordinator
		// the new load makes.
		return 0, 0, fmt.Errorf("%w: appended in leader epoch %d, groups were loaded in %d", ErrNotCoordinator, res.LeaderEpoch, s.epoch)
	}
	return res.LastOffset, res.LeaderEpoch, nil
}

// wait returns once offset, appended in leader epoch epoch, is committed
// in p: fsynced on a single copy, fsynced on a majority of a replicated
// partition (acks=all). A leader change that cut it, or a replica that
// stopped, is ErrNotCoordinator: the client finds the new coordinator.
func wait(ctx context.Context, p *partition.Partition, offset int64, epoch int32) error {
	err := p.WaitCommitted(ctx, offset, epoch)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, partition.ErrTruncated), errors.Is(err, partition.ErrNotLeader):
		return fmt.Errorf("%w: %v", ErrNotCoordinator, err)
	default:
		return fmt.Errorf("%w: offsets log: %v", ErrCoordinatorNotAvailable, err)
	}
}
