package group

import (
	"context"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// Following the offsets partition's leader (Config.FollowLeader, a
// cluster): the group coordinator of a cluster is the leader of
// __consumer_offsets-0, whose replicas form a raft group. One watcher
// goroutine, owned by the Coordinator and stopped by Close, checks the
// partition's leadership every LeaderPoll (and when a request finds the
// leader epoch moved):
//
//   - this broker took the lead (the partition's LeaderEpoch, a term in
//     which the leader committed an entry, so its high watermark covers
//     every entry an earlier leader had committed): replay the log from its
//     start to the high watermark into a fresh set of groups, then serve
//     them; requests meanwhile get ErrCoordinatorLoading;
//   - it lost the lead, or the epoch moved (lost and won again between two
//     checks: another leader may have written meanwhile): drop every group
//     (pending joins and syncs answer ErrNotCoordinator, in-flight commit
//     waits are cancelled with ErrNotCoordinator) and load again if it
//     leads.
//
// Nothing is served from groups loaded in another leader epoch: dispatch
// compares the partition's epoch with the one loaded before it hands a
// request to a group, and the store refuses an append that lands in
// another epoch. Commits answer once committed by raft (acks=all).

// startWatcher starts the leadership watcher.
func (c *Coordinator) startWatcher() {
	c.wake = make(chan struct{}, 1)
	c.watcher.Add(1)
	go func() {
		defer c.watcher.Done()
		t := time.NewTicker(c.cfg.LeaderPoll)
		defer t.Stop()
		for {
			c.checkLeadership()
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			case <-c.wake:
			}
		}
	}()
}

// stopWatcher stops the watcher (Close, with closing set) and waits for it.
func (c *Coordinator) stopWatcher() {
	if !c.cfg.FollowLeader {
		return
	}
	c.cancel()
	c.watcher.Wait()
	c.mu.Lock()
	c.endTerm()
	c.mu.Unlock()
}

// wakeWatcher asks the watcher to check the leadership now.
func (c *Coordinator) wakeWatcher() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// notServingLocked is dispatch's check when following: nil when the groups
// were loaded in the offsets partition's current leader epoch. mu must be
// held.
func (c *Coordinator) notServingLocked() error {
	if !c.cfg.FollowLeader {
		return nil
	}
	if c.loading {
		return fmt.Errorf("%w: loading the offsets partition", ErrCoordinatorLoading)
	}
	if !c.serving {
		return fmt.Errorf("%w: this broker does not lead the offsets partition", ErrNotCoordinator)
	}
	if e := c.servingP.LeaderEpoch(); e != c.servingEpoch {
		c.wakeWatcher()
		return fmt.Errorf("%w: the offsets partition's leader epoch moved from %d to %d", ErrNotCoordinator, c.servingEpoch, e)
	}
	return nil
}

// termContext is the context of the leadership served: cancelled when it
// ends (and by Close), so waits for a commit that may never come end.
func (c *Coordinator) termContext() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.term
}

// checkLeadership compares the offsets partition's leadership with what is
// served, and drops or loads the groups to match.
func (c *Coordinator) checkLeadership() {
	p, err := c.cfg.OffsetsLog(false)
	if err != nil {
		p = nil // not here, or not led here: nothing to serve
	}
	epoch := int32(-1)
	if p != nil {
		epoch = p.LeaderEpoch()
	}
	c.mu.Lock()
	serving := c.serving
	same := serving && p == c.servingP && epoch == c.servingEpoch
	c.mu.Unlock()
	if same || !serving && epoch < 0 {
		return
	}
	if serving {
		c.resign()
	}
	if epoch >= 0 {
		c.takeOver(p, epoch)
	}
}

// resign drops every group: this broker no longer coordinates them.
func (c *Coordinator) resign() {
	c.mu.Lock()
	groups := c.sortedGroupsLocked()
	epoch := c.servingEpoch
	c.groups = map[string]*group{}
	c.serving, c.servingP, c.servingEpoch = false, nil, -1
	c.txnGroups = nil
	c.endTerm()
	c.term, c.endTerm = c.ctx, func() {}
	c.mu.Unlock()
	c.store.serve(nil, -1)
	dropGroups(groups)
	c.log.Info("offsets partition led elsewhere now: consumer groups dropped", "groups", len(groups), "epoch", epoch)
}

// dropGroups makes groups that are no longer served Dead: their timers
// stop, pending joins and syncs answer ErrNotCoordinator, and requests
// already posted to them look the group up again (and are refused).
func dropGroups(groups []*group) {
	for _, g := range groups {
		g.mb.post(func() {
			if g.state != Dead {
				g.die()
			}
		})
	}
}

// takeOver loads the groups from p, led here in epoch, and serves them.
func (c *Coordinator) takeOver(p *partition.Partition, epoch int32) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return
	}
	c.loading = true
	c.lateMarkers = nil
	c.mu.Unlock()
	groups, err := c.rebuild(func(apply func(b partition.ReplayedBatch, key, value []byte), marker func(b partition.ReplayedBatch, commit bool)) error {
		return replay(p, c.store.maxDecomp, c.log, apply, marker)
	})
	c.mu.Lock()
	c.loading = false
	late := c.lateMarkers
	c.lateMarkers = nil
	if err != nil || c.closing || p.LeaderEpoch() != epoch {
		// Failed (retried at the next check), closing, or the leadership
		// moved during the replay (the next check loads again).
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("cannot load the consumer groups from the offsets partition; retrying", "epoch", epoch, "err", err)
		}
		list := make([]*group, 0, len(groups))
		for _, g := range groups {
			list = append(list, g)
		}
		dropGroups(list)
		return
	}
	// The store first: a request dispatched once serving is set may append.
	c.store.serve(p, epoch)
	c.groups = groups
	// Markers committed during the replay may have landed past its end:
	// applied now (one the replay saw finds nothing left to end).
	for _, m := range late {
		for _, g := range groups {
			endTxn(g.pendingTxn, g.offsets, m.pid, m.commit, m.offset)
		}
	}
	c.indexPendingLocked(groups)
	c.serving, c.servingP, c.servingEpoch = true, p, epoch
	c.term, c.endTerm = context.WithCancel(c.ctx)
	// Counted under mu: once it is released, requests add groups to the
	// map being served.
	n := len(groups)
	c.mu.Unlock()
	c.log.Info("leading the offsets partition: coordinating its consumer groups", "groups", n, "epoch", epoch)
}
