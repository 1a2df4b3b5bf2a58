package raftgroup

import (
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// The leader's Status says when each voter last answered and last had the
// whole log (DescribeQuorum's last fetch and last caught-up times): a
// stopped follower's times stay where they were while the others' move on;
// followers report none; leader changes are counted.
func TestStatusVoterTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		lead := c.leader()
		c.mustPropose(lead, "a")
		c.converged()
		c.tick()
		st := c.nodes[lead].g.Status()
		for _, id := range c.ids {
			if st.LastContact[id].IsZero() || st.CaughtUp[id].IsZero() {
				t.Fatalf("voter %d: last contact %v, caught up %v; want both set", id, st.LastContact[id], st.CaughtUp[id])
			}
		}
		if st.LeaderChanges < 1 {
			t.Fatalf("leader changes %d on the leader", st.LeaderChanges)
		}
		down := c.follower(lead)
		up := c.follower(lead, down)
		if fs := c.nodes[up].g.Status(); fs.LastContact != nil || fs.CaughtUp != nil {
			t.Fatalf("a follower's status has voter times: %+v", fs)
		}
		c.stop(down)
		time.Sleep(10 * time.Second) // fake time
		t0 := time.Now()
		c.mustPropose(lead, "b")
		c.tick()
		st = c.nodes[lead].g.Status()
		if st.CaughtUp[up].Before(t0) || st.LastContact[up].Before(t0) {
			t.Fatalf("live follower %d: caught up %v, last contact %v; want at or after %v", up, st.CaughtUp[up], st.LastContact[up], t0)
		}
		if !st.CaughtUp[down].Before(t0) || !st.LastContact[down].Before(t0) {
			t.Fatalf("stopped follower %d: caught up %v, last contact %v; want before %v", down, st.CaughtUp[down], st.LastContact[down], t0)
		}
		if st.Match[down] >= st.LastIndex {
			t.Fatalf("stopped follower's match %d, leader's last %d", st.Match[down], st.LastIndex)
		}
	})
}

// A follower's proposal forwarded to a leader that then dies (the
// forwarded message lost) is answered ErrLeaderLost once the follower sees
// the leader gone, long before ProposalTimeoutTicks; the follower's next
// proposal, at the new leader, is applied.
func TestForwardedProposalLeaderLost(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		lead := c.leader()
		fol := c.follower(lead)
		c.mustPropose(fol, "before")
		// The follower's messages to the leader are lost; the leader's
		// heartbeats still reach it, so it keeps the leader it knows.
		c.net.mu.Lock()
		c.net.cut[[2]uint64{fol, lead}] = true
		c.net.mu.Unlock()
		out := make(chan proposeResult, 1)
		c.proposeAsync(fol, "lost", out)
		c.tick()
		c.stop(lead)
		ticks := 0
		var r proposeResult
		c.until(cfgProposalTimeout(c)-1, "the forwarded proposal answered before its timeout", func() bool {
			ticks++
			select {
			case r = <-out:
				return true
			default:
				return false
			}
		})
		if !errors.Is(r.err, ErrLeaderLost) {
			t.Fatalf("after %d ticks: %v, %v; want ErrLeaderLost", ticks, r.v, r.err)
		}
		c.net.heal()
		c.leader()
		c.mustPropose(fol, "after")
	})
}

// cfgProposalTimeout is the group's ProposalTimeoutTicks with the
// harness's defaults.
func cfgProposalTimeout(c *cluster) int {
	cfg, _ := c.config(c.nodes[c.ids[0]]).withDefaults()
	return cfg.ProposalTimeoutTicks
}
