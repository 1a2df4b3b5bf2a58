package replica

import (
	"fmt"
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
		// Each replica has run its tick's Ready once a request queued
		// after it is done; twice, for the messages it sent meanwhile.
		for range 2 {
			for _, id := range ids {
				g.nodes[id].r.do(func() {})
			}
		}
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
	// Fewer ticks than the election timeout's least (ElectionTicks, 10),
	// with the view's passes (every 250 ms, 2.5 ticks) every 2 ticks: the
	// group may have quiesced after the election, and a quiesced
	// follower probes the leader at one pass and decides at the next.
	const within = 5
	for k := range within {
		if k%2 == 0 {
			for _, id := range []uint64{1, 2} {
				g.nodes[id].r.NodesDown(down)
			}
		}
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

// A quiesced group's live leader that the liveness view wrongly reports
// down (its connection to this node dropped and is being redialled)
// keeps leading: a quiesced follower hears nothing from a live leader
// either, so it wakes the leader and decides only once the leader stayed
// silent for leaderSilentTicks awake ticks. It used to force an election
// (MsgTimeoutNow, past the leader's lease) at the first pass. Also when
// the followers woke for another reason first (NodesDown's own wake can
// come first; the leader is still quiesced then).
func TestQuiescedLiveLeaderNotDeposedByAWrongView(t *testing.T) {
	for _, wokeFirst := range []bool{false, true} {
		t.Run(fmt.Sprintf("woke first %v", wokeFirst), func(t *testing.T) {
			g := newGroup(t, 3)
			g.elect(3)
			g.appendCommitted(3, batch(t, 7, 0, 1, "a"))
			g.waitFor("the group quiesced", g.allQuiesced)
			epoch := g.nodes[3].p.LeaderEpoch()
			if wokeFirst {
				for _, id := range []uint64{1, 2} {
					g.nodes[id].r.Unquiesce()
				}
				deadline := time.Now().Add(5 * time.Second)
				for g.nodes[1].r.Status().Quiesced || g.nodes[2].r.Status().Quiesced {
					if time.Now().After(deadline) {
						t.Fatal("the followers do not wake")
					}
					time.Sleep(time.Millisecond)
				}
				g.tickN(3, 1, 2) // awake, nothing from the quiesced leader
			}
			down := func(raftID uint64) bool { return raftID == 3 } // wrong: 3 is alive
			// The liveness view's passes, 2.5 ticks apart.
			for pass := range 4 {
				for _, id := range []uint64{1, 2} {
					g.nodes[id].r.NodesDown(down)
				}
				g.tickN(2+pass%2, 1, 2, 3)
			}
			deadline := time.Now().Add(time.Second)
			for time.Now().Before(deadline) && g.nodes[3].p.LeaderEpoch() == epoch {
				time.Sleep(time.Millisecond) // let an election's messages run, if any
			}
			if got := g.nodes[3].p.LeaderEpoch(); got != epoch {
				t.Fatalf("the live leader's epoch went from %d to %d: deposed on a wrong view", epoch, got)
			}
			for _, id := range []uint64{1, 2} {
				if g.nodes[id].p.LeaderEpoch() >= 0 {
					t.Fatalf("replica %d leads", id)
				}
			}
		})
	}
}

// A quiesced group's leader whose node died is still replaced before any
// election timeout: the first pass of the view wakes the followers (and
// probes the leader, which does not answer), a later one, leaderSilentTicks
// on, elects the live voter of the lowest id.
func TestQuiescedDeadLeaderReplacedBeforeTheElectionTimeout(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(3)
	g.appendCommitted(3, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)
	g.net.isolate(3, g.ids) // killed: nothing from it, nothing to it
	down := func(raftID uint64) bool { return raftID == 3 }
	ticks := 0
	for pass := 0; g.nodes[1].p.LeaderEpoch() < 0 && ticks < 8; pass++ {
		for _, id := range []uint64{1, 2} {
			g.nodes[id].r.NodesDown(down)
		}
		n := 2 + pass%2
		g.tickN(n, 1, 2)
		ticks += n
	}
	deadline := time.Now().Add(time.Second)
	for g.nodes[1].p.LeaderEpoch() < 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond) // no tick: only the election's messages
	}
	if g.nodes[1].p.LeaderEpoch() < 0 {
		t.Fatalf("node 1 does not lead %d ticks after the quiesced leader's node went down (election timeout 10 ticks)", ticks)
	}
	if g.nodes[2].p.LeaderEpoch() >= 0 {
		t.Fatal("node 2 leads too")
	}
}
