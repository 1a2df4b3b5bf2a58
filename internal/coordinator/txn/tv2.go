package txn

import (
	"context"
	"fmt"
)

// Transactions v2 (KIP-890 part 2), for clients that see the
// transaction.version feature at 2: a transactional Produce (v12+) adds
// its partition to the transaction itself, TxnOffsetCommit (v5+) its
// group, and EndTxn (v5+) bumps the producer's epoch at every end, so a
// write delayed from one transaction can never join the next: it carries
// an epoch the partitions already fenced with the end's markers.

// endedTxn is the end EndTxnBump last did for an id, so that a retry of
// it (the answer lost) gets the same answer instead of being fenced.
type endedTxn struct {
	pid    int64
	epoch  int16
	commit bool
}

// AddPartitionImplicit adds one partition to id's transaction for a
// transactional Produce v12+ (transactions v2), starting the transaction
// if none is ongoing; nothing is written when it is already in. t.op is
// taken, so a produce racing its own transaction's end waits for the end
// and is then refused (its epoch was bumped).
func (c *Coordinator) AddPartitionImplicit(ctx context.Context, id string, pid int64, epoch int16, tp TopicPartition) error {
	errs, err := c.AddPartitions(ctx, id, pid, epoch, []TopicPartition{tp})
	if err != nil {
		return err
	}
	return errs[0]
}

// EndTxnBump is EndTxn for transactions v2 (EndTxn v5+): the end bumps the
// epoch (the prepare record and the markers carry the new one) and returns
// the producer id and epoch to use from now on. A retry of the end just
// done, at the epoch before the bump, is answered with the current ones.
// An abort with nothing ongoing still bumps the epoch (a client whose
// every produce failed aborts to get a clean epoch).
func (c *Coordinator) EndTxnBump(ctx context.Context, id string, pid int64, epoch int16, commit bool) (int64, int16, error) {
	if id == "" {
		return -1, -1, ErrInvalidTxnID
	}
	// As lookup: a broker that does not coordinate (or has not loaded the
	// log) says so, never that it does not know the id, which a v2 client
	// takes as fatal (INVALID_PRODUCER_ID_MAPPING).
	if err := c.coordinates(); err != nil {
		return -1, -1, err
	}
	c.mu.Lock()
	t := c.txns[id]
	c.mu.Unlock()
	if t == nil {
		return -1, -1, fmt.Errorf("%w: %q", ErrUnknownTxnID, id)
	}
	t.op.Lock()
	defer t.op.Unlock()
	for {
		if e := t.ended; e != nil && e.pid == pid && e.epoch == epoch {
			if e.commit != commit {
				return -1, -1, fmt.Errorf("%w: the transaction was already %s", ErrInvalidTxnState, map[bool]string{true: "committed", false: "aborted"}[e.commit])
			}
			// Decided: answered at once, completing or not.
			if t.preparing() && t.completing == nil {
				c.startCompleting(ctx, t, false) // its last completion failed
			}
			return t.cur.ProducerID, t.cur.Epoch, nil
		}
		if err := t.check(pid, epoch); err != nil {
			return -1, -1, err
		}
		if !t.preparing() {
			break
		}
		// The end of a transaction at the epoch the last end bumped to
		// (an abort with nothing ongoing) while that end completes: wait
		// for it (bounded), then look again (t.op was released).
		if err := c.settle(ctx, t); err != nil {
			return -1, -1, err
		}
	}
	switch s := t.cur.State; {
	case s == Ongoing:
		if err := c.end(ctx, t, commit, true); err != nil {
			return -1, -1, err
		}
	case !commit && (s == Empty || s == CompleteCommit || s == CompleteAbort):
		r, err := c.bump(t.cur)
		if err != nil {
			return -1, -1, err
		}
		r.State, r.StartMs = CompleteAbort, -1
		if err := c.write(ctx, t, r); err != nil {
			return -1, -1, err
		}
	default:
		return -1, -1, fmt.Errorf("%w: commit asked of a transaction that is %v", ErrInvalidTxnState, s)
	}
	t.ended = &endedTxn{pid: pid, epoch: epoch, commit: commit}
	return t.cur.ProducerID, t.cur.Epoch, nil
}
