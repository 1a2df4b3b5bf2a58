package replica

import (
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// TestMetricsCountElectionsAndCommits: replicas sharing one Metrics count
// the elections and leaderships they went through, each committed
// proposal once with its commit latency, and a proposal refused by a
// replica that does not lead as lost.
func TestMetricsCountElectionsAndCommits(t *testing.T) {
	m := new(Metrics)
	var mu sync.Mutex
	var latencies []time.Duration
	m.CommitLatency = func(d time.Duration) {
		mu.Lock()
		latencies = append(latencies, d)
		mu.Unlock()
	}
	g := newGroupWith(t, 3, func(c *Config) { c.Metrics = m })
	g.elect(1)
	if m.Elections.Load() < 1 || m.Leaderships.Load() != 1 {
		t.Fatalf("after the first election: %d elections, %d leaderships", m.Elections.Load(), m.Leaderships.Load())
	}
	before := m.Committed.Load() // the new leader's own entry is raft's, not a proposal
	const n = 5
	for i := range n {
		start := time.Now()
		g.appendCommitted(1, batch(t, 7, int32(i), 1, "a"))
		g.waitFor("the commit counted", func() bool { return m.Committed.Load() == before+uint64(i)+1 })
		mu.Lock()
		d := latencies[len(latencies)-1]
		mu.Unlock()
		if d <= 0 || d > time.Since(start) {
			t.Fatalf("commit %d: latency %v, not within the %v the append and its commit took", i, d, time.Since(start))
		}
	}
	mu.Lock()
	if len(latencies) != n {
		t.Fatalf("%d latencies for %d commits", len(latencies), n)
	}
	mu.Unlock()
	if m.Lost.Load() != 0 {
		t.Fatalf("%d lost with every proposal committed", m.Lost.Load())
	}

	// The leadership moves: one more leadership and election.
	elections := m.Elections.Load()
	g.elect(2)
	if m.Leaderships.Load() != 2 || m.Elections.Load() <= elections {
		t.Fatalf("after the hand-over: %d elections (%d before), %d leaderships", m.Elections.Load(), elections, m.Leaderships.Load())
	}

	// A leader cut off from the others appends a proposal it never sees
	// committed: lost once it steps down (CheckQuorum) for the leader
	// the others elect.
	g.net.isolate(2, g.ids)
	if _, err := g.nodes[2].p.Append(batch(t, 7, n, 1, "a"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	g.waitFor("the cut-off leader's proposal counted lost", func() bool { return m.Lost.Load() == 1 })
	if got := m.Committed.Load(); got != before+n {
		t.Fatalf("%d committed, want %d", got, before+n)
	}
}
