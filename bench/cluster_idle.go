package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster-idle-rf3: what idle replicated partitions cost (issue 18: 10,000
// idle RF=3 partitions on 3 brokers under 5% of a core each). Every RF=3
// partition is a raft group with a replica on each of the three nodes; an
// idle group that still ticks and heartbeats costs CPU on every node.

const (
	// idleSettle is waited after every partition is led before the CPU
	// is measured: elections, the leaders' records in the metadata, and
	// the hand-over to each partition's preferred replica (10 s after a
	// leader takes over) are done by then.
	idleSettle = 15 * time.Second
	// idleCPULimit is the goal, as a fraction of one core.
	idleCPULimit = 0.05
)

func runClusterIdleRF3(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("Three strom serve nodes as one cluster on this machine (as cluster-3), then %d partitions of replication factor 3 (a raft group each, a replica on every node); once node 1's Metadata lists every partition with a leader, %v settle (a minute more above 1,000 partitions: the producer-state snapshot pass after creation), then each broker's CPU time (utime+stime of /proc/<pid>/stat) over %v, as a share of one core. No client connected during the window.", cfg.IdleReplicated, idleSettle, cfg.IdleWindow)
	nodes, err := startCluster3(ctx, e)
	if err != nil {
		return err
	}
	ts := topicSet{Prefix: "idle", Partitions: cfg.IdleReplicated, RF: 3}
	acl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].srv.Addr, nodes[1].srv.Addr, nodes[2].srv.Addr))
	if err != nil {
		return err
	}
	start := time.Now()
	err = ts.create(ctx, kadm.NewClient(acl), nil)
	acl.Close()
	if err != nil {
		return fmt.Errorf("create %d partitions: %w", ts.Partitions, err)
	}
	created := time.Since(start)
	mcl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].srv.Addr))
	if err != nil {
		return err
	}
	b := mcl.SeedBrokers()[0]
	// Each partition's leader is recorded through the metadata quorum,
	// one record at a time per node: 10,000 take minutes here.
	wait := max(5*visibleTimeout, time.Duration(ts.Partitions)*60*time.Millisecond)
	deadline := time.Now().Add(wait)
	for {
		resp, err := b.Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			mcl.Close()
			return err
		}
		if n := ts.served(resp.(*kmsg.MetadataResponse)); n >= ts.Partitions {
			break
		} else if time.Now().After(deadline) {
			mcl.Close()
			return fmt.Errorf("node 1 lists %d of %d partitions led after %v", n, ts.Partitions, wait)
		}
		time.Sleep(100 * time.Millisecond) // polling the cluster's state
	}
	mcl.Close()
	led := time.Since(start)
	settle := idleSettle
	if ts.Partitions > 1000 {
		// The producer-state snapshot pass (every minute) writes each
		// partition whose log moved (leader changes append control
		// batches): once after creation, not idle work.
		settle += time.Minute
	}
	e.Logf("%d RF=3 partitions created in %v, all led after %v; settling %v", ts.Partitions, created.Round(time.Millisecond), led.Round(time.Millisecond), settle)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(settle):
	}
	cpu0 := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		if cpu0[i], err = n.srv.CPU(); err != nil {
			return err
		}
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(cfg.IdleWindow):
	}
	wall := time.Since(t0)
	for i, n := range nodes {
		c, err := n.srv.CPU()
		if err != nil {
			return err
		}
		share := float64(c-cpu0[i]) / float64(wall)
		rss, _, _ := n.srv.RSS()
		e.Figure(Figure{Name: fmt.Sprintf("strom node %d idle CPU", n.id), Value: 100 * share, Unit: "% core",
			Versus: "limit 5% of a core", Ratio: share / idleCPULimit, Goal: AtMost,
			Note: fmt.Sprintf("%d idle RF=3 partitions on 3 nodes; %v CPU in %v; RSS %s", ts.Partitions, (c - cpu0[i]).Round(10*time.Millisecond), wall.Round(time.Millisecond), FormatSize(rss))})
	}
	for _, n := range nodes {
		if err := e.Stop(n.srv); err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	return nil
}
