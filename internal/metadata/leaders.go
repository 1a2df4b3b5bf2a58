package metadata

import (
	"fmt"
	"maps"
	"slices"
	"time"
)

// PartitionLeader is a replicated partition's leadership as its raft
// group's leader reported it (issue 18): the leader's node id, the leader
// epoch (the raft term it committed an entry in) and the in-sync replicas
// (node ids). Every broker applies it, so each can tell clients who leads.
type PartitionLeader struct {
	Topic     string  `json:"topic"`
	TopicID   TopicID `json:"topic_id"`
	Partition int32   `json:"partition"`
	Leader    int32   `json:"leader"`
	Epoch     int32   `json:"epoch"`
	ISR       []int32 `json:"isr"`
}

type leaderKey struct {
	topic     string
	partition int32
}

// applyLeader records l unless it is stale: an older epoch than the one
// recorded (a deposed leader's report arriving late), or a topic that no
// longer exists (or was recreated under another id). A stale record is
// skipped without error, alike on every node.
func (st *state) applyLeader(l PartitionLeader) error {
	t, ok := st.topics[l.Topic]
	if !ok || t.ID != l.TopicID || l.Partition < 0 || l.Partition >= t.Partitions {
		return nil
	}
	k := leaderKey{l.Topic, l.Partition}
	if old, ok := st.leaders[k]; ok && old.Epoch > l.Epoch {
		return nil
	}
	if l.Epoch < 0 {
		return fmt.Errorf("metadata: leader epoch %d", l.Epoch)
	}
	ls := maps.Clone(st.leaders)
	if ls == nil {
		ls = map[leaderKey]PartitionLeader{}
	}
	l.ISR = slices.Clone(l.ISR)
	ls[k] = l
	st.leaders = ls
	return nil
}

// dropLeaders forgets a deleted topic's leaders.
func (st *state) dropLeaders(topic string) {
	var ls map[leaderKey]PartitionLeader
	for k := range st.leaders {
		if k.topic == topic {
			if ls == nil {
				ls = maps.Clone(st.leaders)
			}
			delete(ls, k)
		}
	}
	if ls != nil {
		st.leaders = ls
	}
}

// SetPartitionLeader commits a replicated partition's leadership, waiting
// at most timeout (0: the store's) for the quorum: the caller retries,
// and a proposal lost with a dead quorum leader must not hold up the
// report of a partition's new leader for raft's proposal timeout.
func (s *Store) SetPartitionLeader(l PartitionLeader, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = s.timeout
	}
	_, err := s.commitWithin(Record{Type: RecPartitionLeader, Leader: &l}, timeout)
	return err
}

// PartitionLeader returns the leadership last recorded for a partition.
func (s *Store) PartitionLeader(topic string, partition int32) (PartitionLeader, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.st.leaders[leaderKey{topic, partition}]
	if ok {
		l.ISR = slices.Clone(l.ISR)
	}
	return l, ok
}
