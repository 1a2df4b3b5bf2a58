package bench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster-leader-failover: issue 18's "kill -9 of a leader to the first
// successful acks=all produce on the new one". Two paced producers run
// through every kill: one with kgo.MetadataMinAge(250ms), the headline,
// and one with franz-go's default (5 s), which bounds how soon a stock
// client looks for the new leader. The figure counts only if every
// acknowledged record is read back at the end.

const (
	// clientLogEnv names the environment variable of the client log
	// (runClusterLeaderFailover).
	clientLogEnv       = "STROM_BENCH_CLIENT_LOG"
	failoverTopic      = "failover"
	failoverPartitions = 3
	failoverRate       = 2000 // records/s, the MetadataMinAge(250ms) producer
	failoverRateDflt   = 500  // records/s, the default-settings producer
	failoverBytes      = 1024
	failoverMinAge     = 250 * time.Millisecond
	// failoverSettle bounds the wait before a kill for every partition to
	// be back on its preferred replica (the hand-over comes after the
	// restarted node caught up); past it the run goes on with a full ISR.
	failoverSettle = 30 * time.Second
	// failoverGoal is the goal for the median.
	failoverGoal = 2 * time.Second
	// failoverAged: every second kill comes this long after the
	// partitions settled, not at once. The hand-over back to a restarted
	// node makes franz-go load metadata (its sink backs off after the
	// NOT_LEADER_OR_FOLLOWER that moved it), and it loads again at most
	// every MetadataMinAge (5 s by default) whatever any broker answers:
	// a kill within 5 s of a leadership change waits out that age, one
	// later does not. Leaders die at random times, so both are measured.
	failoverAged = 6 * time.Second
)

// firstAck waits for a producer's first acknowledgement, after a kill, of
// a record to partition 0 scheduled after it.
type firstAck struct {
	mu    sync.Mutex
	after time.Duration // since the producer's base; <0: not armed
	got   chan time.Duration
}

func (f *firstAck) arm(after time.Duration) <-chan time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.after, f.got = after, make(chan time.Duration, 1)
	return f.got
}

func (f *firstAck) see(r pacedRecord, err error) {
	if err != nil || r.Partition != 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.got != nil && r.Sent > f.after {
		f.got <- r.Acked - f.after
		f.got = nil
	}
}

func runClusterLeaderFailover(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("Three strom serve nodes as one cluster (as cluster-3); topic %q of %d partitions, replication factor 3. Two producers run through the whole scenario, each a kgo client seeded with the three nodes, acks=all, idempotent, ProducerLinger(0), ManualPartitioner, %d-byte values stamped with producer, sequence number and scheduled send time, round robin over the partitions, paced every %v: %d records/s with kgo.MetadataMinAge(%v) (the headline) and %d records/s with franz-go's default MetadataMinAge (5 s).",
		failoverTopic, failoverPartitions, failoverBytes, latencyTick, failoverRate, failoverMinAge, failoverRateDflt)
	e.Notef("%d times: wait until every partition has its three replicas in the ISR (and, within %v, is led by its preferred replica again), every second time wait %v more (franz-go loads metadata when the leadership moves back, and then at most every MetadataMinAge: a kill within 5 s of that waits out the age), SIGKILL the leader of partition 0 (from Metadata), and time from the kill to each producer's first acknowledgement of a record to partition 0 scheduled after the kill; restart the killed node on its data. At the end the producers stop, wait for their acknowledgements, and every partition is read back from its start: the failover figures stand only if every acknowledged record is there.",
		cfg.Failovers, failoverSettle, failoverAged)
	nodes, err := startCluster3(ctx, e)
	if err != nil {
		return err
	}
	if err := createReplicated(ctx, nodes, failoverTopic, failoverPartitions); err != nil {
		return err
	}
	mcl, err := kgo.NewClient(kgo.SeedBrokers(addrs(nodes)...), kgo.ClientID("strombench-admin"))
	if err != nil {
		return err
	}
	defer mcl.Close()
	if _, err := waitPartitions(ctx, mcl, failoverTopic, failoverPartitions, clusterWaitTimeout, fullISR); err != nil {
		return err
	}

	acked := newAckedSet()
	base := time.Now()
	type prodRun struct {
		name  string
		p     *pacedProducer
		cl    *kgo.Client
		first firstAck
		times []time.Duration
	}
	// clientLog, when STROM_BENCH_CLIENT_LOG names a file: the
	// default-age producer's kgo debug log, with a line at each kill (how
	// a slow failover was diagnosed: which metadata the client got, and
	// when it was allowed to ask again).
	var clientLog *os.File
	if name := os.Getenv(clientLogEnv); name != "" {
		if clientLog, err = os.Create(name); err != nil {
			return err
		}
		defer clientLog.Close()
	}
	runs := []*prodRun{
		{name: fmt.Sprintf("MetadataMinAge %v", failoverMinAge)},
		{name: "default MetadataMinAge"},
	}
	for i, pr := range runs {
		rate, extra := failoverRate, []kgo.Opt{kgo.MetadataMinAge(failoverMinAge)}
		if i == 1 {
			rate, extra = failoverRateDflt, nil
			if clientLog != nil {
				extra = append(extra, kgo.WithLogger(kgo.BasicLogger(clientLog, kgo.LogLevelDebug, func() string { return time.Now().Format("15:04:05.000000 ") })))
			}
		}
		if pr.cl, err = kgo.NewClient(pacedClientOpts(addrs(nodes), failoverTopic, extra...)...); err != nil {
			return err
		}
		defer pr.cl.Close()
		pr.first.after = -1
		pr.p = &pacedProducer{Tag: byte(i + 1), Rate: rate, Bytes: failoverBytes, Partitions: failoverPartitions, Base: base,
			OnAck: func(r pacedRecord, err error) { acked.add(r, err); pr.first.see(r, err) }}
	}
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var wg sync.WaitGroup
	sent := make([]int64, len(runs))
	for i, pr := range runs {
		wg.Go(func() { sent[i] = pr.p.run(pctx, pr.cl, 30*time.Second) })
	}
	stop := func() { stopProducing(); wg.Wait() }
	defer stop()

	var agedRuns []bool // per run: the kill came failoverAged after the settle
	for run := 0; run < cfg.Failovers; run++ {
		if _, err := waitPartitions(ctx, mcl, failoverTopic, failoverPartitions, failoverSettle, settled); err != nil {
			e.Logf("run %d: not back on the preferred replicas (%v); going on with a full ISR", run+1, err)
		}
		ps, err := waitPartitions(ctx, mcl, failoverTopic, failoverPartitions, clusterWaitTimeout, fullISR)
		if err != nil {
			return fmt.Errorf("run %d: %w", run+1, err)
		}
		aged := run%2 == 1
		if aged {
			time.Sleep(failoverAged) // the client's metadata age, not the cluster's state
		}
		victim := nodes[ps[0].Leader-1]
		var waits []<-chan time.Duration
		t0 := time.Since(base)
		for _, pr := range runs {
			waits = append(waits, pr.first.arm(t0))
		}
		if clientLog != nil {
			fmt.Fprintf(clientLog, "%s KILL of node %d, failover %d\n", time.Now().Format("15:04:05.000000"), victim.id, run+1)
		}
		killNode(e, victim)
		for i, pr := range runs {
			select {
			case d := <-waits[i]:
				pr.times = append(pr.times, d)
			case <-time.After(clusterWaitTimeout):
				return fmt.Errorf("run %d: %s: no acknowledgement on partition 0 within %v of killing node %d", run+1, pr.name, clusterWaitTimeout, victim.id)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		when := "at once after the leaders settled"
		if aged {
			when = fmt.Sprintf("%v after the leaders settled", failoverAged)
		}
		agedRuns = append(agedRuns, aged)
		e.Logf("failover %d: node %d (leader of partition 0) killed %s; first acks=all on partition 0 after %v (%s), %v (%s)", run+1, victim.id, when,
			runs[0].times[run].Round(time.Millisecond), runs[0].name, runs[1].times[run].Round(time.Millisecond), runs[1].name)
		if err := restartNode(ctx, e, victim); err != nil {
			return err
		}
	}
	stop()
	nAcked, nFailed, firstErr := acked.total()
	lost, read, err := acked.verify(ctx, addrs(nodes), failoverTopic)
	if err != nil {
		return fmt.Errorf("read-back: %w", err)
	}
	check := fmt.Sprintf("%d records sent, %d acknowledged, %d failed", sent[0]+sent[1], nAcked, nFailed)
	if firstErr != nil {
		check += fmt.Sprintf(" (first: %v)", firstErr)
	}
	check += fmt.Sprintf("; read back %d distinct, %d acknowledged missing", read, lost)
	e.Logf("%s", check)
	if lost > 0 {
		return fmt.Errorf("%d acknowledged records lost across the failovers: %s", lost, check)
	}
	for i, pr := range runs {
		f := sortLatencies(slices.Clone(pr.times)) // pr.times stays in run order for the split below
		fig := Figure{Name: "strom leader failover, " + pr.name, Value: ms(f.q(0.5)), Unit: "ms",
			Note: fmt.Sprintf("median of %d: kill -9 of partition 0's leader to the first acks=all acknowledgement of a record to partition 0 sent after it; min %.0f, max %.0f ms; %s", len(f), ms(f[0]), ms(f.max()), check)}
		if i == 0 {
			fig.Versus, fig.Ratio, fig.Goal = "goal 2 s", float64(f.q(0.5))/float64(failoverGoal), AtMost
		}
		e.Figure(fig)
		e.Figure(Figure{Name: "strom leader failover max, " + pr.name, Value: ms(f.max()), Unit: "ms", Note: fmt.Sprintf("of %d", len(f))})
		if i == 1 {
			var soon, later []time.Duration
			for run, d := range pr.times {
				if agedRuns[run] {
					later = append(later, d)
				} else {
					soon = append(soon, d)
				}
			}
			for _, part := range []struct {
				name  string
				times []time.Duration
			}{{"kill at once after a leadership change", soon}, {fmt.Sprintf("kill %v after it", failoverAged), later}} {
				if len(part.times) == 0 {
					continue
				}
				f := sortLatencies(part.times)
				e.Figure(Figure{Name: "strom leader failover, " + pr.name + ", " + part.name, Value: ms(f.q(0.5)), Unit: "ms",
					Note: fmt.Sprintf("median of %d; min %.0f, max %.0f ms", len(f), ms(f[0]), ms(f.max()))})
			}
		}
	}
	for _, n := range nodes {
		if err := e.Stop(n.srv); err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	return nil
}
