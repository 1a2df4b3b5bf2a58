package group

import (
	"sync/atomic"
	"time"
)

// group is one consumer group. Everything below mb is owned by the group's
// actor (closures run by mb); nothing else reads or writes it. listing is
// the one thing other goroutines read: a snapshot published after changes.
type group struct {
	id      string
	c       *Coordinator
	mb      mailbox
	listing atomic.Pointer[GroupListing]

	state State
	since time.Time // when state was entered
	// cg is set when this is a KIP-848 group (ConsumerGroupHeartbeat,
	// consumer.go); the classic fields then stay empty, but state says
	// Empty or Stable (members or none).
	cg *consumerGroup
	// The classic protocol's state (classic.go).
	classicGroup

	offsets map[TopicPartition]committed
	// pendingTxn holds the offsets of transactions not yet ended, by
	// producer id (TxnOffsetCommit, txn.go): written to the offsets log
	// in the producer's transactional batches, committed at its COMMIT
	// marker, dropped at its ABORT marker.
	pendingTxn map[int64]map[TopicPartition]committed

	// persists are the appends to the offsets log not yet durable, in the
	// order they were made; their effects apply in that order.
	persists     []*persistOp
	persistSeq   uint64 // persists started
	appliedSeq   uint64 // persists applied
	fetchWaiters []fetchWaiter
}

// gtimer is a timer whose function runs on the group's actor, and never
// after stop (stop and the run are both on the actor).
type gtimer struct {
	t       Timer
	stopped bool
}

func (g *group) after(d time.Duration, fn func()) *gtimer {
	gt := &gtimer{}
	gt.t = g.c.clock.AfterFunc(d, func() {
		g.mb.post(func() {
			if !gt.stopped {
				gt.stopped = true
				fn()
			}
		})
	})
	return gt
}

func (gt *gtimer) stop() {
	if gt != nil && !gt.stopped {
		gt.stopped = true
		gt.t.Stop()
	}
}

// publish refreshes the snapshot ListGroups reads.
func (g *group) publish() {
	if g.cg != nil {
		// The classic state stands for what the rest of the group's code
		// asks of it: does the group have members.
		if len(g.cg.members) > 0 {
			g.state = Stable
		} else {
			g.state = Empty
		}
		g.listing.Store(&GroupListing{Group: g.id, ProtocolType: "consumer", State: g.consumerState(), Type: "consumer"})
		return
	}
	g.listing.Store(&GroupListing{Group: g.id, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"})
}

func (g *group) transition(s State) {
	g.c.log.Debug("group state", "group", g.id, "from", g.state, "to", s, "generation", g.generation)
	g.state = s
	g.since = g.c.clock.Now()
	g.publish()
}

// restore rebuilds the group from the offsets log at start: a group with
// members comes back Stable in its generation, with fresh sessions, so a
// restart costs its consumers no rebalance.
func (g *group) restore(meta *groupRecord, offsets map[TopicPartition]committed) {
	g.offsets = offsets
	if meta != nil {
		g.protocolType = meta.ProtocolType
		g.generation = meta.Generation
		g.protocol = meta.Protocol
		g.leader = meta.Leader
		if meta.StateTime > 0 {
			g.since = time.UnixMilli(meta.StateTime)
		}
		for _, mr := range meta.Members {
			g.joinSeq++
			m := &member{
				id: mr.MemberID, instanceID: mr.InstanceID, clientID: mr.ClientID, host: mr.ClientHost,
				protocolType: meta.ProtocolType, protocols: []Protocol{{Name: meta.Protocol, Metadata: mr.Metadata}},
				sessionTimeout: mr.SessionTimeout, rebalanceTimeout: mr.RebalanceTimeout,
				assignment: mr.Assignment, seq: g.joinSeq,
			}
			g.members[m.id] = m
			if m.instanceID != "" {
				g.instances[m.instanceID] = m.id
			}
			g.startSession(m)
		}
	}
	if len(g.members) > 0 {
		g.state = Stable
		if _, ok := g.members[g.leader]; !ok {
			g.leader = g.sortedMembers()[0].id
		}
	} else {
		g.state = Empty
		g.leader = ""
		g.protocol = ""
	}
	g.publish()
}

// ---- DescribeGroups ----

func (g *group) describe() Description {
	if g.cg != nil {
		return g.describeConsumer()
	}
	return g.describeClassic()
}

// ---- lifecycle ----

// shutdown stops the group's timers for Close.
func (g *group) shutdown() {
	g.releaseWaiters()
	for _, m := range g.members {
		m.session.stop()
	}
	for _, t := range g.pending {
		t.stop()
	}
	g.joinTimer.stop()
	g.syncTimer.stop()
	if g.cg != nil {
		for _, m := range g.cg.members {
			m.session.stop()
			m.revokeTimer.stop()
		}
	}
}

// die makes the group Dead: it leaves the coordinator's map at once (a
// new group of the same id can start), and its mailbox closes once its
// last append is durable.
func (g *group) die() {
	g.shutdown()
	g.transition(Dead)
	g.c.mu.Lock()
	if g.c.groups[g.id] == g {
		delete(g.c.groups, g.id)
	}
	g.c.mu.Unlock()
	g.maybeCloseMailbox()
}

func (g *group) maybeCloseMailbox() {
	if g.state == Dead && len(g.persists) == 0 {
		g.mb.close()
	}
}
