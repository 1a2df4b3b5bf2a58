package replica

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

func (g *group) allQuiesced() bool {
	for _, nd := range g.nodes {
		if nd.r != nil && !nd.r.Quiesced() {
			return false
		}
	}
	return true
}

// settleQuiesced ticks the group until every replica is quiesced and no
// message has been sent for 50 ms (10 s at most).
func (g *group) settleQuiesced() {
	g.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last, since := g.sent(), time.Now()
	for !g.allQuiesced() || time.Since(since) < 50*time.Millisecond {
		if time.Now().After(deadline) {
			g.t.Fatalf("the group did not settle quiesced within 10s (quiesced %v, %d messages)", g.allQuiesced(), g.sent())
		}
		g.tickAll()
		time.Sleep(time.Millisecond)
		if n := g.sent(); n != last {
			last, since = n, time.Now()
		}
	}
}

func (g *group) sent() int {
	g.net.mu.Lock()
	defer g.net.mu.Unlock()
	return g.net.sent
}

// appendCommitted appends on leader id and waits until every replica's
// high watermark passes it.
func (g *group) appendCommitted(id uint64, b []byte) partition.AppendResult {
	g.t.Helper()
	l := g.nodes[id].p
	res, err := l.Append(b, partition.AppendRules{})
	if err != nil {
		g.t.Fatalf("append on %d: %v", id, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.WaitCommitted(ctx, res.LastOffset, res.LeaderEpoch) }()
	var werr error
	g.waitFor("commit", func() bool {
		select {
		case werr = <-done:
			return true
		default:
			return false
		}
	})
	if werr != nil {
		g.t.Fatalf("commit on %d: %v", id, werr)
	}
	g.waitFor("every high watermark", func() bool {
		for _, nd := range g.nodes {
			if nd.r != nil && nd.p.HighWatermark() <= res.LastOffset {
				return false
			}
		}
		return true
	})
	return res
}

// An idle group quiesces: then ticks send nothing (no heartbeats), the
// leader's ISR stays full past the lag time, and a write wakes it, is
// committed on every replica, and the group quiesces again.
func TestIdleGroupQuiescesAndWakesOnProposal(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	g := newGroupWith(t, 3, func(c *Config) { c.Now, c.LagTime = clock, 30*time.Second })
	g.elect(1)
	first := g.appendCommitted(1, batch(t, 7, 0, 2, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)
	// Settle: an answer to a message sent before quiescing may still be
	// in a replica's inbox and wake it once (CI saw 44 messages: a wake,
	// the heartbeats of an election timeout, quiesced again); what is
	// measured below is the quiesced group after that.
	g.settleQuiesced()

	before := g.sent()
	for range 50 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	now = now.Add(time.Minute) // past LagTime: a quiesced leader keeps its ISR
	mu.Unlock()
	for range 10 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	if n := g.sent() - before; n != 0 {
		t.Fatalf("a quiesced group sent %d messages over 60 ticks", n)
	}
	if !g.allQuiesced() {
		t.Fatal("a replica woke with nothing to do")
	}
	st := g.nodes[1].r.Status()
	if !st.Quiesced || !slices.Equal(st.ISR, []uint64{1, 2, 3}) || g.nodes[1].p.InSyncReplicas() != 3 {
		t.Fatalf("quiesced leader: %+v, in sync %d", st, g.nodes[1].p.InSyncReplicas())
	}
	for _, nd := range g.nodes {
		if hw := nd.p.HighWatermark(); hw != first.LastOffset+1 {
			t.Fatalf("replica %d: high watermark %d, want %d", nd.id, hw, first.LastOffset+1)
		}
	}

	// A proposal wakes the leader; its append wakes the followers.
	second := g.appendCommitted(1, batch(t, 7, 2, 3, "b"))
	if second.BaseOffset != first.LastOffset+1 {
		t.Fatalf("second batch at %d, want %d", second.BaseOffset, first.LastOffset+1)
	}
	want := serve(t, g.nodes[1].p, second.LastOffset+1)
	for _, id := range []uint64{2, 3} {
		if !bytes.Equal(serve(t, g.nodes[id].p, second.LastOffset+1), want) {
			t.Fatalf("replica %d differs from the leader after the wake", id)
		}
	}
	if st := g.nodes[1].r.Status(); st.Wakes == 0 {
		t.Fatalf("the leader never woke: %+v", st)
	}
	g.waitFor("the group quiesced again", g.allQuiesced)
}

// Followers of a quiesced group whose leader dies do not campaign on
// their own (they do not tick); told the leader's node is down
// (NodesDown, which the cluster calls from its liveness view), they wake,
// elect a new leader, and it takes writes.
func TestQuiescedFollowersElectWhenLeaderDown(t *testing.T) {
	var dead1 atomic.Bool
	g := newGroupWith(t, 3, func(c *Config) { c.Live = func(id uint64) bool { return id != 1 || !dead1.Load() } })
	g.elect(1)
	first := g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)

	// kill -9 of the leader's node: its replica stops, its links are cut.
	dead := g.nodes[1]
	g.net.isolate(1, g.ids)
	dead.r.Stop()
	dead.p.Log().Close()
	dead.r = nil
	delete(g.nodes, 1)

	for range 100 { // 5 to 10 election timeouts
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	for _, id := range []uint64{2, 3} {
		if st := g.nodes[id].r.Status(); !st.Quiesced || st.State != "StateFollower" || st.Leader != 1 {
			t.Fatalf("replica %d before NodesDown: %+v", id, st)
		}
	}
	// A live node is not a reason to wake.
	if g.nodes[2].r.NodesDown(func(id uint64) bool { return id == 3 }) {
		t.Fatal("woke because a follower's node is down")
	}
	dead1.Store(true)
	down := func(id uint64) bool { return id == 1 }
	for _, id := range []uint64{2, 3} {
		if !g.nodes[id].r.NodesDown(down) {
			t.Fatalf("replica %d did not wake with its leader down", id)
		}
	}
	var leader uint64
	g.waitFor("a new leader", func() bool {
		for _, id := range []uint64{2, 3} {
			if g.nodes[id].p.LeaderEpoch() >= 0 {
				leader = id
				return true
			}
		}
		return false
	})
	// The new leader quiesces with the dead replica behind: Live says
	// it is down.
	res := g.appendCommitted(leader, batch(t, 7, 1, 1, "b"))
	if res.BaseOffset <= first.LastOffset {
		t.Fatalf("the new leader appended at %d, over the first batch (%d)", res.BaseOffset, first.LastOffset)
	}
	if a, b := serve(t, g.nodes[2].p, res.LastOffset+1), serve(t, g.nodes[3].p, res.LastOffset+1); !bytes.Equal(a, b) || !bytes.Contains(a, []byte("a")) {
		t.Fatal("the survivors' logs differ or lost the first batch")
	}
	g.waitFor("the survivors quiesced", g.allQuiesced)
}

// A quiesced leader cut off from a majority wakes when told (so that
// CheckQuorum steps it down). A follower's death alone wakes it only
// while that follower is in its ISR (TestDeadFollowerLeavesISR), and then
// it quiesces again.
func TestQuiescedLeaderWakesWithoutQuorum(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)
	l := g.nodes[1].r
	wakes := l.Status().Wakes
	if !l.NodesDown(func(id uint64) bool { return id == 2 }) {
		t.Fatal("the leader stayed quiesced with an in-sync follower down")
	}
	// NodesDown only asks the goroutine to wake the leader: wait for the
	// wake itself, or the group still looks quiesced from before it (and
	// the leader, awake by the next NodesDown, is rightly left alone).
	g.waitFor("the leader awake", func() bool { return l.Status().Wakes > wakes })
	g.waitFor("the group quiesced again", g.allQuiesced)
	g.net.isolate(1, g.ids)
	if !l.NodesDown(func(id uint64) bool { return id != 1 }) {
		t.Fatal("the leader stayed quiesced with both followers down")
	}
	g.waitFor("the cut-off leader to step down", func() bool { return g.nodes[1].p.LeaderEpoch() < 0 })
}

// With a shared Ticker only awake replicas are ticked: a quiesced group
// is off its list, and a write puts it back.
func TestTickerTicksAwakeReplicasOnly(t *testing.T) {
	tk := NewTicker(5 * time.Millisecond)
	defer tk.Stop()
	g := newGroupWith(t, 3, func(c *Config) { c.Tick, c.Ticker = nil, tk })
	deadline := time.Now().Add(20 * time.Second)
	var leader uint64
	for leader == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		for _, nd := range g.nodes {
			if nd.p.LeaderEpoch() >= 0 {
				leader = nd.id
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := g.nodes[leader].p.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	for !g.allQuiesced() || tk.Awake() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("awake: %d", tk.Awake())
		}
		time.Sleep(5 * time.Millisecond)
	}
	wakes := g.nodes[leader].r.Status().Wakes
	if _, err := g.nodes[leader].p.Append(batch(t, 7, 1, 1, "b"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	if st := g.nodes[leader].r.Status(); st.Wakes <= wakes {
		t.Fatalf("a write did not wake the leader: %+v", st)
	}
	for !g.allQuiesced() || tk.Awake() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not quiesced again; awake: %d", tk.Awake())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A replica restarted behind a quiesced leader is caught up within a few
// ticks when the leader is told its node is back (NodesUp): the leader
// heartbeats it before its election timeout, so it never campaigns (no
// PreVote from each replica of a restarted broker) and the term stays.
func TestRestartedReplicaFindsQuiescedLeader(t *testing.T) {
	var dead3 atomic.Bool
	g := newGroupWith(t, 3, func(c *Config) { c.Live = func(id uint64) bool { return id != 3 || !dead3.Load() } })
	g.elect(1)
	g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)

	nd3 := g.nodes[3]
	g.net.isolate(3, g.ids)
	nd3.r.Stop()
	nd3.p.Log().Close()
	nd3.r = nil
	dead3.Store(true)
	delete(g.nodes, 3)
	res := g.appendCommitted(1, batch(t, 7, 1, 1, "b"))
	g.waitFor("quiesced with 3 down and behind", g.allQuiesced)
	term := g.nodes[1].r.Status().Term

	g.net.heal()
	g.start(nd3)
	g.nodes[3] = nd3
	dead3.Store(false)
	if !g.nodes[1].r.NodesUp(func(id uint64) bool { return id == 3 }) {
		t.Fatal("the quiesced leader did not wake for its member's node back")
	}
	ticks := 0
	deadline := time.Now().Add(20 * time.Second)
	for nd3.p.HighWatermark() <= res.LastOffset {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted replica is not caught up: %+v", nd3.r.Status())
		}
		g.tickAll()
		ticks++
		time.Sleep(2 * time.Millisecond)
	}
	if ticks >= 10 { // ElectionTicks: it would have campaigned by then
		t.Fatalf("caught up after %d ticks", ticks)
	}
	if st := nd3.r.Status(); st.Term != term || st.Leader != 1 {
		t.Fatalf("restarted replica: term %d (was %d), leader %d", st.Term, term, st.Leader)
	}
	g.waitFor("all quiesced again", g.allQuiesced)
}

// A leader's replica that stops while its broker lives on (a storage
// failure, a partition moved away) wakes its quiesced followers on the
// way out: no liveness signal would, the node being up and connected.
func TestStoppedLeaderWakesQuiescedFollowers(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)
	old := g.nodes[1]
	old.r.Stop()
	old.p.Log().Close()
	old.r = nil
	delete(g.nodes, 1)
	g.waitFor("a new leader without NodesDown", func() bool {
		return g.nodes[2].p.LeaderEpoch() >= 0 || g.nodes[3].p.LeaderEpoch() >= 0
	})
}

// TestDeadFollowerLeavesISR: a follower's node dies while its partition is
// idle. Its match index still equals the log end, so a match-only ISR
// kept it in forever (a quiesced leader kept its ISR as it quiesced, an
// awake one saw it matched at every tick): min.insync.replicas counted a
// dead replica. The leader, told the node is down (NodesDown), wakes and
// drops it from the ISR; with the node back it returns to the ISR.
func TestDeadFollowerLeavesISR(t *testing.T) {
	var dead3 atomic.Bool
	g := newGroupWith(t, 3, func(c *Config) {
		c.Live = func(id uint64) bool { return id != 3 || !dead3.Load() }
		c.LagTime = 50 * time.Millisecond
	})
	g.elect(1)
	g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	g.waitFor("the group quiesced", g.allQuiesced)
	lead := g.nodes[1].r
	if isr := lead.Status().ISR; len(isr) != 3 {
		t.Fatalf("ISR before: %v", isr)
	}
	// kill -9 of node 3.
	g.net.isolate(3, g.ids)
	g.nodes[3].r.Stop()
	dead3.Store(true)
	if !lead.NodesDown(func(id uint64) bool { return id == 3 }) {
		t.Fatal("the leader did not wake with an in-sync follower's node down")
	}
	g.waitFor("node 3 out of the ISR", func() bool {
		isr := lead.Status().ISR
		return len(isr) == 2 && !slices.Contains(isr, 3)
	})
	if n := g.nodes[1].p.InSyncReplicas(); n != 2 {
		t.Fatalf("in-sync replicas for min.insync.replicas: %d, want 2", n)
	}
}

// TestSilentFollowerLeavesISR: an awake leader drops a follower it has
// not heard from within the lag time even though the follower's match
// index is the log end (an idle partition), as Kafka drops a follower
// that stops fetching. (The group cannot quiesce here: its election
// timeout is longer than the test.)
func TestSilentFollowerLeavesISR(t *testing.T) {
	g := newGroupWith(t, 3, func(c *Config) {
		c.LagTime = 50 * time.Millisecond
		c.ElectionTicks = 100000
	})
	g.elect(1)
	g.appendCommitted(1, batch(t, 7, 0, 1, "a"))
	lead := g.nodes[1].r
	g.waitFor("a full ISR", func() bool { return len(lead.Status().ISR) == 3 })
	g.net.isolate(3, g.ids)
	g.nodes[3].r.Stop()
	g.waitFor("node 3 out of the ISR", func() bool {
		isr := lead.Status().ISR
		return len(isr) == 2 && !slices.Contains(isr, 3)
	})
}
