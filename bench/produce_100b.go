package bench

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// produce100bTarget is the goal for small records.
const produce100bTarget = 1_000_000 // records/s

// runProduce100b is many small records: 100-byte values, acks=1, batched
// by kgo's linger, 8 partitions, 4 producers; the figure is records per
// second, against the million, with kfake alongside.
func runProduce100b(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, producePlan{
		Spec:     produceSpec{RecordBytes: 100, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 4},
		Headline: "records/s",
		Peers: []peerGoal{
			{Kind: Kfake},
		},
		Limits: []limitGoal{
			{Unit: "records/s", Limit: statedLimit(produce100bTarget, "target 1M records/s"), Goal: AtLeast, Target: 1},
			{Unit: "MB/s", Limit: loopbackMBps},
		},
		Durability: "Strom answers acks=1 once the batch is written to its log file, unsynced; kfake keeps records in memory. The median round by records/s is also the median by MB/s: every record is the same size.",
	})
}
