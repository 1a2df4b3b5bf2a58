package metadata

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Reassignment of a partition's replicas (issues 17 and 18), as KRaft's
// PartitionChangeRecord with adding and removing replicas:
//
//   - RecReassign sets a partition's target replicas. The topic's Replicas
//     for the partition become the target followed by every replica it had
//     that the target drops (the union), so every node that is, or may
//     still be, a voter of the partition's raft group keeps its replica
//     open; the first target replica is the preferred leader from then on.
//   - The partition's raft leader changes the group's membership towards
//     the target (internal/replica: learners first, then one joint change)
//     and, once it has applied a configuration whose voters are the
//     target and with no learner, records RecReassignDone: Replicas become
//     the target and the nodes left out stop and delete their replica.
//   - Cancel (a nil target) turns the reassignment around: the target
//     becomes the replicas it started from, and the union stays until the
//     raft group is back there and the leader records RecReassignDone.
//     Before the voters switched, that only removes the new learners; after,
//     it is one more membership change. Either way no node deletes its copy
//     while the group may still count it as a voter.
//
// Partitions of one replica are not raft groups (their logs carry no raft
// state), so reassigning from or to a single replica is refused.

// Errors of reassignments (and ErrInvalidReplicaAssignment, placement.go:
// a target with duplicates, an unknown broker, a single replica, or a
// topic of a single node).
var (
	// ErrNoReassignment: a cancel of a partition that is not reassigning.
	ErrNoReassignment = errors.New("no reassignment in progress")
)

// Reassignment is a partition's reassignment in progress.
type Reassignment struct {
	// Before are the replicas the partition had when it started (what a
	// cancel returns to), Target those it moves to.
	Before []int32 `json:"before"`
	Target []int32 `json:"target"`
}

func (r Reassignment) clone() Reassignment {
	return Reassignment{Before: slices.Clone(r.Before), Target: slices.Clone(r.Target)}
}

// Adding are the target replicas the partition did not have before
// (Kafka's addingReplicas).
func (r Reassignment) Adding() []int32 { return minus(r.Target, r.Before) }

// Removing are the replicas it had that the target drops (Kafka's
// removingReplicas).
func (r Reassignment) Removing() []int32 { return minus(r.Before, r.Target) }

// ReassignChange is the payload of RecReassign (a nil Target cancels) and
// of RecReassignDone (the target the raft group reached).
type ReassignChange struct {
	Topic     string  `json:"topic"`
	TopicID   TopicID `json:"topic_id"`
	Partition int32   `json:"partition"`
	Target    []int32 `json:"target"`
}

// ElectPreferred is the payload of RecElectPreferred: a request that the
// partition's raft leader hand leadership to Leader, its preferred
// replica. It changes no state; every node sees it applied, and the one
// whose replica leads acts on it (package cluster).
type ElectPreferred struct {
	Topic     string  `json:"topic"`
	TopicID   TopicID `json:"topic_id"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
}

// minus is a's elements not in b, in a's order.
func minus(a, b []int32) []int32 {
	var out []int32
	for _, x := range a {
		if !slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}

// sameSet reports whether a and b hold the same elements (no duplicates
// in either).
func sameSet(a, b []int32) bool {
	return len(a) == len(b) && len(minus(a, b)) == 0
}

// partitionOf finds a partition of a cluster topic for a change.
func (st *state) partitionOf(topic string, id TopicID, p int32) (*Topic, error) {
	t, ok := st.topics[topic]
	if !ok || t.ID != id {
		return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, topic)
	}
	if p < 0 || p >= t.Partitions {
		return nil, fmt.Errorf("%w: %s-%d (the topic has %d partitions)", ErrUnknownTopic, topic, p, t.Partitions)
	}
	if t.Replicas == nil || int(p) >= len(t.Replicas) {
		return nil, fmt.Errorf("%w: topic %q has no replica lists (a single node)", ErrInvalidReplicaAssignment, topic)
	}
	return t, nil
}

func (st *state) applyReassign(c ReassignChange) error {
	t, err := st.partitionOf(c.Topic, c.TopicID, c.Partition)
	if err != nil {
		return err
	}
	p := c.Partition
	cur, moving := t.Reassigning[p]
	now := t.Replicas[p]
	var target []int32
	if c.Target == nil {
		if !moving {
			return fmt.Errorf("%w: %s-%d", ErrNoReassignment, c.Topic, p)
		}
		target = cur.Before
	} else {
		if err := st.checkTarget(c.Target); err != nil {
			return fmt.Errorf("%s-%d: %w", c.Topic, p, err)
		}
		if len(now) < 2 {
			return fmt.Errorf("%w: %s-%d has one replica, which is not a raft group: its log cannot be copied to another broker by a membership change", ErrInvalidReplicaAssignment, c.Topic, p)
		}
		target = c.Target
	}
	nt := t.clone()
	if !moving && sameSet(target, now) {
		// The same replicas, maybe in another order (another preferred
		// leader): the raft group's voters are these already.
		nt.Replicas[p] = slices.Clone(target)
		delete(nt.Reassigning, p)
	} else {
		before := now
		if moving {
			before = cur.Before
		}
		if nt.Reassigning == nil {
			nt.Reassigning = map[int32]Reassignment{}
		}
		nt.Reassigning[p] = Reassignment{Before: slices.Clone(before), Target: slices.Clone(target)}
		nt.Replicas[p] = append(slices.Clone(target), minus(now, target)...)
		if !slices.Contains(nt.Reconfigured, p) {
			nt.Reconfigured = append(nt.Reconfigured, p)
			slices.Sort(nt.Reconfigured)
		}
	}
	if len(nt.Reassigning) == 0 {
		nt.Reassigning = nil
	}
	st.topics[c.Topic] = &nt
	return nil
}

// checkTarget accepts two or more distinct registered brokers.
func (st *state) checkTarget(target []int32) error {
	if len(target) < 2 {
		return fmt.Errorf("%w: %v: a partition of one replica is not a raft group; reassign to two replicas or more", ErrInvalidReplicaAssignment, target)
	}
	for i, id := range target {
		if slices.Contains(target[:i], id) {
			return fmt.Errorf("%w: %v names broker %d twice", ErrInvalidReplicaAssignment, target, id)
		}
		if _, ok := st.brokers[id]; !ok {
			return fmt.Errorf("%w: %v: broker %d is not registered", ErrInvalidReplicaAssignment, target, id)
		}
	}
	return nil
}

// applyReassignDone ends a reassignment whose target the raft group
// reached; a report of another target (a reassignment changed or
// cancelled meanwhile, a retried record) is skipped alike on every node.
func (st *state) applyReassignDone(c ReassignChange) error {
	t, err := st.partitionOf(c.Topic, c.TopicID, c.Partition)
	if err != nil {
		return nil
	}
	cur, moving := t.Reassigning[c.Partition]
	if !moving || !sameSet(cur.Target, c.Target) {
		return nil
	}
	nt := t.clone()
	nt.Replicas[c.Partition] = slices.Clone(cur.Target)
	delete(nt.Reassigning, c.Partition)
	if len(nt.Reassigning) == 0 {
		nt.Reassigning = nil
	}
	st.topics[c.Topic] = &nt
	return nil
}

func (st *state) checkElect(e ElectPreferred) error {
	_, err := st.partitionOf(e.Topic, e.TopicID, e.Partition)
	return err
}

// Reassign commits a reassignment of one partition (a nil target
// cancels it).
func (s *Store) Reassign(c ReassignChange) error {
	_, err := s.commit(Record{Type: RecReassign, Reassign: &c})
	return err
}

// ReassignDone records that the partition's raft group reached target;
// it waits at most timeout for the quorum (the caller retries).
func (s *Store) ReassignDone(c ReassignChange, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = s.timeout
	}
	_, err := s.commitWithin(Record{Type: RecReassignDone, Reassign: &c}, timeout)
	return err
}

// RequestPreferredLeader commits a request that the partition's leader
// hand over to its preferred replica.
func (s *Store) RequestPreferredLeader(e ElectPreferred) error {
	_, err := s.commit(Record{Type: RecElectPreferred, Elect: &e})
	return err
}
