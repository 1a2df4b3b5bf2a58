package txn

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// coordinatorEpoch is written into markers. A single coordinator never
// changes its epoch; with replication it becomes the leader epoch of the
// transaction log's partition.
const coordinatorEpoch = 0

// InitProducerID gives transactional id its producer id and a new epoch,
// fencing every older instance: an ongoing transaction of the id is
// aborted first (its markers carry the new epoch, so the old instance's
// late batches are refused by the partitions), a preparing one is
// finished. A first call allocates a producer id (epoch 0). With pid and
// epoch given (KIP-360, v3+: the client's current ones, -1 both when
// none), they must be the current ones. An epoch about to overflow moves
// to a new producer id at epoch 0.
func (c *Coordinator) InitProducerID(ctx context.Context, id string, timeout time.Duration, pid int64, epoch int16) (int64, int16, error) {
	if id == "" {
		return -1, -1, ErrInvalidTxnID
	}
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		return -1, -1, fmt.Errorf("%w: %v (transaction.max.timeout.ms is %v)", ErrInvalidTimeout, timeout, c.cfg.MaxTimeout)
	}
	if err := c.coordinates(); err != nil {
		return -1, -1, err
	}
	c.mu.Lock()
	t := c.txns[id]
	if t == nil {
		t = &txn{id: id, prevEpoch: -1, cur: record{ProducerID: -1, StartMs: -1}}
		c.txns[id] = t
	}
	c.mu.Unlock()
	t.op.Lock()
	defer t.op.Unlock()
	timeoutMs := int32(min(timeout.Milliseconds(), math.MaxInt32))
	if t.cur.ProducerID < 0 {
		// New (or its first InitProducerID failed): it stays at -1,
		// invisible, until a record is durable.
		newID, err := c.cfg.AllocateProducerID()
		if err != nil {
			return -1, -1, fmt.Errorf("%w: allocate a producer id: %v", ErrCoordinatorNotAvailable, err)
		}
		r := record{ProducerID: newID, Epoch: 0, TimeoutMs: timeoutMs, State: Empty, StartMs: -1}
		if err := c.write(ctx, t, r); err != nil {
			return -1, -1, err
		}
		return newID, 0, nil
	}
	// A previous transaction still completing is waited for (bounded:
	// ErrConcurrentTransactions, which the client retries).
	if err := c.settle(ctx, t); err != nil {
		return -1, -1, err
	}
	cur := t.cur
	if pid >= 0 {
		switch {
		case pid != cur.ProducerID:
			return -1, -1, fmt.Errorf("%w: producer %d, the id holds %d", ErrProducerFenced, pid, cur.ProducerID)
		case epoch < cur.Epoch:
			return -1, -1, fmt.Errorf("%w: epoch %d < %d", ErrProducerFenced, epoch, cur.Epoch)
		case epoch > cur.Epoch:
			return -1, -1, fmt.Errorf("%w: epoch %d > %d", ErrInvalidProducerEpoch, epoch, cur.Epoch)
		}
	}
	if cur.State == Ongoing {
		// Fence and abort: the markers carry the bumped epoch. The
		// answer waits for the abort's completion (bounded, as above; a
		// retry then finds it done and bumps again).
		if err := c.end(ctx, t, false, true); err != nil {
			return -1, -1, fmt.Errorf("%w: aborting the fenced transaction: %v", ErrConcurrentTransactions, err)
		}
		if err := c.settle(ctx, t); err != nil {
			return -1, -1, err
		}
		r := t.cur
		if r.State != CompleteAbort {
			return -1, -1, fmt.Errorf("%w: the fenced transaction's markers are still being written", ErrConcurrentTransactions)
		}
		r.TimeoutMs = timeoutMs
		if err := c.write(ctx, t, r); err != nil {
			return -1, -1, err
		}
		return r.ProducerID, r.Epoch, nil
	}
	r, err := c.bump(t.cur)
	if err != nil {
		return -1, -1, err
	}
	r.State, r.TimeoutMs, r.StartMs = Empty, timeoutMs, -1
	r.Partitions, r.Groups, r.Offsets = nil, nil, nil
	if err := c.write(ctx, t, r); err != nil {
		return -1, -1, err
	}
	return r.ProducerID, r.Epoch, nil
}

// bump is r with the next epoch, or a new producer id at epoch 0 when the
// epoch would overflow (KAFKA-18660: never wrap).
func (c *Coordinator) bump(r record) (record, error) {
	if r.Epoch < math.MaxInt16-1 {
		r.Epoch++
		return r, nil
	}
	id, err := c.cfg.AllocateProducerID()
	if err != nil {
		return r, fmt.Errorf("%w: allocate a producer id: %v", ErrCoordinatorNotAvailable, err)
	}
	r.ProducerID, r.Epoch = id, 0
	return r, nil
}

// lookup returns the id's transaction, and checks the producer id and
// epoch against it (t.op is then held: call release).
func (c *Coordinator) lookup(id string, pid int64, epoch int16) (*txn, error) {
	if id == "" {
		return nil, ErrInvalidTxnID
	}
	if err := c.coordinates(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	t := c.txns[id]
	c.mu.Unlock()
	if t == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTxnID, id)
	}
	t.op.Lock()
	if err := t.check(pid, epoch); err != nil {
		t.op.Unlock()
		return nil, err
	}
	return t, nil
}

// check compares a request's producer id and epoch with t's; t.op held.
func (t *txn) check(pid int64, epoch int16) error {
	switch {
	case pid != t.cur.ProducerID:
		return fmt.Errorf("%w: producer %d, the id holds %d", ErrProducerIDMismatch, pid, t.cur.ProducerID)
	case epoch == t.prevEpoch && epoch < t.cur.Epoch:
		return fmt.Errorf("%w: epoch %d was aborted for its timeout (now %d)", ErrInvalidProducerEpoch, epoch, t.cur.Epoch)
	case epoch < t.cur.Epoch:
		return fmt.Errorf("%w: epoch %d < %d", ErrProducerFenced, epoch, t.cur.Epoch)
	case epoch > t.cur.Epoch:
		return fmt.Errorf("%w: epoch %d > %d", ErrInvalidProducerEpoch, epoch, t.cur.Epoch)
	}
	return nil
}

// begin is t's state with the transaction ongoing; t.op held. The
// previous transaction, if still completing, is waited for (settle), and
// the producer's id and epoch are checked again after the wait; unless
// its end may be overlapped (complete.go): then the new state carries its
// markers (Prev) and nothing is waited for.
func (c *Coordinator) begin(ctx context.Context, t *txn, pid int64, epoch int16) (record, error) {
	c.dropDurablePrev(t)
	if t.preparing() && t.completing != nil && t.overlap && t.cur.Prev == nil {
		// The previous end's markers are all in their logs, only their
		// fsyncs may be pending: this transaction begins at once and
		// its records carry them until they are durable (complete.go).
		r := t.cur
		r.Prev = &prevMarkers{ProducerID: r.ProducerID, Epoch: r.Epoch, Commit: r.State == PrepareCommit, Partitions: r.Partitions}
		r.State, r.StartMs = Ongoing, c.cfg.Now().UnixMilli()
		r.Partitions, r.Groups, r.Offsets = nil, nil, nil
		return r, nil
	}
	if t.preparing() {
		if err := c.settle(ctx, t); err != nil {
			return t.cur, err
		}
		if err := t.check(pid, epoch); err != nil {
			return t.cur, err
		}
	}
	r := t.cur
	if r.State != Ongoing {
		r.State, r.StartMs = Ongoing, c.cfg.Now().UnixMilli()
		r.Partitions, r.Groups, r.Offsets = nil, nil, nil
	}
	return r, nil
}

// AddPartitions adds partitions to id's transaction, starting one if none
// is ongoing (AddPartitionsToTxn). The answer is one error per partition
// (an unknown one is ErrUnknownPartition, and then nothing is added), or
// err for the whole request.
func (c *Coordinator) AddPartitions(ctx context.Context, id string, pid int64, epoch int16, parts []TopicPartition) ([]error, error) {
	errs := make([]error, len(parts))
	unknown := false
	for i, tp := range parts {
		if !c.cfg.Exists(tp.Topic, tp.Partition) {
			errs[i], unknown = fmt.Errorf("%w: %s-%d", ErrUnknownPartition, tp.Topic, tp.Partition), true
		}
	}
	if unknown {
		return errs, nil
	}
	t, err := c.lookup(id, pid, epoch)
	if err != nil {
		return nil, err
	}
	defer t.op.Unlock()
	r, err := c.begin(ctx, t, pid, epoch)
	if err != nil {
		return nil, err
	}
	added := false
	for _, tp := range parts {
		if !slices.Contains(r.Partitions, tp) {
			r.Partitions = append(r.Partitions, tp)
			added = true
		}
	}
	if !added && t.cur.State == Ongoing {
		return errs, nil
	}
	sortPartitions(r.Partitions)
	return errs, c.write(ctx, t, r)
}

// VerifyPartitions answers AddPartitionsToTxn v4+ with VerifyOnly: for
// each partition, nil when it is in id's ongoing transaction at pid and
// epoch.
func (c *Coordinator) VerifyPartitions(id string, pid int64, epoch int16, parts []TopicPartition) []error {
	errs := make([]error, len(parts))
	if err := c.coordinates(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.txns[id]
	for i, tp := range parts {
		errs[i] = c.verifyLocked(t, pid, epoch, tp)
	}
	return errs
}

// Verify reports whether producer pid at epoch has an ongoing transaction
// that includes the partition (KIP-890 part 1: the partition asks before
// a producer's first transactional write to it). It takes only the
// coordinator's mutex, never a transaction's op lock, so a partition may
// call it while holding its own lock even as markers are being written.
//
// When following, a coordinator that has not loaded the log in its leader
// epoch answers ErrCoordinatorLoading (the write is retried), not that the
// partition is not in the transaction.
func (c *Coordinator) Verify(pid int64, epoch int16, topic string, index int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.FollowLeader && (c.p == nil || c.loaded < 0 || c.p.LeaderEpoch() != c.loaded) {
		c.wakeLeadership()
		return fmt.Errorf("%w: verify producer %d", ErrCoordinatorLoading, pid)
	}
	return c.verifyLocked(c.pids[pid], pid, epoch, TopicPartition{topic, index})
}

func (c *Coordinator) verifyLocked(t *txn, pid int64, epoch int16, tp TopicPartition) error {
	switch {
	case t == nil || t.cur.ProducerID != pid:
		return fmt.Errorf("%w: no transaction of producer %d", ErrNotInTxn, pid)
	case epoch < t.cur.Epoch:
		return fmt.Errorf("%w: epoch %d < %d", ErrProducerFenced, epoch, t.cur.Epoch)
	case epoch > t.cur.Epoch:
		return fmt.Errorf("%w: epoch %d > %d", ErrInvalidProducerEpoch, epoch, t.cur.Epoch)
	case t.cur.State != Ongoing:
		return fmt.Errorf("%w: transaction is %v", ErrNotInTxn, t.cur.State)
	case !slices.Contains(t.cur.Partitions, tp):
		return fmt.Errorf("%w: %s-%d", ErrNotInTxn, tp.Topic, tp.Partition)
	}
	return nil
}

// AddOffsets adds a group's offsets to id's transaction
// (AddOffsetsToTxn): the group's partition of the offsets topic
// (OffsetsPartition) joins the transaction as an ordinary partition, so
// TxnOffsetCommit may write the offsets there (the partition verifies the
// producer's first batch with Verify, as any partition does) and the end
// writes its marker there, which commits or drops them in the group
// coordinator, wherever it runs.
func (c *Coordinator) AddOffsets(ctx context.Context, id string, pid int64, epoch int16, group string) error {
	if group == "" {
		return fmt.Errorf("%w: empty group id", ErrInvalidTxnState)
	}
	t, err := c.lookup(id, pid, epoch)
	if err != nil {
		return err
	}
	defer t.op.Unlock()
	r, err := c.begin(ctx, t, pid, epoch)
	if err != nil {
		return err
	}
	tp := c.offsetsPartition(group)
	if slices.Contains(r.Groups, group) && slices.Contains(r.Partitions, tp) && t.cur.State == Ongoing {
		return nil
	}
	if !slices.Contains(r.Groups, group) {
		r.Groups = append(slices.Clone(r.Groups), group)
		slices.Sort(r.Groups)
	}
	if !slices.Contains(r.Partitions, tp) {
		r.Partitions = append(slices.Clone(r.Partitions), tp)
		sortPartitions(r.Partitions)
	}
	return c.write(ctx, t, r)
}

// VerifyGroup reports whether producer pid at epoch has an ongoing
// transaction to which AddOffsets added group (TxnOffsetCommit, when this
// broker coordinates the transaction: the group's offsets partition may be
// in the transaction for another group's sake, which the partition's own
// check cannot tell). When following, an unloaded log is
// ErrCoordinatorLoading.
func (c *Coordinator) VerifyGroup(pid int64, epoch int16, group string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cfg.FollowLeader && (c.p == nil || c.loaded < 0 || c.p.LeaderEpoch() != c.loaded) {
		c.wakeLeadership()
		return fmt.Errorf("%w: verify producer %d", ErrCoordinatorLoading, pid)
	}
	t := c.pids[pid]
	if err := c.verifyLocked(t, pid, epoch, c.offsetsPartition(group)); err != nil {
		return err
	}
	if !slices.Contains(t.cur.Groups, group) {
		return fmt.Errorf("%w: group %q (AddOffsetsToTxn first)", ErrNotInTxn, group)
	}
	return nil
}

// offsetsPartition is the partition of the offsets topic holding group's
// offsets.
func (c *Coordinator) offsetsPartition(group string) TopicPartition {
	topic, index := c.cfg.OffsetsPartition(group)
	return TopicPartition{topic, index}
}

// EndTxn commits or aborts id's ongoing transaction (EndTxn): the prepare
// record is made durable and the answer given; the markers (and a legacy
// commit's offsets) and the completion record follow in the background
// (complete.go). A retry of an end already decided is answered nil; a
// commit after an abort (or the reverse) is ErrInvalidTxnState.
func (c *Coordinator) EndTxn(ctx context.Context, id string, pid int64, epoch int16, commit bool) error {
	t, err := c.lookup(id, pid, epoch)
	if err != nil {
		return err
	}
	defer t.op.Unlock()
	switch s := t.cur.State; {
	case s == Ongoing:
		return c.end(ctx, t, commit, false)
	case commit && (s == CompleteCommit || s == PrepareCommit), !commit && (s == CompleteAbort || s == PrepareAbort):
		if t.preparing() && t.completing == nil {
			c.startCompleting(ctx, t, false) // its last completion failed
		}
		return nil
	default:
		return fmt.Errorf("%w: %s asked of a transaction that is %v", ErrInvalidTxnState, map[bool]string{true: "commit", false: "abort"}[commit], s)
	}
}
