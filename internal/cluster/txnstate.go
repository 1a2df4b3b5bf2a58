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

// createTxnState creates the transaction state topic, of one partition.
// In a cluster:
//   - with a replicated offsets topic (offsets.topic.replication.factor
//     above 1, the default): transaction.state.log.replication.factor
//     replicas (default 3) capped by the size of the cluster, as offsetsRF
//     caps the offsets topic's; its replicas form a raft group and the
//     coordinator follows its leader (coordinator/txn follow.go);
//   - with an offsets topic of one replica: one replica, on the broker of
//     __consumer_offsets-0 (created first if needed), because a
//     transaction's offsets go through both coordinators in process
//     (TxnOffsetCommit is checked by the group coordinator, kept in the
//     transaction's record, and applied through it at the commit), which
//     AddOffsetsToTxn allows only then.
func (c *Cluster) createTxnState() error {
	spec := TopicSpec{Name: TxnStateTopic, Partitions: 1, ReplicationFactor: 1}
	if c.Replicated() {
		if rf := c.txnStateRF(); rf > 1 && c.offsetsReplicated() {
			spec.ReplicationFactor = rf
		} else {
			lead, err := c.OffsetsLeader()
			if err != nil {
				return fmt.Errorf("place %s with %s: %w", TxnStateTopic, OffsetsTopic, err)
			}
			spec.Assignment = [][]int32{{lead}}
		}
	}
	r := c.CreateTopics([]TopicSpec{spec}, false)[0]
	if r.Err != nil && !errors.Is(r.Err, metadata.ErrTopicExists) {
		return r.Err
	}
	return nil
}

// txnStateRF is transaction.state.log.replication.factor capped by the
// size of the cluster (as offsetsRF).
func (c *Cluster) txnStateRF() int16 {
	s := c.cfg.Broker.Settings()
	size := max(len(c.store.Brokers()), len(s.ControllerQuorumVoters))
	return max(1, min(s.TransactionStateLogReplicationFactor, int16(min(size, 1<<14))))
}

// offsetsReplicated reports whether the offsets topic has, or will be
// created with, more than one replica.
func (c *Cluster) offsetsReplicated() bool {
	if t, ok := c.store.Topic(OffsetsTopic); ok {
		return len(t.Replicas) > 0 && len(t.Replicas[0]) > 1
	}
	return c.offsetsRF() > 1
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
