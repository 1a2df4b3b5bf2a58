package bench

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runProduce1kAcksAll is the durable produce: 16 idempotent
// producers at acks=all, each configured as a user leaves it, 1 KiB records,
// 8 partitions. Strom acknowledges only fsynced batches, sharing each fsync
// among the producers waiting on a partition (group commit): it should
// reach half of what appending 64 KiB per fdatasync achieves, and ten times
// NATS JetStream fsyncing every write.
func runProduce1kAcksAll(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, producePlan{
		Spec:     produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.AllISRAcks(), Producers: 16, DefaultLinger: true},
		Headline: "MB/s",
		Peers: []peerGoal{
			{Kind: NatsJSFsync, Goal: AtLeast, Target: 10},
		},
		Limits: []limitGoal{
			{Unit: "MB/s", Limit: groupSyncMBps, Goal: AtLeast, Target: 0.5},
		},
		Durability: "Strom answers acks=all once the batch is fsynced (fdatasync of the partition's segment, shared by every batch appended before it started: group commit); nats-fsync (JetStream with sync_interval: always) fsyncs its file store after every write before acknowledging. kfake is not run: it keeps records in memory, so acks=all promises nothing there.",
	})
}
