package txn

import (
	"context"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// Following the transaction log's leader (Config.FollowLeader, a
// cluster): __transaction_state-0 may be a raft group of several
// replicas, and the coordinator is whichever broker leads it. The
// timeout loop's goroutine checks the partition's leadership every
// LeaderPoll (and at once when a request finds it moved):
//
//   - this broker took the lead (the partition's LeaderEpoch: raft's term,
//     once the leader committed an entry in it, so its high watermark
//     covers everything an earlier leader had committed): the log is
//     replayed up to the high watermark into a fresh state, which replaces
//     the old one, and the transactions found preparing their commit or
//     abort are completed (markers written again, which changes nothing
//     where they were already written); requests meanwhile get
//     ErrCoordinatorLoading;
//   - it lost the lead, or the epoch moved: the state is dropped and
//     requests get ErrNotCoordinator (or loading again if it leads).
//
// A record appended in another epoch than the one loaded is refused
// (ErrNotCoordinator): it would be a write by a coordinator that no
// longer knows the state. Records are answered once committed by raft
// (WaitCommitted). The log is not compacted while it is replicated (the
// snapshot rewrite of compact.go cuts the log under raft): it grows by
// about three records per transaction, as the offsets log of a cluster
// does until replicated partitions are cleaned.

// checkLeadership reloads or drops the state when the transaction log's
// leadership changed since the last check (loop goroutine only).
func (c *Coordinator) checkLeadership() {
	p, err := c.cfg.Log(false)
	if err != nil {
		p = nil
	}
	epoch := int32(-1)
	if p != nil {
		epoch = p.LeaderEpoch()
	}
	c.mu.Lock()
	same := c.loaded == epoch && c.p == p
	c.mu.Unlock()
	if same {
		return
	}
	c.drop()
	if epoch < 0 {
		return
	}
	if err := c.loadFrom(p, epoch); err != nil {
		c.log.Warn("transaction log: load after taking the lead failed; retrying", "err", err)
		c.drop()
		return
	}
	c.completePreparing("taking the lead")
}

// drop forgets the state: this broker does not coordinate (any more).
func (c *Coordinator) drop() {
	c.smu.Lock()
	defer c.smu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.loaded < 0 && c.p == nil {
		return
	}
	c.txns, c.pids = map[string]*txn{}, map[int64]*txn{}
	c.live, c.liveBytes = map[string][]byte{}, 0
	c.p, c.loaded = nil, -1
	c.stateCancel()
}

// loadFrom replays p, which this broker leads in epoch, into a fresh state
// and installs it.
func (c *Coordinator) loadFrom(p *partition.Partition, epoch int32) error {
	start := time.Now()
	fresh := &Coordinator{log: c.log, txns: map[string]*txn{}, pids: map[int64]*txn{}, live: map[string][]byte{}}
	n := 0
	err := p.Replay(64<<20, func(offset int64, err error) {
		c.log.Warn("transaction log: skipping undecodable batch", "offset", offset, "err", err)
	}, func(key, value []byte) {
		n++
		fresh.apply(key, value)
	})
	if err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	if p.LeaderEpoch() != epoch {
		return fmt.Errorf("%w: the transaction log's leader epoch moved from %d while loading", ErrNotCoordinator, epoch)
	}
	c.smu.Lock()
	c.mu.Lock()
	c.txns, c.pids, c.live, c.liveBytes = fresh.txns, fresh.pids, fresh.live, fresh.liveBytes
	c.p, c.loaded = p, epoch
	c.stateCancel()
	c.stateCtx, c.stateCancel = context.WithCancel(c.ctx)
	c.mu.Unlock()
	c.smu.Unlock()
	c.log.Info("transaction coordinator: took the lead of the transaction log", "leader_epoch", epoch,
		"transactional_ids", len(fresh.txns), "records", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// coordinates is cfg.Coordinates, and when following, that the state
// loaded is the current leader epoch's.
func (c *Coordinator) coordinates() error {
	if err := c.cfg.Coordinates(); err != nil {
		return err
	}
	if !c.cfg.FollowLeader {
		return nil
	}
	c.mu.Lock()
	p, loaded := c.p, c.loaded
	c.mu.Unlock()
	if p == nil || loaded < 0 || p.LeaderEpoch() != loaded {
		c.wakeLeadership()
		return fmt.Errorf("%w: loading the transaction log", ErrCoordinatorLoading)
	}
	return nil
}

// wakeLeadership asks the loop to check the leadership now.
func (c *Coordinator) wakeLeadership() {
	select {
	case c.leadCh <- struct{}{}:
	default:
	}
}
