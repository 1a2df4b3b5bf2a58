package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster-follower-catchup: issue 18's "a follower 10 GiB behind catches
// up at what MB/s, with what effect on producers' p99". One node is killed,
// -catchup-size is written with acks=all to the two others, and the node
// is started again while a paced acks=all producer measures produce
// latency before the restart and during the catch-up, in the same run.

const (
	catchupTopic      = "catchup"
	catchupPartitions = 8
	catchupRate       = 1000 // records/s of the paced producer
	catchupBytes      = 1024
	// catchupMinDuring is the least of the catch-up window the latencies
	// are taken over, should the node catch up sooner.
	catchupMinDuring = time.Second
	// catchupLeaveISR bounds the wait for the leaders to drop the killed
	// node from their ISRs: replica.lag.time.max.ms (30 s) and room.
	catchupLeaveISR = 90 * time.Second
	// catchupDefaultLag is the broker's default replica.lag.time.max.ms.
	catchupDefaultLag = 30 * time.Second
)

func runClusterFollowerCatchup(ctx context.Context, e *Env) error {
	cfg := e.Config()
	before := max(cfg.Duration/2, 500*time.Millisecond)
	var extra []string
	lag, lagNote := catchupDefaultLag, "the broker's default"
	if cfg.CatchupLag > 0 {
		lag, lagNote = cfg.CatchupLag, "set with --set replica.lag.time.max.ms on every node"
		extra = []string{"--set", fmt.Sprintf("replica.lag.time.max.ms=%d", cfg.CatchupLag.Milliseconds())}
	}
	// The least time node 3 stays down: longer than the lag time.
	catchupDown := lag + lag/6 + time.Second
	e.Notef("Three strom serve nodes as one cluster (as cluster-3); topic %q of %d partitions, replication factor 3. Node 3 is killed (SIGKILL) once every partition has a full ISR; once the two others lead every partition, %s of %d-byte records is written with acks=all by one kgo producer seeded with them (idempotent, ProducerLinger(%v), the default partitioner). Then two paced producers start, each %d records/s of %d bytes, acks=all, idempotent, ProducerLinger(0), round robin over the partitions, every %v the records due, each stamped with its scheduled send time; one with franz-go's default MetadataMinAge (5 s), one with kgo.MetadataMinAge(250ms); once every partition's ISR has dropped node 3, at least %v after its kill (a leader keeps a voter in its ISR for replica.lag.time.max.ms, here %v (%s), after it was last caught up, so a node back sooner is in every ISR at once, caught up or not) and at least 2x%v after the paced producers started (a warm-up, then the window before), node 3 is started again on its data, and Metadata is polled every %v until every partition lists node 3 in its ISR.",
		catchupTopic, catchupPartitions, FormatSize(cfg.CatchupSize), catchupBytes, produceLinger, catchupRate, catchupBytes, latencyTick, catchupDown, lag, lagNote, before, replPoll)
	e.Notef("Catch-up MB/s: the record bytes written while node 3 was down (the fill and the paced records before its restart) over the time from its exec to its last partition in the ISR (its start-up is inside). Produce latency: scheduled send to acknowledgement, p50/p99 of the paced records scheduled in the %v before the restart, and of those scheduled from the restart to the catch-up (at least %v). Before the kill, every partition is given %v to move to its preferred replica; during the catch-up, each partition node 3 prefers moves back to it once caught up (a leader change the producers see). CPU: node 3's utime+stime from exec to caught up, as a share of one core (3 brokers and the harness share this machine's cores).", before, catchupMinDuring, failoverSettle)
	nodes, err := startCluster3(ctx, e, extra...)
	if err != nil {
		return err
	}
	if err := createReplicated(ctx, nodes, catchupTopic, catchupPartitions); err != nil {
		return err
	}
	mcl, err := kgo.NewClient(kgo.SeedBrokers(addrs(nodes)...), kgo.ClientID("strombench-admin"))
	if err != nil {
		return err
	}
	defer mcl.Close()
	if _, err := waitPartitions(ctx, mcl, catchupTopic, catchupPartitions, clusterWaitTimeout, fullISR); err != nil {
		return err
	}
	// Leaders first elected move to their preferred replicas a while
	// later: done before the kill, so that no hand-over among the two
	// others falls in the window before the restart.
	if _, err := waitPartitions(ctx, mcl, catchupTopic, catchupPartitions, failoverSettle, settled); err != nil {
		e.Logf("not every partition on its preferred replica (%v); going on", err)
	}
	victim := nodes[2]
	survivors := addrs(nodes[:2])
	killNode(e, victim)
	killed := time.Now()
	down := int32(victim.id)
	if _, err := waitPartitions(ctx, mcl, catchupTopic, catchupPartitions, clusterWaitTimeout, func(p partState) bool { return p.Leader >= 0 && p.Leader != down }); err != nil {
		return fmt.Errorf("after killing node %d: %w", victim.id, err)
	}

	spec := produceSpec{RecordBytes: catchupBytes, Partitions: catchupPartitions, Acks: kgo.AllISRAcks(), Producers: 1, Payload: RandomPayload}
	fp, err := newProducer(spec, survivors[0], catchupTopic, 0, kgo.SeedBrokers(survivors...))
	if err != nil {
		return err
	}
	n := cfg.CatchupSize / catchupBytes
	fillStart := time.Now()
	err = fp.run(ctx, time.Time{}, n)
	fp.cl.Close()
	if err != nil {
		return fmt.Errorf("fill with node %d down: %w", victim.id, err)
	}
	filled := fp.bytes.Load()
	fillTook := time.Since(fillStart)
	e.Logf("node %d down; %s written with acks=all in %v (%.1f MB/s)", victim.id, FormatSize(filled), fillTook.Round(time.Millisecond), float64(filled)/MB/fillTook.Seconds())

	// The paced producers, and every acknowledgement's latency: tag 1
	// with franz-go's default MetadataMinAge (5 s), tag 2 with 250 ms.
	type sample struct{ sent, lat time.Duration }
	var (
		mu      sync.Mutex
		samples = map[byte][]sample{}
		fails   int
		first   error
	)
	base := time.Now()
	pctx, stopProducing := context.WithCancel(ctx)
	defer stopProducing()
	var wg sync.WaitGroup
	stop := func() { stopProducing(); wg.Wait() }
	defer stop()
	// The default-age producer's log, shown when it stalls.
	plog := &clientLog{base: base}
	for tag, extra := range map[byte][]kgo.Opt{1: {kgo.WithLogger(plog)}, 2: {kgo.MetadataMinAge(failoverMinAge)}} {
		pcl, err := kgo.NewClient(pacedClientOpts(survivors, catchupTopic, extra...)...)
		if err != nil {
			return err
		}
		defer pcl.Close()
		pp := &pacedProducer{Tag: tag, Rate: catchupRate, Bytes: catchupBytes, Partitions: catchupPartitions, Base: base, OnAck: func(r pacedRecord, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				fails++
				first = cmp.Or(first, err)
				return
			}
			samples[r.Tag] = append(samples[r.Tag], sample{r.Sent, r.Acked - r.Sent})
		}}
		wg.Go(func() { pp.run(pctx, pcl, 30*time.Second) })
	}
	// A leader lists a voter in its ISR while its match index reached the
	// leader's last index within replica.lag.time.max.ms (30 s by
	// default): a node restarted sooner than that after its kill is back
	// in every ISR as soon as it is live again, caught up or not. So node
	// 3 stays down longer than that, and out of every ISR.
	if _, err := waitPartitions(ctx, mcl, catchupTopic, catchupPartitions, catchupLeaveISR, func(p partState) bool { return p.Leader >= 0 && !slices.Contains(p.ISR, down) }); err != nil {
		return fmt.Errorf("node %d still in an ISR: %w", victim.id, err)
	}
	e.Logf("node %d out of every ISR %v after its kill", victim.id, time.Since(killed).Round(time.Millisecond))
	if rest := max(2*before-time.Since(base), catchupDown-time.Since(killed)); rest > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rest): // a warm-up, then the window before
		}
	}

	// Restart and catch-up.
	restartAt := time.Since(base)
	behind := filled + 2*int64(restartAt)*catchupRate/int64(time.Second)*catchupBytes
	cpu0 := make([]time.Duration, 2)
	for i, s := range nodes[:2] {
		if cpu0[i], err = s.srv.CPU(); err != nil {
			return err
		}
	}
	if err := restartNode(ctx, e, victim); err != nil {
		return err
	}
	wait := 5*time.Minute + time.Duration(cfg.CatchupSize/MB)*time.Second
	if _, err := waitPartitions(ctx, mcl, catchupTopic, catchupPartitions, wait, inISR(down)); err != nil {
		return fmt.Errorf("node %d catching up: %w", victim.id, err)
	}
	caughtAt := time.Since(base)
	cpu, err := victim.srv.CPU()
	if err != nil {
		return err
	}
	var others []string
	for i, s := range nodes[:2] {
		c, err := s.srv.CPU()
		if err != nil {
			return err
		}
		others = append(others, fmt.Sprintf("node %d %.0f%%", s.id, 100*float64(c-cpu0[i])/float64(caughtAt-restartAt)))
	}
	took := caughtAt - restartAt
	if rest := restartAt + catchupMinDuring - time.Since(base); rest > 0 {
		// The least latency window, should the catch-up be that short.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(rest):
		}
	}
	duringEnd := max(caughtAt, restartAt+catchupMinDuring)
	// The records scheduled up to the window's end are acknowledged, or
	// failed, within the flush.
	stop()

	mu.Lock()
	nFails, firstErr := fails, first
	failNote := ""
	if nFails > 0 {
		failNote = fmt.Sprintf("; %d paced records failed (first: %v)", nFails, firstErr)
	}
	type window struct{ pre, during latencies }
	var ws [3]window
	for tag := byte(1); tag <= 2; tag++ {
		var pre, during []time.Duration
		for _, s := range samples[tag] {
			switch {
			case s.sent >= restartAt-before && s.sent < restartAt:
				pre = append(pre, s.lat)
			case s.sent >= restartAt && s.sent < duringEnd:
				during = append(during, s.lat)
			}
		}
		if len(pre) == 0 || len(during) == 0 {
			mu.Unlock()
			return fmt.Errorf("paced producer %d: %d acknowledged before the restart, %d during the catch-up (%d failed: %v)", tag, len(pre), len(during), nFails, firstErr)
		}
		ws[tag] = window{sortLatencies(pre), sortLatencies(during)}
	}
	mu.Unlock()
	e.Logf("node %d caught up %s in %v; default MetadataMinAge: produce before %s, during %s; MetadataMinAge %v: before %s, during %s%s", victim.id, FormatSize(behind), took.Round(time.Millisecond),
		ws[1].pre.summary(), ws[1].during.summary(), failoverMinAge, ws[2].pre.summary(), ws[2].during.summary(), failNote)
	if ws[1].during.max() > stallAt {
		lines := plog.between(restartAt, duringEnd+6*time.Second)
		e.Logf("the default-age producer's log from the restart (%.3fs) to 6 s after the catch-up (%d lines):\n%s", restartAt.Seconds(), len(lines), strings.Join(lines, "\n"))
	}
	e.Figure(Figure{Name: "strom follower catch-up", Value: float64(behind) / MB / took.Seconds(), Unit: "MB/s",
		Note: fmt.Sprintf("%s behind (-catchup-size %s plus the paced records), exec to every partition's ISR in %v; fill with the node down at %.1f MB/s", FormatSize(behind), FormatSize(cfg.CatchupSize), took.Round(time.Millisecond), float64(filled)/MB/fillTook.Seconds())})
	for tag, name := range map[byte]string{1: "", 2: fmt.Sprintf(", MetadataMinAge %v", failoverMinAge)} {
		w := ws[tag]
		e.Figure(Figure{Name: "strom produce p99 during catch-up" + name, Value: ms(w.during.q(0.99)), Unit: "ms",
			Versus: fmt.Sprintf("p99 before the restart %.2f ms", ms(w.pre.q(0.99))), Ratio: float64(w.during.q(0.99)) / float64(w.pre.q(0.99)),
			Note: fmt.Sprintf("%d records/s acks=all; during: %s; before: %s%s", catchupRate, w.during.summary(), w.pre.summary(), failNote)})
		e.Figure(Figure{Name: "strom produce p50 during catch-up" + name, Value: ms(w.during.q(0.5)), Unit: "ms",
			Versus: fmt.Sprintf("p50 before the restart %.2f ms", ms(w.pre.q(0.5))), Ratio: float64(w.during.q(0.5)) / float64(w.pre.q(0.5))})
	}
	e.Figure(Figure{Name: "strom catching-up node CPU", Value: 100 * float64(cpu) / float64(took), Unit: "% core",
		Note: fmt.Sprintf("node %d: %v CPU from exec to caught up in %v; the leaders meanwhile: %s", victim.id, cpu.Round(10*time.Millisecond), took.Round(time.Millisecond), strings.Join(others, ", "))})
	for _, n := range nodes {
		if err := e.Stop(n.srv); err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	return nil
}
