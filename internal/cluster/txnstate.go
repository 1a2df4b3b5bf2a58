package cluster

import (
	"errors"
	"fmt"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// TxnStateTopic is the internal topic where the transaction coordinator
// keeps the state of every transactional id.
const TxnStateTopic = "__transaction_state"

// internalTopicConfigs are the overrides of the internal topics: their
// records are deleted only by their coordinator.
func internalTopicConfigs(name string) (map[string]string, bool) {
	switch name {
	case OffsetsTopic, TxnStateTopic:
		return offsetsTopicConfigs, true
	}
	return nil, false
}

// createTxnState creates the transaction state topic: one partition, and
// in a cluster one replica, on the broker of __consumer_offsets-0 (created
// first if needed). The coordinator reads its log once, at start, and
// does not follow a leader that moves (a raft group's would), so the log
// stays on the broker it was placed on (as the offsets topic does today,
// defaultRF). It is placed with the offsets because a transaction's
// offsets go through both coordinators in process: TxnOffsetCommit is
// checked by the group coordinator, then kept in the transaction's
// record, and a commit applies them through the group coordinator.
func (c *Cluster) createTxnState() error {
	spec := TopicSpec{Name: TxnStateTopic, Partitions: 1, ReplicationFactor: 1}
	if c.Replicated() {
		lead, err := c.OffsetsLeader()
		if err != nil {
			return fmt.Errorf("place %s with %s: %w", TxnStateTopic, OffsetsTopic, err)
		}
		spec.Assignment = [][]int32{{lead}}
	}
	r := c.CreateTopics([]TopicSpec{spec}, false)[0]
	if r.Err != nil && !errors.Is(r.Err, metadata.ErrTopicExists) {
		return r.Err
	}
	return nil
}

// TxnStatePartition returns partition 0 of the transaction state topic,
// as OffsetsPartition does for the offsets topic; (nil, nil) when it is
// not open here and create is not set. Creating it on a broker of a
// cluster that does not hold it is ErrNotLeader.
func (c *Cluster) TxnStatePartition(create bool) (*partition.Partition, error) {
	p, err := c.Partition(TxnStateTopic, 0)
	if err == nil {
		return p, nil
	}
	if !create {
		return nil, nil
	}
	if errors.Is(err, ErrNotLeader) {
		return nil, err
	}
	if err := c.createTxnState(); err != nil {
		return nil, err
	}
	return c.Partition(TxnStateTopic, 0)
}

// TxnStateLeader returns the node that coordinates transactions: the
// leader of __transaction_state-0, the topic created first if it does not
// exist (as Kafka creates it at the first FindCoordinator of a
// transactional id). On a single node it is this node, once the
// partition is open.
func (c *Cluster) TxnStateLeader() (int32, error) {
	if !c.Replicated() {
		if _, err := c.TxnStatePartition(true); err != nil {
			return -1, err
		}
		return c.NodeID(), nil
	}
	t, ok := c.store.Topic(TxnStateTopic)
	if !ok {
		if err := c.createTxnState(); err != nil {
			return -1, err
		}
		if t, ok = c.store.Topic(TxnStateTopic); !ok {
			return -1, fmt.Errorf("%w: %s", ErrLeaderNotAvailable, TxnStateTopic)
		}
	}
	lead := c.Leader(&t, 0)
	if lead < 0 {
		return -1, fmt.Errorf("%w: %s-0", ErrLeaderNotAvailable, TxnStateTopic)
	}
	if lead == c.NodeID() {
		if _, err := c.Partition(TxnStateTopic, 0); err != nil {
			return -1, err // not open yet here: the client retries
		}
	}
	return lead, nil
}

// PartitionExists reports whether a topic's partition exists in the
// metadata, wherever it is placed.
func (c *Cluster) PartitionExists(topic string, index int32) bool {
	t, ok := c.store.Topic(topic)
	return ok && index >= 0 && index < t.Partitions
}
