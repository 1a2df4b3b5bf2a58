package replica

import (
	"sync/atomic"
	"time"
)

// Metrics counts what the partition replicas of one node do, for the
// broker's /metrics page (issue 18: raft elections, proposals, commit
// latency). One Metrics is shared by every replica of a node
// (Config.Metrics); the replicas only bump atomics and call
// CommitLatency, so the package knows nothing of Prometheus.
type Metrics struct {
	// Elections: a replica here became a candidate (a real election,
	// after PreVote let it, or a fast election or hand-over).
	Elections atomic.Uint64
	// Leaderships: a replica here became leader.
	Leaderships atomic.Uint64
	// Committed: proposals of leaders here (client batches, transaction
	// markers, ...) that their leader saw committed.
	Committed atomic.Uint64
	// Lost: proposals refused (no leader epoch yet, raft dropped them) or
	// appended but not seen committed before their leader stepped down;
	// such an entry may still commit under the next leader, but its
	// client was told to retry.
	Lost atomic.Uint64
	// CommitLatency, when set, is given the time from each committed
	// proposal's Propose to the leader's learning of its commit: one
	// fsync on a majority and the round trips. Called on the replica's
	// goroutine: it must not block.
	CommitLatency func(time.Duration)
}

// inflight is a leader's appended proposal not yet seen committed.
type inflight struct {
	idx uint64
	at  time.Time // when Propose was called
}

// noteAppended queues an appended proposal for its commit latency.
func (r *Replica) noteAppended(idx uint64, at time.Time) {
	if r.cfg.Metrics != nil {
		r.uncommitted = append(r.uncommitted, inflight{idx, at})
	}
}

// noteCommitted counts the queued proposals at or below the commit index.
func (r *Replica) noteCommitted() {
	m := r.cfg.Metrics
	if m == nil || len(r.uncommitted) == 0 || r.uncommitted[0].idx > r.commit {
		return
	}
	now := time.Now()
	n := 0
	for n < len(r.uncommitted) && r.uncommitted[n].idx <= r.commit {
		if m.CommitLatency != nil {
			m.CommitLatency(now.Sub(r.uncommitted[n].at))
		}
		n++
	}
	m.Committed.Add(uint64(n))
	r.uncommitted = append(r.uncommitted[:0], r.uncommitted[n:]...)
}

// noteLost counts n proposals lost.
func (r *Replica) noteLost(n int) {
	if r.cfg.Metrics != nil && n > 0 {
		r.cfg.Metrics.Lost.Add(uint64(n))
	}
}

// noteSteppedDown counts the proposals still waiting for their commit as
// lost: this replica no longer leads.
func (r *Replica) noteSteppedDown() {
	r.noteLost(len(r.uncommitted))
	r.uncommitted = r.uncommitted[:0]
}
