package replica

import (
	"testing"
	"time"
)

// tickN gives each of ids n ticks, each taken before the next is sent.
func (g *group) tickN(n int, ids ...uint64) {
	g.t.Helper()
	for range n {
		for _, id := range ids {
			select {
			case g.nodes[id].tick <- time.Now():
			case <-time.After(5 * time.Second):
				g.t.Fatalf("node %d takes no tick", id)
			}
		}
		// Let the ticks and what they trigger run.
		deadline := time.Now().Add(5 * time.Second)
		for _, id := range ids {
			for len(g.nodes[id].tick) > 0 && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// A leader whose node the liveness view reports down is replaced at
// once by the live voter of the lowest id, well before any follower's
// election timeout (ElectionTicks) runs out; the others do not campaign.
func TestDeadLeaderReplacedBeforeTheElectionTimeout(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(3)
	g.net.isolate(3, g.ids) // killed: nothing from it, nothing to it
	down := func(raftID uint64) bool { return raftID == 3 }
	g.tickN(leaderSilentTicks+1, 1, 2)
	for _, id := range []uint64{1, 2} {
		g.nodes[id].r.NodesDown(down)
	}
	// Fewer ticks than the election timeout's least (ElectionTicks, 10).
	const within = 5
	for range within {
		if g.nodes[1].p.LeaderEpoch() >= 0 {
			break
		}
		g.tickN(1, 1, 2)
	}
	deadline := time.Now().Add(time.Second)
	for g.nodes[1].p.LeaderEpoch() < 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // no tick: only the election's messages
	}
	if g.nodes[1].p.LeaderEpoch() < 0 {
		t.Fatalf("node 1 does not lead %d ticks after the leader's node went down (%d since it last heard the leader; election timeout 10 ticks)", within, within+leaderSilentTicks+1)
	}
	if g.nodes[2].p.LeaderEpoch() >= 0 {
		t.Fatal("node 2 leads too")
	}
}
