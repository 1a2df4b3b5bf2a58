package bench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster-latency-rf3: issue 18's "p50/p99 at a fixed 20,000 records/s
// (goal p99 <= 10 ms)" for acks=all on an RF=3 topic of three local
// brokers: latency-acksall's paced workload, rounds alternated with one
// strom serve (RF=1) in the same run, so the cost of replication (a
// follower's fsync and two network hops before the answer) shows against
// the same machine's single copy.

// clusterLatencyGoal is the produce p99 limit.
const clusterLatencyGoal = 10 * time.Millisecond

func runClusterLatencyRF3(ctx context.Context, e *Env) error {
	cfg := e.Config()
	spec := latencySpec{Rate: cfg.LatencyRate, RecordBytes: 1024, Partitions: 8, Acks: kgo.AllISRAcks()}
	e.Notef("Workload: %s.", spec.describe())
	e.Notef("Single node: one strom serve, the topic of replication factor 1 (answered once fsynced). Cluster: three strom serve nodes on this machine (each broker and controller), the topic of replication factor 3 (answered once committed: fsynced on the leader and a follower), the clients seeded with node 1 (they find the leaders from the metadata). "+
		"Rounds alternate, a fresh broker or cluster per round, %v of warm-up then %v measured; quantiles over every counted record of every round; goal: produce p99 <= %v.",
		cfg.Warmup, cfg.Duration, clusterLatencyGoal)
	var single, cluster latencyResult
	var rounds []string
	for round := range cfg.Rounds {
		r, err := latencyOnce(ctx, e, Strom, spec)
		if err != nil {
			return fmt.Errorf("single node, round %d: %w", round+1, err)
		}
		single = single.merge(r)
		e.Logf("round %d single node: e2e %s; produce %s", round+1, r.E2E.summary(), r.Produce.summary())
		if r.Stall != "" {
			e.Logf("round %d single node: %s", round+1, r.Stall)
		}

		c, err := clusterLatencyOnce(ctx, e, spec, round)
		if err != nil {
			return fmt.Errorf("cluster, round %d: %w", round+1, err)
		}
		cluster = cluster.merge(c)
		rounds = append(rounds, fmt.Sprintf("%.2f/%.2f", ms(c.E2E.q(0.99)), ms(c.Produce.q(0.99))))
		e.Logf("round %d RF=3 cluster: e2e %s; produce %s; %.0f records/s", round+1, c.E2E.summary(), c.Produce.summary(), c.rate())
		if c.Stall != "" {
			e.Logf("round %d RF=3 cluster: %s", round+1, c.Stall)
		}
	}
	goal := fmt.Sprintf("goal %.0f ms", ms(clusterLatencyGoal))
	e.Figure(Figure{Name: "strom RF=3 produce p50", Value: ms(cluster.Produce.q(0.5)), Unit: "ms", Note: fmt.Sprintf("single node %.2f", ms(single.Produce.q(0.5)))})
	e.Figure(Figure{Name: "strom RF=3 produce p99", Value: ms(cluster.Produce.q(0.99)), Unit: "ms", Versus: goal,
		Ratio: float64(cluster.Produce.q(0.99)) / float64(clusterLatencyGoal), Goal: AtMost,
		Note: fmt.Sprintf("single node p99 %.2f; %d records; p99 e2e/produce per round %s ms", ms(single.Produce.q(0.99)), len(cluster.Produce), strings.Join(rounds, ", "))})
	e.Figure(Figure{Name: "strom RF=3 produce p99.9", Value: ms(cluster.Produce.q(0.999)), Unit: "ms", Note: fmt.Sprintf("max %.2f; single node %.2f", ms(cluster.Produce.max()), ms(single.Produce.q(0.999)))})
	e.Figure(Figure{Name: "strom RF=3 e2e p99", Value: ms(cluster.E2E.q(0.99)), Unit: "ms", Note: fmt.Sprintf("p50 %.2f; single node p99 %.2f", ms(cluster.E2E.q(0.5)), ms(single.E2E.q(0.99)))})
	e.Figure(Figure{Name: "strom single node produce p99", Value: ms(single.Produce.q(0.99)), Unit: "ms", Note: single.Produce.summary()})
	e.Figure(Figure{Name: "strom RF=3 rate", Value: cluster.rate(), Unit: "records/s", Versus: "rate asked", Ratio: cluster.rate() / float64(spec.Rate),
		Note: fmt.Sprintf("at most %d records due in one %v tick", cluster.MaxGroup, latencyTick)})
	return nil
}

// clusterLatencyOnce runs the paced workload against a new three-node
// cluster on an RF=3 topic.
func clusterLatencyOnce(ctx context.Context, e *Env, spec latencySpec, round int) (latencyResult, error) {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+3*time.Minute)
	defer cancel()
	nodes, err := startCluster3With(ctx, e, true)
	if err != nil {
		return latencyResult{}, err
	}
	defer func() {
		for _, n := range nodes {
			e.Stop(n.srv)
		}
	}()
	spec.Create = func(ctx context.Context, topic string, partitions int32) error {
		return createReplicated(ctx, nodes, topic, partitions)
	}
	res, err := measureLatency(ctx, nodes[0].srv, fmt.Sprintf("bench-latency-rf3-%d", round), spec, cfg.Warmup, cfg.Duration)
	if err == nil {
		// What the leaders saw: proposal to commit, the part of a
		// produce's latency that replication adds.
		if c, cerr := commitLatency(ctx, nodes); cerr != nil {
			e.Logf("round %d: the leaders' commit latency: %v", round+1, cerr)
		} else {
			e.Logf("round %d: the leaders' commit latency (strom_partition_commit_seconds, the whole round): p50 %s, p99 %s over %.0f proposals", round+1, c.p50, c.p99, c.count)
		}
	}
	return res, err
}

// commitQuantiles is a latency distribution read from a histogram.
type commitQuantiles struct {
	p50, p99 time.Duration
	count    float64
}

// commitLatency sums the nodes' strom_partition_commit_seconds histograms
// and estimates the median and p99, interpolated within the buckets (each
// twice the one below: the estimate is coarse).
func commitLatency(ctx context.Context, nodes []*clusterNode) (commitQuantiles, error) {
	const prefix = `strom_partition_commit_seconds_bucket{le="`
	cum := map[float64]float64{}
	for _, n := range nodes {
		m, err := scrape(ctx, n.http)
		if err != nil {
			return commitQuantiles{}, err
		}
		for k, v := range m {
			le, ok := strings.CutPrefix(k, prefix)
			if !ok {
				continue
			}
			b, err := strconv.ParseFloat(strings.TrimSuffix(le, `"}`), 64)
			if err != nil {
				return commitQuantiles{}, fmt.Errorf("%s: %w", k, err)
			}
			cum[b] += v
		}
	}
	bounds := slices.Sorted(maps.Keys(cum))
	if len(bounds) == 0 || cum[bounds[len(bounds)-1]] == 0 {
		return commitQuantiles{}, errors.New("no commits in strom_partition_commit_seconds")
	}
	total := cum[bounds[len(bounds)-1]]
	q := func(f float64) time.Duration {
		target := f * total
		lo, below := 0.0, 0.0
		for _, b := range bounds {
			if cum[b] >= target {
				if math.IsInf(b, 1) {
					return time.Duration(lo * float64(time.Second)) // beyond the last bound: at least it
				}
				frac := (target - below) / (cum[b] - below)
				return time.Duration((lo + (b-lo)*frac) * float64(time.Second))
			}
			lo, below = b, cum[b]
		}
		return time.Duration(lo * float64(time.Second))
	}
	return commitQuantiles{p50: q(0.5).Round(10 * time.Microsecond), p99: q(0.99).Round(10 * time.Microsecond), count: total}, nil
}
