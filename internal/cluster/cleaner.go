package cluster

import "github.com/stromhq/strom/internal/storage/logdir"

// CleanerStates returns the log cleaner's view of every compacted
// partition: dirty ratio, last pass, running.
func (c *Cluster) CleanerStates() []logdir.CleanerState { return c.dir.CleanerStates() }

// CleanerMetrics returns the log cleaner's totals.
func (c *Cluster) CleanerMetrics() logdir.CleanerMetrics { return c.dir.CleanerMetrics() }
