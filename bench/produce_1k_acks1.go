package bench

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runProduce1kAcks1 is the issue's "produce 1 KiB, acks=1, 8 partitions, 4
// producers": Strom at least as fast as kfake, three times NATS JetStream
// publishing asynchronously with its default sync, and 0.6 of what the disk
// writes sequentially.
func runProduce1kAcks1(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, producePlan{
		Spec:     produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 4},
		Headline: "MB/s",
		Peers: []peerGoal{
			{Kind: Kfake, Goal: AtLeast, Target: 1},
			{Kind: NatsJS, Goal: AtLeast, Target: 3},
		},
		Limits: []limitGoal{
			{Unit: "MB/s", Limit: seqWriteMBps, Goal: AtLeast, Target: 0.6},
			{Unit: "MB/s", Limit: loopbackMBps},
		},
		Durability: "Strom answers acks=1 once the batch is written to its log file (in the page cache: it survives a crash of the broker; fsync follows Kafka's flush.ms/flush.messages defaults, off); kfake keeps records in its process's memory only; nats (JetStream, default sync_interval of 2 minutes) acknowledges a message once its file store has written it, unsynced.",
	})
}
