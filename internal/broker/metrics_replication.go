package broker

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stromhq/strom/internal/replica"
)

// replicationCollector exposes a cluster node's partition replicas: raft
// elections, leaderships, proposals and their commit latency (counted by
// the replicas in a shared replica.Metrics), and the partitions this node
// leads, under-replicated and under min.insync.replicas (Kafka's
// LeaderCount, UnderReplicatedPartitions, UnderMinIsrPartitionCount).
type replicationCollector struct {
	b       *Broker
	m       *replica.Metrics
	latency prometheus.Histogram

	elections, leaderships, proposals     *prometheus.Desc
	leaders, underReplicated, underMinISR *prometheus.Desc
}

func newReplicationCollector(b *Broker, m *replica.Metrics) *replicationCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("strom_"+name, help, labels, nil)
	}
	c := &replicationCollector{
		b: b, m: m,
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strom_partition_commit_seconds",
			Help:    "On the leader of a replicated partition: time from proposing an entry (a produced batch, a transaction marker) to learning it committed (fsynced on a majority).",
			Buckets: prometheus.ExponentialBuckets(0.00025, 2, 16), // 0.25 ms .. 8 s
		}),
		elections:       d("partition_elections_total", "Raft elections started by this node's partition replicas (a replica became a candidate)."),
		leaderships:     d("partition_leaderships_total", "Times a partition replica on this node became its group's leader."),
		proposals:       d("partition_proposals_total", "Entries proposed by partition leaders on this node, by result (committed; lost: refused, or not committed before the leader stepped down).", "result"),
		leaders:         d("partition_leaders", "Replicated partitions this node leads."),
		underReplicated: d("partitions_under_replicated", "Replicated partitions this node leads with fewer replicas in sync than replicas."),
		underMinISR:     d("partitions_under_min_isr", "Replicated partitions this node leads with fewer replicas in sync than min.insync.replicas (acks=all writes refused)."),
	}
	m.CommitLatency = func(d time.Duration) { c.latency.Observe(d.Seconds()) }
	return c
}

func (c *replicationCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.elections, c.leaderships, c.proposals, c.leaders, c.underReplicated, c.underMinISR} {
		ch <- d
	}
	c.latency.Describe(ch)
}

func (c *replicationCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.elections, prometheus.CounterValue, float64(c.m.Elections.Load()))
	ch <- prometheus.MustNewConstMetric(c.leaderships, prometheus.CounterValue, float64(c.m.Leaderships.Load()))
	ch <- prometheus.MustNewConstMetric(c.proposals, prometheus.CounterValue, float64(c.m.Committed.Load()), "committed")
	ch <- prometheus.MustNewConstMetric(c.proposals, prometheus.CounterValue, float64(c.m.Lost.Load()), "lost")
	lc := c.b.cluster.LeaderCounts()
	ch <- prometheus.MustNewConstMetric(c.leaders, prometheus.GaugeValue, float64(lc.Leaders))
	ch <- prometheus.MustNewConstMetric(c.underReplicated, prometheus.GaugeValue, float64(lc.UnderReplicated))
	ch <- prometheus.MustNewConstMetric(c.underMinISR, prometheus.GaugeValue, float64(lc.UnderMinISR))
	c.latency.Collect(ch)
}
