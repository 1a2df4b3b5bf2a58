package cluster

import (
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// CleanerStates returns the log cleaner's view of every compacted
// partition: dirty ratio, last pass, running.
func (c *Cluster) CleanerStates() []logdir.CleanerState { return c.dir.CleanerStates() }

// CleanerMetrics returns the log cleaner's totals.
func (c *Cluster) CleanerMetrics() logdir.CleanerMetrics { return c.dir.CleanerMetrics() }

// cleanBound is the directory cleaner's bound (logdir.CleanerOptions.Bound)
// for p's log. A replicated partition's segments are its raft log: the
// cleaner may only rewrite batches that are no longer raft entries, below
// the replica's anchor (replica.CleanBound, which moves the anchor up for
// it). A partition that is replicated but whose replica is not running
// (opening, stopping) is not cleaned (its log start). Any other log is
// cleaned up to its end (the cleaner's own rules keep the active segment
// and undecided transactions).
func (c *Cluster) cleanBound(p logdir.Partition, l *seglog.Log) int64 {
	t, ok := c.store.Topic(p.Topic)
	if ok {
		c.reps.mu.RLock()
		h := c.reps.groups[GroupID(t.ID, p.Partition)]
		c.reps.mu.RUnlock()
		if h != nil && h.r != nil {
			return h.r.CleanBound()
		}
		if replicatedPartition(&t, p.Partition) {
			return l.StartOffset()
		}
	}
	c.mu.RLock()
	part := c.parts[p]
	c.mu.RUnlock()
	if !ok || part == nil || part.Replicated() {
		return l.StartOffset()
	}
	return l.EndOffset()
}
