package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// Topics is what the coordinator needs of the broker's topics and
// partitions. The broker's cluster state has it.
type Topics interface {
	// TxnStatePartition returns the transaction log's partition, creating
	// the topic when create is set; (nil, nil) when it does not exist.
	TxnStatePartition(create bool) (*partition.Partition, error)
	Partition(topic string, index int32) (*partition.Partition, error)
	// PartitionExists: the partition exists, on whichever broker.
	PartitionExists(topic string, index int32) bool
	// TxnStateLeader is the broker that leads the transaction log (the
	// topic created if it does not exist yet).
	TxnStateLeader() (int32, error)
	NodeID() int32
	AllocateProducerID() (int64, error)
	// Checkpoint persists log start offsets (after a compaction).
	Checkpoint() error
	Broker() *metadata.BrokerConfig
	// Replicated reports a cluster (the transaction log may then be a
	// raft group whose leader moves: the coordinator follows it).
	Replicated() bool
}

// ConfigFor is the Config of the coordinator of c: its log, the data
// partitions, producer ids, transaction.max.timeout.ms and
// transaction.abort.timed.out.transaction.cleanup.interval.ms, and groups,
// which takes a committed transaction's offsets.
func ConfigFor(c Topics, groups *group.Coordinator, logger *slog.Logger) Config {
	return Config{
		Log: c.TxnStatePartition,
		Partition: func(topic string, index int32) (*partition.Partition, bool) {
			p, err := c.Partition(topic, index)
			return p, err == nil
		},
		Exists: c.PartitionExists,
		Coordinates: func() error {
			lead, err := c.TxnStateLeader()
			switch {
			case err != nil:
				return fmt.Errorf("%w: %v", ErrCoordinatorNotAvailable, err)
			case lead != c.NodeID():
				return fmt.Errorf("%w: broker %d leads the transaction log", ErrNotCoordinator, lead)
			}
			return nil
		},
		AllocateProducerID: c.AllocateProducerID,
		Checkpoint:         c.Checkpoint,
		CommitOffsets: func(ctx context.Context, groupID string, offsets []PendingOffset) error {
			cos := make([]group.CommitOffset, len(offsets))
			for i, o := range offsets {
				cos[i] = group.CommitOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata}
			}
			res, err := groups.CommitLegacyTxnOffsets(groupID, cos).Wait(ctx)
			if err != nil {
				return err
			}
			return errors.Join(append([]error{res.Err}, res.Errs...)...)
		},
		OffsetsPartition: group.GroupPartition,
		MarkerWritten: func(tp TopicPartition, pid int64, commit bool, offset int64) {
			if topic, index := group.GroupPartition(""); tp.Topic == topic && tp.Partition == index {
				groups.TxnMarker(pid, commit, offset)
			}
		},
		FollowLeader:  c.Replicated(),
		MaxTimeout:    c.Broker().Settings().TransactionMaxTimeout,
		CheckInterval: c.Broker().Settings().TransactionAbortTimedOutInterval,
		Logger:        logger,
	}
}
