package broker

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// cleanerCollector exposes the log cleaner: its totals, and per compacted
// partition the dirty ratio and the last pass.
type cleanerCollector struct {
	b                                            *Broker
	passes, failures, bytesIn, bytesOut, removed *prometheus.Desc
	dirtyRatio, dirtyBytes, lastClean, lastSecs  *prometheus.Desc
}

func newCleanerCollector(b *Broker) *cleanerCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("strom_"+name, help, labels, nil)
	}
	return &cleanerCollector{
		b:          b,
		passes:     d("log_cleaner_passes_total", "Log cleaner passes run (one log each)."),
		failures:   d("log_cleaner_failures_total", "Log cleaner passes that failed (other than a log changed under them)."),
		bytesIn:    d("log_cleaner_read_bytes_total", "Bytes of segments the log cleaner rewrote."),
		bytesOut:   d("log_cleaner_written_bytes_total", "Bytes of cleaned segments the log cleaner wrote."),
		removed:    d("log_cleaner_removed_records_total", "Records the log cleaner removed (superseded, keyless, expired tombstones)."),
		dirtyRatio: d("partition_cleaner_dirty_ratio", "Share of a compacted partition's cleanable bytes not cleaned yet.", "topic", "partition"),
		dirtyBytes: d("partition_cleaner_dirty_bytes", "Cleanable bytes of a compacted partition not cleaned yet.", "topic", "partition"),
		lastClean:  d("partition_cleaner_last_clean_timestamp_seconds", "When the last cleaner pass of a compacted partition ended; 0 if none.", "topic", "partition"),
		lastSecs:   d("partition_cleaner_last_clean_duration_seconds", "How long the last cleaner pass of a compacted partition took.", "topic", "partition"),
	}
}

func (c *cleanerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.passes, c.failures, c.bytesIn, c.bytesOut, c.removed, c.dirtyRatio, c.dirtyBytes, c.lastClean, c.lastSecs} {
		ch <- d
	}
}

func (c *cleanerCollector) Collect(ch chan<- prometheus.Metric) {
	m := c.b.cluster.CleanerMetrics()
	ch <- prometheus.MustNewConstMetric(c.passes, prometheus.CounterValue, float64(m.Passes))
	ch <- prometheus.MustNewConstMetric(c.failures, prometheus.CounterValue, float64(m.Failures))
	ch <- prometheus.MustNewConstMetric(c.bytesIn, prometheus.CounterValue, float64(m.BytesIn))
	ch <- prometheus.MustNewConstMetric(c.bytesOut, prometheus.CounterValue, float64(m.BytesOut))
	ch <- prometheus.MustNewConstMetric(c.removed, prometheus.CounterValue, float64(m.RecordsRemoved))
	for _, st := range c.b.cluster.CleanerStates() {
		idx := strconv.Itoa(int(st.Partition.Partition))
		ch <- prometheus.MustNewConstMetric(c.dirtyRatio, prometheus.GaugeValue, st.DirtyRatio, st.Topic, idx)
		ch <- prometheus.MustNewConstMetric(c.dirtyBytes, prometheus.GaugeValue, float64(st.DirtyBytes), st.Topic, idx)
		last := 0.0
		if !st.LastClean.IsZero() {
			last = float64(st.LastClean.UnixMilli()) / 1000
		}
		ch <- prometheus.MustNewConstMetric(c.lastClean, prometheus.GaugeValue, last, st.Topic, idx)
		ch <- prometheus.MustNewConstMetric(c.lastSecs, prometheus.GaugeValue, st.LastDuration.Seconds(), st.Topic, idx)
	}
}
