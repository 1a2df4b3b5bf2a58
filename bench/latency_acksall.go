package bench

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kgo"
)

// What acks=all may add to acks=1's limits: the tail of one durable 4 KiB
// append on this disk, measured in the same run.
const (
	syncBytes   = 4 * KiB
	syncSamples = 2000
)

// runLatencyAcksAll is latency-acks1 at acks=all (idempotent, as kgo
// defaults to), where Strom acknowledges only fsynced records. The limits
// are acks=1's plus the p99 of a 4 KiB append and fdatasync in the
// scenario's directory, on the disk Strom writes to: produce p99 <= that +
// 3 ms (the target), end-to-end p99 <= that + 5 ms.
func runLatencyAcksAll(ctx context.Context, e *Env) error {
	cfg := e.Config()
	sync, err := syncLatencies(e.Dir(), syncBytes, syncSamples, cfg.Duration/2)
	if err != nil {
		return fmt.Errorf("fsync latency: %w", err)
	}
	if len(sync) == 0 {
		return fmt.Errorf("fsync latency: no sample in %v", cfg.Duration/2)
	}
	p99 := sync.q(0.99)
	e.Logf("4 KiB append+fdatasync: %s", sync.summary())
	e.Figure(Figure{Name: "disk 4KiB append+sync", Value: ms(p99), Unit: "ms p99",
		Note: fmt.Sprintf("%s; appends to one growing file in the scenario's directory, before the brokers run", sync.summary())})
	spec := latencySpec{Rate: cfg.LatencyRate, RecordBytes: 1024, Partitions: 8, Acks: kgo.AllISRAcks()}
	lim := latencyLimits{E2E: p99 + e2eLimitAcks1, Produce: p99 + produceLimitAcks1,
		Basis: fmt.Sprintf("acks=1's plus this disk's 4 KiB append+fdatasync p99 (%.2f ms): produce p99 <= %.2f ms (the issue's target), end-to-end p99 <= %.2f ms; "+
			"Strom answers acks=all after the batch is fsynced (group commit: one fdatasync for all the waiters of a partition's log)",
			ms(p99), ms(p99+produceLimitAcks1), ms(p99+e2eLimitAcks1))}
	return runLatency(ctx, e, spec, lim)
}
