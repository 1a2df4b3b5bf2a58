package bench

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Compressed produce (issue 22): 1 KiB JSON sensor reports, a fresh one per
// record, compressed by the producer with franz-go's default snappy, with
// lz4 and with zstd, 4 producers, acks=1, 8 partitions: Strom, which
// validates every compressed batch (decompresses and walks its records, as
// Kafka does), against kfake, which stores batches without decompressing
// them. Strom runs with metrics, so its allocations per MB are reported
// beside its CPU per MB. acks=1 without idempotence as in
// produce-1k-acks1: franz-go's default acks=all would have Strom fsync
// while kfake keeps memory only.
func compressedPlan(c Codec) producePlan {
	return producePlan{
		Spec:     produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 4, Payload: JSONPayload, Codec: c},
		Headline: "MB/s",
		Peers: []peerGoal{
			{Kind: Kfake, Goal: AtLeast, Target: 1},
		},
		Limits: []limitGoal{
			{Unit: "MB/s", Limit: loopbackMBps},
		},
		Metered:    true,
		Durability: "MB/s counts uncompressed record values (what the application produced), not the compressed bytes on the wire. Strom answers acks=1 once the (validated) batch is written to its log file, unsynced; kfake keeps the batch in its process's memory without decompressing it.",
	}
}

func runProduce1kSnappy(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, compressedPlan(Snappy))
}

func runProduce1kLZ4(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, compressedPlan(LZ4))
}

func runProduce1kZstd(ctx context.Context, e *Env) error {
	return runProduce(ctx, e, compressedPlan(Zstd))
}
