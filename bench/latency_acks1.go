package bench

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Limits from the issue for acks=1 at a steady rate.
const (
	e2eLimitAcks1     = 5 * time.Millisecond
	produceLimitAcks1 = 3 * time.Millisecond
)

// runLatencyAcks1 measures end-to-end and produce latency at LatencyRate
// records/s of 1 KiB, acks=1, 8 partitions: Strom against the issue's
// limits, kfake beside it with the same clients.
func runLatencyAcks1(ctx context.Context, e *Env) error {
	spec := latencySpec{Rate: e.Config().LatencyRate, RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck()}
	return runLatency(ctx, e, spec, latencyLimits{E2E: e2eLimitAcks1, Produce: produceLimitAcks1,
		Basis: "the issue's, end-to-end p99 <= 5 ms and produce p99 <= 3 ms; Strom answers acks=1 once the batch is in its log file (page cache), without fsync"})
}
