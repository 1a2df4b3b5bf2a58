package bench

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// cluster-produce-rf3: issue 18's "produce 1 KiB, acks=all, RF=3 on 3
// local brokers: MB/s as a ratio of a single node in the same run (goal
// >= 0.5x; the three brokers share 2 cores here, so also report CPU per
// MB)". produce-1k-acksall's workload, rounds alternated between one
// strom serve (RF=1) and three nodes as one cluster (RF=3, every batch
// committed through the partition's raft group: fsynced on a majority).

// runClusterProduceRF3 measures both, Rounds times each, and reports the
// medians, the ratio and each side's broker CPU per MB (the cluster's the
// sum of its three nodes).
func runClusterProduceRF3(ctx context.Context, e *Env) error {
	cfg := e.Config()
	spec := produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.AllISRAcks(), Producers: 16, DefaultLinger: true}
	e.Notef("Workload: %s. Single node: one strom serve, the topic of replication factor 1 (an acks=all batch is answered once fsynced). Cluster: three strom serve nodes on this machine (each broker and controller), the topic of replication factor 3 created through them (each partition a raft group; an acks=all batch is answered once committed: fsynced on the leader and a follower); the producers seeded with all three. Rounds alternate, a fresh broker or cluster per round, %v of warm-up then %v timed; the median of %d rounds is reported. CPU: utime+stime of the broker processes over the timed part (the cluster's three summed), per MB of record values.",
		spec.describe(), cfg.Warmup, cfg.Duration, cfg.Rounds)
	var single, cluster []throughput
	var singleCPU, clusterCPU []time.Duration
	for round := range cfg.Rounds {
		s, err := e.Start(ctx, Strom)
		if err != nil {
			return err
		}
		t, err := produceTimed(ctx, s, fmt.Sprintf("rf1-%d", round), spec, cfg.Warmup, cfg.Duration)
		if stopErr := e.Stop(s); err == nil {
			err = stopErr
		}
		if err != nil {
			return fmt.Errorf("single node, round %d: %w", round+1, err)
		}
		single, singleCPU = append(single, t), append(singleCPU, t.Broker)
		e.Logf("round %d single node: %.1f MB/s, broker CPU %v", round+1, t.MBps(), t.Broker.Round(10*time.Millisecond))

		t, cpu, err := produceRF3Once(ctx, e, spec, fmt.Sprintf("rf3-%d", round))
		if err != nil {
			return fmt.Errorf("cluster, round %d: %w", round+1, err)
		}
		cluster, clusterCPU = append(cluster, t), append(clusterCPU, cpu)
		e.Logf("round %d RF=3 cluster: %.1f MB/s, brokers' CPU %v", round+1, t.MBps(), cpu.Round(10*time.Millisecond))
	}
	sm, sall := median(single, "MB/s")
	cm, call := median(cluster, "MB/s")
	e.Figure(Figure{Name: "strom RF=3 acks=all", Value: cm.MBps(), Unit: "MB/s", Versus: "strom single node", Ratio: cm.MBps() / sm.MBps(), Goal: AtLeast, Target: 0.5,
		Note: "rounds " + call})
	e.Figure(Figure{Name: "strom single node acks=all", Value: sm.MBps(), Unit: "MB/s", Note: "rounds " + sall})
	e.Figure(Figure{Name: "strom RF=3 brokers CPU per MB", Value: cpuPerMB(clusterCPU, cluster), Unit: "ms", Versus: "single node",
		Ratio: cpuPerMB(clusterCPU, cluster) / cpuPerMB(singleCPU, single), Note: "the three nodes' CPU summed, median of the rounds' ratios of CPU to MB"})
	e.Figure(Figure{Name: "strom single node broker CPU per MB", Value: cpuPerMB(singleCPU, single), Unit: "ms"})
	return nil
}

// produceRF3Once starts a three-node cluster, creates an RF=3 topic,
// produces spec to it for the warm-up and then the timed part, and
// returns the timed throughput and the CPU the three nodes used in it.
func produceRF3Once(ctx context.Context, e *Env, spec produceSpec, topic string) (throughput, time.Duration, error) {
	nodes, err := startCluster3(ctx, e)
	if err != nil {
		return throughput{}, 0, err
	}
	defer func() {
		for _, n := range nodes {
			e.Stop(n.srv)
		}
	}()
	if err := createReplicated(ctx, nodes, topic, spec.Partitions); err != nil {
		return throughput{}, 0, err
	}
	seeds := kgo.SeedBrokers(addrs(nodes)...)
	ps := make([]*producer, spec.Producers)
	for i := range ps {
		p, err := newProducer(spec, nodes[0].srv.Addr, topic, i, seeds)
		if err != nil {
			return throughput{}, 0, err
		}
		defer p.cl.Close()
		ps[i] = p
	}
	cfg := e.Config()
	if _, err := timedRun(ctx, nodes[0].srv, ps, 0, cfg.Warmup); err != nil {
		return throughput{}, 0, fmt.Errorf("warm-up: %w", err)
	}
	for _, p := range ps {
		p.reset()
	}
	before := make([]time.Duration, len(nodes))
	for i, n := range nodes {
		if before[i], err = n.srv.CPU(); err != nil {
			return throughput{}, 0, err
		}
	}
	t, err := timedRun(ctx, nodes[0].srv, ps, 0, cfg.Duration)
	if err != nil {
		return throughput{}, 0, err
	}
	var cpu time.Duration
	var per []string
	for i, n := range nodes {
		after, err := n.srv.CPU()
		if err != nil {
			return throughput{}, 0, err
		}
		cpu += after - before[i]
		per = append(per, fmt.Sprintf("node %d %v", n.id, (after-before[i]).Round(10*time.Millisecond)))
	}
	e.Logf("cluster CPU: %s", strings.Join(per, ", "))
	return t, cpu, nil
}

// cpuPerMB is the median over the rounds of CPU per MB of record values,
// in ms.
func cpuPerMB(cpu []time.Duration, ts []throughput) float64 {
	vs := make([]float64, len(ts))
	for i, t := range ts {
		vs[i] = float64(cpu[i].Microseconds()) / 1e3 / (float64(t.Bytes) / MB)
	}
	return medianFloat(vs)
}
