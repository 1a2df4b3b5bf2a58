package txn

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/stromhq/strom/internal/partition"
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
	switch cur.State {
	case PrepareCommit, PrepareAbort:
		if err := c.complete(ctx, t); err != nil {
			return -1, -1, fmt.Errorf("%w: %v", ErrConcurrentTransactions, err)
		}
	case Ongoing:
		// Fence and abort: the markers carry the bumped epoch.
		if err := c.end(ctx, t, false, true); err != nil {
			return -1, -1, fmt.Errorf("%w: aborting the fenced transaction: %v", ErrConcurrentTransactions, err)
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

// begin is t's state with the transaction ongoing; t.op held.
func (c *Coordinator) begin(ctx context.Context, t *txn) (record, error) {
	r := t.cur
	switch r.State {
	case PrepareCommit, PrepareAbort:
		if err := c.complete(ctx, t); err != nil {
			return r, fmt.Errorf("%w: %v", ErrConcurrentTransactions, err)
		}
		r = t.cur
	}
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
	r, err := c.begin(ctx, t)
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
	r, err := c.begin(ctx, t)
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
// record is made durable, markers are written to every partition (and a
// commit's offsets to their groups), then the completion record. A retry
// of an end already done is answered nil; a commit after an abort (or the
// reverse) is ErrInvalidTxnState.
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
		if s == PrepareCommit || s == PrepareAbort {
			if err := c.complete(ctx, t); err != nil {
				return fmt.Errorf("%w: %v", ErrConcurrentTransactions, err)
			}
		}
		return nil
	default:
		return fmt.Errorf("%w: %s asked of a transaction that is %v", ErrInvalidTxnState, map[bool]string{true: "commit", false: "abort"}[commit], s)
	}
}

// end prepares and completes t's ongoing transaction; fence bumps the
// epoch first (a timeout or a new instance). t.op held. Once the prepare
// record is durable the outcome is decided: a failure after it leaves the
// completion to the timeout loop (or the next start), and end returns
// nil.
func (c *Coordinator) end(ctx context.Context, t *txn, commit, fence bool) error {
	r := t.cur
	if fence {
		var err error
		if r, err = c.bump(r); err != nil {
			return err
		}
	}
	r.State = PrepareAbort
	if commit {
		r.State = PrepareCommit
	}
	if !commit {
		r.Offsets = nil
	}
	if err := c.write(ctx, t, r); err != nil {
		return err
	}
	if err := c.complete(ctx, t); err != nil {
		c.log.Warn("transaction: completion failed; retried later", "transactional_id", t.id, "err", err)
	}
	return nil
}

// complete writes t's markers (and a commit's offsets), then the
// completion record. t.op held; t is PrepareCommit or PrepareAbort. Every
// step may be repeated: a marker written twice ends nothing more, and
// offsets are committed again with the same values.
func (c *Coordinator) complete(ctx context.Context, t *txn) error {
	r := t.cur
	commit := r.State == PrepareCommit
	type wait struct {
		p     *partition.Partition
		tp    TopicPartition
		off   int64
		epoch int32
	}
	var waits []wait
	var remote []TopicPartition
	for _, tp := range r.Partitions {
		p, ok := c.cfg.Partition(tp.Topic, tp.Partition)
		if !ok {
			if c.cfg.Exists(tp.Topic, tp.Partition) {
				remote = append(remote, tp) // led by another broker
			}
			continue // or deleted since: nothing left to mark
		}
		res, err := p.AppendMarker(r.ProducerID, r.Epoch, commit, coordinatorEpoch)
		if err != nil {
			return fmt.Errorf("marker to %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		waits = append(waits, wait{p, tp, res.Offset, res.LeaderEpoch})
	}
	// The partitions fsync their own files in parallel, and the other
	// brokers write theirs meanwhile.
	errs := make(chan error, len(waits)+1)
	for _, w := range waits {
		go func() {
			if err := w.p.WaitCommitted(ctx, w.off, w.epoch); err != nil {
				errs <- fmt.Errorf("marker to %s-%d: %w", w.tp.Topic, w.tp.Partition, err)
				return
			}
			if c.cfg.MarkerWritten != nil {
				c.cfg.MarkerWritten(w.tp, r.ProducerID, commit, w.off)
			}
			errs <- nil
		}()
	}
	n := len(waits)
	if len(remote) > 0 {
		n++
		go func() {
			if c.cfg.Markers == nil {
				errs <- fmt.Errorf("markers to %d partitions led by other brokers: no marker sender", len(remote))
				return
			}
			errs <- c.cfg.Markers.WriteMarkers(ctx, r.ProducerID, r.Epoch, commit, coordinatorEpoch, remote)
		}()
	}
	var werr error
	for range n {
		if err := <-errs; err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return werr
	}
	if commit && len(r.Offsets) > 0 {
		// Legacy: a record written before the offsets went to the
		// offsets log (AddOffsets) holds them itself; applied through
		// the group coordinator in process, as then.
		if c.cfg.CommitOffsets == nil {
			return errors.New("no group coordinator for the transaction's offsets")
		}
		for i := 0; i < len(r.Offsets); {
			j := i
			for j < len(r.Offsets) && r.Offsets[j].Group == r.Offsets[i].Group {
				j++
			}
			if err := c.cfg.CommitOffsets(ctx, r.Offsets[i].Group, r.Offsets[i:j]); err != nil {
				return fmt.Errorf("offsets of group %q: %w", r.Offsets[i].Group, err)
			}
			i = j
		}
	}
	r.State = CompleteAbort
	if commit {
		r.State = CompleteCommit
	}
	r.StartMs = -1
	r.Partitions, r.Groups, r.Offsets = nil, nil, nil
	// Not waited for: until it is durable a restart finds Prepare* and
	// completes again (nothing changes), and every later record of this
	// id, waited for, is behind it in the log.
	return c.writeNoWait(t, r)
}
