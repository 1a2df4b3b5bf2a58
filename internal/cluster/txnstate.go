package cluster

import (
	"errors"

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

// TxnStatePartition returns partition 0 of the transaction state topic,
// as OffsetsPartition does for the offsets topic.
func (c *Cluster) TxnStatePartition(create bool) (*partition.Partition, error) {
	if p, err := c.Partition(TxnStateTopic, 0); err == nil {
		return p, nil
	}
	if !create {
		return nil, nil
	}
	if _, err := c.CreateTopic(TxnStateTopic, 1, nil, false); err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return nil, err
	}
	return c.Partition(TxnStateTopic, 0)
}
