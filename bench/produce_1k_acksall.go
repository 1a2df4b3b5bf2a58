package bench

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runProduce1kAcksAll is the durable produce: 16 idempotent
// producers at acks=all, each configured as a user leaves it, 1 KiB records,
// 8 partitions. Strom acknowledges only fsynced batches, sharing each fsync
// among the producers waiting on a partition (group commit). Its ceiling is
// the disk written the same way (parallelSync: 8 files at once, 1 MiB
// appends, group fsync per file), so the ratio is at most 1 (issue 24); the
// serial 64 KiB append+fdatasync loop of earlier runs stays as context.
// NATS JetStream runs both ways its users run it: fsyncing every write
// (the durability of acks=all, with a goal) and on its default sync
// interval (unsynced, as a user tuning for throughput runs it; no goal,
// its durability is not acks=all's).
func runProduce1kAcksAll(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, producePlan{
		Spec:     produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.AllISRAcks(), Producers: 16, DefaultLinger: true},
		Headline: "MB/s",
		Peers: []peerGoal{
			{Kind: NatsJSFsync, Goal: AtLeast, Target: 10},
			{Kind: NatsJS},
		},
		Limits: []limitGoal{
			{Unit: "MB/s", Limit: parallelSyncMBps, Goal: AtLeast, Target: 0.5},
			{Unit: "MB/s", Limit: groupSyncMBps},
		},
		Durability: "Strom answers acks=all once the batch is fsynced (fdatasync of the partition's segment, shared by every batch appended before it started: group commit); nats-fsync (JetStream with sync_interval: always) fsyncs its file store after every write before acknowledging: the same promise. nats (JetStream's default sync_interval, 2 minutes) acknowledges once written, unsynced: a lesser promise than acks=all, shown because it is how JetStream's users run it for throughput. Both NATS peers are driven with async publish and a window of -nats-pending messages per producer. kfake is not run: it keeps records in memory, so acks=all promises nothing there.",
	})
}
