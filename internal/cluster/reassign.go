package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/replica"
)

// Reassignments and preferred-leader elections (issues 17 and 18).
//
// A reassignment is a metadata record (metadata/reassign.go): the
// controller (the metadata quorum) holds the target, every node applies
// it, and the reconciler opens a replica on each node the union of old and
// new replicas names; a new one joins its raft group empty
// (replica.Config.Join). The membership loop below, on the node whose
// replica leads, steps the group towards the target
// (replica.Reconfigure: learners, one joint change, leave joint) and
// records the end (RecReassignDone) once the leader applied the target
// configuration; the reconciler then stops and deletes the replicas of
// the nodes left out.
//
// A preferred-leader election is a metadata record too, which changes no
// state: the node whose replica leads sees it applied and transfers
// leadership to the preferred replica; the caller waits until the
// metadata names the new leader.

// Errors of leader elections.
var (
	// ErrElectionNotNeeded: the preferred replica leads already.
	ErrElectionNotNeeded = errors.New("election not needed")
	// ErrPreferredLeaderNotAvailable: the preferred replica is fenced or
	// not in the ISR.
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")
)

// preferredOf is the raft id of the preferred leader of partition i (its
// first replica), 0 when auto (auto.leader.rebalance.enable, a static
// setting) is off: the replica then never hands over by itself
// (ElectPreferred still moves it).
func preferredOf(auto bool, t *metadata.Topic, i int32) uint64 {
	if !auto || int(i) >= len(t.Replicas) || len(t.Replicas[i]) == 0 {
		return 0
	}
	return uint64(t.Replicas[i][0]) + 1
}

// ReassignmentInfo is a partition's reassignment in progress.
type ReassignmentInfo struct {
	Topic     string
	Partition int32
	Replicas  []int32 // the union: target first, then the replicas it drops
	Adding    []int32
	Removing  []int32
}

// Reassign sets the target replicas of partition i of topic (nil:
// cancel the reassignment in progress).
func (c *Cluster) Reassign(topic string, i int32, target []int32) error {
	if !c.Peers() {
		// One node (a cluster of one): no other broker to move to.
		if target == nil {
			return fmt.Errorf("%w: %s-%d (a single node never reassigns)", metadata.ErrNoReassignment, topic, i)
		}
		return fmt.Errorf("%w: a single node has no other broker to move replicas to", metadata.ErrInvalidReplicaAssignment)
	}
	t, ok := c.store.Topic(topic)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, topic)
	}
	if i < 0 || i >= t.Partitions {
		return fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, i)
	}
	if err := c.store.Reassign(metadata.ReassignChange{Topic: topic, TopicID: t.ID, Partition: i, Target: target}); err != nil {
		return err
	}
	c.cfg.Logger.Info("partition reassignment", "topic", topic, "partition", i, "target", target, "cancel", target == nil)
	c.wakeReconciler()
	return nil
}

// Reassignments lists the reassignments in progress, of the given
// partitions (topic -> partitions; nil: all).
func (c *Cluster) Reassignments(only map[string][]int32) []ReassignmentInfo {
	var out []ReassignmentInfo
	for _, t := range c.store.Topics() {
		want, named := only[t.Name]
		if only != nil && !named {
			continue
		}
		for i := int32(0); i < t.Partitions; i++ {
			r, ok := t.Reassigning[i]
			if !ok || (only != nil && !slices.Contains(want, i)) {
				continue
			}
			out = append(out, ReassignmentInfo{Topic: t.Name, Partition: i, Replicas: slices.Clone(t.Replicas[i]),
				Adding: r.Adding(), Removing: r.Removing()})
		}
	}
	return out
}

// ElectPreferred makes the preferred replica (the first) of partition i
// of topic its leader, waiting until the metadata says so or ctx ends.
// ErrElectionNotNeeded when it leads already; ErrPreferredLeaderNotAvailable
// when it is fenced or out of the ISR (raft would not elect a replica
// that misses committed entries).
func (c *Cluster) ElectPreferred(ctx context.Context, topic string, i int32) error {
	t, ok := c.store.Topic(topic)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, topic)
	}
	if i < 0 || i >= t.Partitions {
		return fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, i)
	}
	if !replicatedPartition(&t, i) {
		// One replica (or a single node): it is the preferred one.
		if c.Leader(&t, i) < 0 {
			return fmt.Errorf("%w: %s-%d: its only replica is not alive", ErrPreferredLeaderNotAvailable, topic, i)
		}
		return fmt.Errorf("%w: %s-%d has one replica, which leads", ErrElectionNotNeeded, topic, i)
	}
	pref := t.Replicas[i][0]
	// Metadata's view (a newer confirmed leader this node's replica knows
	// of), so that a client that saw a new leader there is not told the
	// dead preferred replica still leads.
	li := c.MetadataLeader(&t, i)
	switch {
	case c.nodeDown(pref): // never this node
		return fmt.Errorf("%w: broker %d, the preferred replica of %s-%d, is down", ErrPreferredLeaderNotAvailable, pref, topic, i)
	case li.Leader == pref:
		return fmt.Errorf("%w: broker %d, the preferred replica of %s-%d, leads it", ErrElectionNotNeeded, pref, topic, i)
	case !slices.Contains(li.ISR, pref):
		return fmt.Errorf("%w: broker %d, the preferred replica of %s-%d, is not in the ISR %v", ErrPreferredLeaderNotAvailable, pref, topic, i, li.ISR)
	case li.Leader < 0:
		return fmt.Errorf("%w: %s-%d has no leader to hand over", ErrLeaderNotAvailable, topic, i)
	}
	if b, ok := c.store.Broker(pref); !ok || b.Fenced {
		return fmt.Errorf("%w: broker %d, the preferred replica of %s-%d, is fenced", ErrPreferredLeaderNotAvailable, pref, topic, i)
	}
	if err := c.store.RequestPreferredLeader(metadata.ElectPreferred{Topic: topic, TopicID: t.ID, Partition: i, Leader: pref}); err != nil {
		return err
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if l := c.PartitionLeader(&t, i); l.Leader == pref {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s-%d: waiting for broker %d to lead: %w", topic, i, pref, ctx.Err())
		case <-tick.C:
		}
	}
}

// startMembership starts the loop that drives reassignments and
// preferred-leader requests on this node's replicas; Close stops it.
//
// It reads the metadata only when a reassignment record or a topic's
// deletion was applied (or a snapshot restored, or a replica started here): it then gives each
// replica its preferred leader and notes the replicas of partitions that
// are reassigning; every tick it steps only those, so an idle node copies
// nothing.
func (c *Cluster) startMembership(ctx context.Context, every time.Duration) {
	c.elect = make(chan metadata.ElectPreferred, 256)
	c.membershipDirty.Store(true)
	c.store.OnChange(func(r metadata.Record) {
		switch r.Type {
		case metadata.RecReassign, metadata.RecReassignDone, metadata.RecDeleteTopic, "":
			c.membershipDirty.Store(true)
		case metadata.RecElectPreferred:
			if r.Elect == nil {
				return
			}
			select {
			case c.elect <- *r.Elect:
			default:
				c.cfg.Logger.Warn("too many preferred-leader requests at once; dropped one (the caller times out and may retry)", "topic", r.Elect.Topic, "partition", r.Elect.Partition)
			}
		}
	})
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var moving []reassigning
		for {
			select {
			case <-ctx.Done():
				return
			case e := <-c.elect:
				c.handOverTo(e)
			case <-t.C:
				if c.membershipDirty.Swap(false) {
					moving = c.refreshMembership()
				}
				for _, m := range moving {
					c.stepReassignment(m)
				}
			}
		}
	}()
}

// reassigning is a replica here of a partition being reassigned.
type reassigning struct {
	h      *hosted
	topic  metadata.TopicID
	target []int32
}

// hostedReplicas is a snapshot of this node's partition replicas.
func (c *Cluster) hostedReplicas() []*hosted {
	c.reps.mu.RLock()
	defer c.reps.mu.RUnlock()
	hs := make([]*hosted, 0, len(c.reps.groups))
	for _, h := range c.reps.groups {
		hs = append(hs, h)
	}
	return hs
}

// handOverTo transfers the leadership of e's partition to e.Leader when a
// replica here leads it.
func (c *Cluster) handOverTo(e metadata.ElectPreferred) {
	self := uint64(c.NodeID()) + 1
	for _, h := range c.hostedReplicas() {
		if h.key.Topic != e.Topic || h.key.Partition != e.Partition || h.topic != e.TopicID || h.r.Leader() != self {
			continue
		}
		if to := uint64(e.Leader) + 1; to != self {
			c.cfg.Logger.Info("handing leadership to the preferred replica on request", "topic", e.Topic, "partition", e.Partition, "to", e.Leader)
			h.r.TransferLeadership(to)
		}
	}
}

// refreshMembership gives each replica here its preferred leader when it
// changed, and returns those of partitions being reassigned.
func (c *Cluster) refreshMembership() []reassigning {
	auto := c.cfg.Broker.Settings().AutoLeaderRebalanceEnable
	topics := c.store.Topics()
	byName := make(map[string]*metadata.Topic, len(topics))
	for i := range topics {
		byName[topics[i].Name] = &topics[i]
	}
	var out []reassigning
	for _, h := range c.hostedReplicas() {
		t, ok := byName[h.key.Topic]
		i := h.key.Partition
		if !ok || t.ID != h.topic || int(i) >= len(t.Replicas) {
			continue
		}
		if p := preferredOf(auto, t, i); p != h.preferred {
			h.r.SetPreferred(p)
			h.preferred = p
		}
		if ra, ok := t.Reassigning[i]; ok {
			out = append(out, reassigning{h: h, topic: t.ID, target: ra.Target})
		}
	}
	return out
}

// stepReassignment, when this node's replica leads the partition, takes
// its next membership step and records the end.
func (c *Cluster) stepReassignment(m reassigning) {
	h := m.h
	if h.r.Leader() != uint64(c.NodeID())+1 {
		return
	}
	target := make([]uint64, len(m.target))
	for k, id := range m.target {
		target[k] = uint64(id) + 1
	}
	st, err := h.r.Reconfigure(target)
	if err != nil {
		if !errors.Is(err, replica.ErrStopped) {
			c.cfg.Logger.Warn("partition membership change", "topic", h.key.Topic, "partition", h.key.Partition, "err", err)
		}
		return
	}
	if st.Step != "" {
		c.cfg.Logger.Info("partition membership change", "topic", h.key.Topic, "partition", h.key.Partition, "step", st.Step)
	}
	if !st.Done {
		return
	}
	done := metadata.ReassignChange{Topic: h.key.Topic, TopicID: m.topic, Partition: h.key.Partition, Target: m.target}
	if err := c.store.ReassignDone(done, time.Second); err != nil {
		c.cfg.Logger.Warn("cannot record a finished reassignment; retrying", "topic", h.key.Topic, "partition", h.key.Partition, "err", err)
		return
	}
	c.cfg.Logger.Info("partition reassignment finished", "topic", h.key.Topic, "partition", h.key.Partition, "replicas", m.target)
}
