package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// join starts node id with an empty log that joins the group (Config.Join)
// instead of bootstrapping.
func (g *group) join(id uint64) *node {
	g.t.Helper()
	nd := &node{id: id, fs: memfs.New()}
	g.nodes[id] = nd
	prev := g.modify
	g.modify = func(c *Config) {
		if prev != nil {
			prev(c)
		}
		c.Voters, c.Join = nil, true
	}
	g.start(nd)
	g.modify = prev
	return nd
}

// reconfigure calls Reconfigure on every replica (the leader acts) and
// reports whether the leader says the target is reached.
func (g *group) reconfigure(nodes []*node, target []uint64) (Membership, bool) {
	g.t.Helper()
	for _, nd := range nodes {
		m, err := nd.r.Reconfigure(target)
		if err != nil {
			g.t.Fatalf("reconfigure on %d: %v", nd.id, err)
		}
		if m.Leader {
			return m, m.Done
		}
	}
	return Membership{}, false
}

// producer appends numbered single-record batches of one idempotent
// producer to whichever replica leads, retrying a batch (same sequence)
// until it is committed, and keeps what was acknowledged.
type producer struct {
	t     *testing.T
	nodes []*node
	mu    sync.Mutex
	acked []string
	stop  chan struct{}
	done  chan struct{}
}

func (p *producer) run() {
	defer close(p.done)
	for seq := int32(0); ; seq++ {
		val := fmt.Sprintf("v%05d", seq)
		for {
			select {
			case <-p.stop:
				return
			default:
			}
			var lead *partition.Partition
			for _, nd := range p.nodes {
				if nd.p.LeaderEpoch() >= 0 {
					lead = nd.p
				}
			}
			if lead == nil {
				time.Sleep(time.Millisecond)
				continue
			}
			res, err := lead.Append(batch(p.t, 7, seq, 1, val), partition.AppendRules{})
			if err == nil {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				err = lead.WaitCommitted(ctx, res.LastOffset, res.LeaderEpoch)
				cancel()
			}
			if err == nil {
				p.mu.Lock()
				p.acked = append(p.acked, val)
				p.mu.Unlock()
				break
			}
			if !errors.Is(err, partition.ErrNotLeader) && !errors.Is(err, partition.ErrTruncated) && !errors.Is(err, context.DeadlineExceeded) {
				p.t.Errorf("append %s: %v", val, err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func (p *producer) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.acked)
}

// values are the record values of a replica's data batches below upTo.
func values(t *testing.T, p *partition.Partition, upTo int64) []string {
	t.Helper()
	var out []string
	for b := serve(t, p, upTo); len(b) > 0; {
		h, err := record.ReadBatchHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		batch := b[:h.Size()]
		b = b[h.Size():]
		if h.IsControl() {
			continue // raft's own entries: conf changes, a leader's empty entry
		}
		_, recs, err := record.Records(batch, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			out = append(out, string(r.Value))
		}
	}
	return out
}

// TestReassignUnderWrites moves a group from voters {1,2,3} to {2,3,4}
// while a producer writes: 4 joins empty as a learner, catches up from
// the first entry, the joint change promotes it and removes 1, whose
// leadership moves to a new voter; every acknowledged record is on 4,
// once, in order.
func TestReassignUnderWrites(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	pr := &producer{t: t, nodes: all, stop: make(chan struct{}), done: make(chan struct{})}
	go pr.run()
	g.waitFor("records before the change", func() bool { return pr.count() >= 20 })

	target := []uint64{2, 3, 4}
	var steps []string
	g.waitFor("the reassignment", func() bool {
		m, done := g.reconfigure(all, target)
		if m.Step != "" {
			steps = append(steps, m.Step)
		}
		return done
	})
	before := pr.count()
	g.waitFor("records after the change", func() bool { return pr.count() >= before+20 })
	close(pr.stop)
	g.waitFor("the producer to stop", func() bool {
		select {
		case <-pr.done:
			return true
		default:
			return false
		}
	})
	t.Logf("steps: %q; %d records acknowledged", steps, pr.count())
	for _, want := range []string{"add learner 4", "enter the joint configuration [1 2 3] -> [2 3 4]", "leave the joint configuration"} {
		if !slices.Contains(steps, want) {
			t.Errorf("no step %q in %q", want, steps)
		}
	}

	var lead *node
	for _, nd := range all {
		if nd.p.LeaderEpoch() >= 0 {
			lead = nd
		}
	}
	if lead == nil || lead.id == 1 {
		t.Fatalf("leader after the change: %v", lead)
	}
	m, _ := g.reconfigure(all, target)
	if !slices.Equal(m.Voters, target) || len(m.Outgoing) != 0 || len(m.Learners) != 0 {
		t.Fatalf("configuration %+v", m)
	}
	// The removed voter is out: the group commits without it.
	g.nodes[1].r.Stop()
	hw := lead.p.HighWatermark()
	g.waitFor("4 at the leader's high watermark", func() bool { return n4.p.HighWatermark() >= hw })
	got := values(t, n4.p, hw)
	// Every acknowledged record, once, in order; at most one more: a
	// batch committed whose acknowledgement the stop cut short.
	if len(got) > len(pr.acked)+1 || !slices.Equal(got[:min(len(got), len(pr.acked))], pr.acked) {
		i := firstDiff(got, pr.acked)
		t.Fatalf("replica 4 holds %d records, %d acknowledged (first difference at %d: %q vs %q)", len(got), len(pr.acked), i, got[i:min(i+3, len(got))], pr.acked[i:min(i+3, len(pr.acked))])
	}
	if want := serve(t, lead.p, hw); !bytes.Equal(serve(t, n4.p, hw), want) {
		t.Fatal("replica 4's batches differ from the leader's")
	}
	// A write after 1 stopped still commits on {2,3,4}.
	res, err := lead.p.Append(batch(t, 8, 0, 1, "after"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("a commit without 1", func() bool { return lead.p.HighWatermark() > res.LastOffset })
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestReassignCancelledBeforeSwitch: a learner added for a target is
// removed when the target goes back to the voters, which never changed.
func TestReassignCancelledBeforeSwitch(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	g.net.isolate(4, []uint64{1, 2, 3}) // 4 never catches up: no switch
	g.waitFor("learner 4 added", func() bool {
		m, _ := g.reconfigure(all, []uint64{2, 3, 4})
		return slices.Contains(m.Learners, 4)
	})
	for range 30 {
		g.tickAll()
		m, _ := g.reconfigure(all, []uint64{2, 3, 4})
		if !slices.Equal(m.Voters, []uint64{1, 2, 3}) || len(m.Outgoing) != 0 {
			t.Fatalf("voters switched with a learner that is not caught up: %+v", m)
		}
		time.Sleep(time.Millisecond)
	}
	g.waitFor("the cancel", func() bool {
		_, done := g.reconfigure(all, []uint64{1, 2, 3})
		return done
	})
	m, _ := g.reconfigure(all, []uint64{1, 2, 3})
	if !slices.Equal(m.Voters, []uint64{1, 2, 3}) || len(m.Learners) != 0 {
		t.Fatalf("after the cancel: %+v", m)
	}
}

// TestJoinWithoutLeaderWaits: a replica that joins waits, empty and with
// no configuration, until a leader adds it (it never campaigns).
func TestJoinWithoutLeaderWaits(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	n4 := g.join(4)
	for range 30 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	if st := n4.r.Status(); st.State != "StateFollower" || st.LastIndex != 0 {
		t.Fatalf("a joined replica not yet added: %+v", st)
	}
}

// reassign drives the group to target and returns its leader.
func (g *group) reassign(nodes []*node, target []uint64) *node {
	g.t.Helper()
	g.waitFor(fmt.Sprintf("the group at %v", target), func() bool {
		_, done := g.reconfigure(nodes, target)
		return done
	})
	for _, nd := range nodes {
		if nd.p.LeaderEpoch() >= 0 {
			return nd
		}
	}
	g.t.Fatal("no leader")
	return nil
}

// TestReassignBackAfterSwitch: a cancel after the voters switched is one
// more change: 1, dropped and stale, comes back as a learner, catches up,
// and the group returns to {1,2,3} with every committed batch on 1.
func TestReassignBackAfterSwitch(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	lead := g.reassign(all, []uint64{2, 3, 4})
	// Written while 1 is out of the group: 1 misses them.
	var last int64
	for i := range 10 {
		res, err := lead.p.Append(batch(t, 9, int32(i), 1, "while-out"), partition.AppendRules{})
		if err != nil {
			t.Fatal(err)
		}
		last = res.LastOffset
	}
	g.waitFor("the writes committed", func() bool { return lead.p.HighWatermark() > last })
	lead = g.reassign(all, []uint64{1, 2, 3})
	m, _ := g.reconfigure(all, []uint64{1, 2, 3})
	if !slices.Equal(m.Voters, []uint64{1, 2, 3}) || len(m.Learners) != 0 {
		t.Fatalf("back: %+v", m)
	}
	hw := lead.p.HighWatermark()
	g.waitFor("1 caught up", func() bool { return g.nodes[1].p.HighWatermark() >= hw })
	if !bytes.Equal(serve(t, g.nodes[1].p, hw), serve(t, lead.p, hw)) {
		t.Fatal("replica 1 differs from the leader after coming back")
	}
}

// wipe stops node id and starts it again on an empty disk, joining
// (Config.Join) or bootstrapping with voters.
func (g *group) wipe(id uint64, join bool, voters []uint64) *node {
	g.t.Helper()
	old := g.nodes[id]
	old.r.Stop()
	old.p.Log().Close()
	g.net.mu.Lock()
	delete(g.net.reps, id)
	g.net.mu.Unlock()
	if join {
		return g.join(id)
	}
	nd := &node{id: id, fs: memfs.New()}
	g.nodes[id] = nd
	prev := g.modify
	g.modify = func(c *Config) { c.Voters = voters }
	g.start(nd)
	g.modify = prev
	return nd
}

// leaderOf waits for a leader among nodes.
func (g *group) leaderOf(nodes []*node) *node {
	g.t.Helper()
	var lead *node
	g.waitFor("a leader", func() bool {
		for _, nd := range nodes {
			if nd.p.LeaderEpoch() >= 0 {
				lead = nd
				return true
			}
		}
		return false
	})
	return lead
}

// TestReaddedReplicaJoinsEmpty: {1,2,3} -> {2,3,4}, then 4 is dropped
// ({2,3}) and its copy deleted, then added back. Joining (what package
// cluster does for a reconfigured partition) it is a new learner and gets
// the log from the leader, identical; bootstrapping with the topic's
// replicas {2,3,4} instead writes its own conf entries at the indexes and
// term of the group's first entries, which raft's log matching then takes
// for the same entries: the copy differs for good.
func TestReaddedReplicaJoinsEmpty(t *testing.T) {
	for _, join := range []bool{true, false} {
		t.Run(fmt.Sprintf("join=%v", join), func(t *testing.T) {
			g := newGroup(t, 3)
			g.elect(1)
			n4 := g.join(4)
			all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
			lead := g.reassign(all, []uint64{2, 3, 4})
			for i := range 5 {
				if _, err := lead.p.Append(batch(t, 9, int32(i), 1, "x"), partition.AppendRules{}); err != nil {
					t.Fatal(err)
				}
			}
			g.reassign(all, []uint64{2, 3})
			n4 = g.wipe(4, join, []uint64{2, 3, 4})
			all = []*node{g.nodes[2], g.nodes[3], n4}
			lead = g.reassign(all, []uint64{2, 3, 4})
			res, err := lead.p.Append(batch(t, 10, 0, 1, "after"), partition.AppendRules{})
			if err != nil {
				t.Fatal(err)
			}
			hw := res.LastOffset + 1
			g.waitFor("4 caught up", func() bool { return n4.p.HighWatermark() >= hw })
			same := bytes.Equal(serve(t, n4.p, hw), serve(t, lead.p, hw))
			if join && !same {
				t.Fatal("a replica that joined differs from the leader")
			}
			if !join && same {
				t.Fatal("a bootstrap with other voters gave the same log: the reason for Join is gone")
			}
		})
	}
}

// TestWipedMemberIgnoredUntilReassigned: a voter whose disk is lost comes
// back under its id (bootstrapping, as a partition never reassigned does,
// or joining). The leader's heartbeats carry a commit index past its empty
// log, which made raft panic (commitTo out of range) and would take the
// broker down; the replica drops them, stays up, and the group commits on
// the other two. Reassigned away and back, it copies the log again.
func TestWipedMemberIgnoredUntilReassigned(t *testing.T) {
	for _, join := range []bool{false, true} {
		t.Run(fmt.Sprintf("join=%v", join), func(t *testing.T) {
			g := newGroup(t, 3)
			g.elect(1)
			lead := g.nodes[1]
			var last int64
			for i := range 12 {
				res, err := lead.p.Append(batch(t, 9, int32(i), 1, "x"), partition.AppendRules{})
				if err != nil {
					t.Fatal(err)
				}
				last = res.LastOffset
			}
			g.waitFor("3 has the batches", func() bool { return g.nodes[3].p.HighWatermark() > last })
			n3 := g.wipe(3, join, []uint64{1, 2, 3})
			g.waitFor("heartbeats to the wiped replica", func() bool { return n3.r.members.lost.Load() >= 3 })
			if err := n3.r.Err(); err != nil {
				t.Fatal(err)
			}
			res, err := lead.p.Append(batch(t, 9, 12, 1, "y"), partition.AppendRules{})
			if err != nil {
				t.Fatal(err)
			}
			g.waitFor("a commit without 3", func() bool { return lead.p.HighWatermark() > res.LastOffset })

			all := []*node{g.nodes[1], g.nodes[2], n3}
			g.reassign(all, []uint64{1, 2})
			n3 = g.wipe(3, true, nil)
			all = []*node{g.nodes[1], g.nodes[2], n3}
			lead = g.reassign(all, []uint64{1, 2, 3})
			hw := lead.p.HighWatermark()
			g.waitFor("3 caught up", func() bool { return n3.p.HighWatermark() >= hw })
			if !bytes.Equal(serve(t, n3.p, hw), serve(t, lead.p, hw)) {
				t.Fatal("replica 3 differs from the leader after it was added back")
			}
		})
	}
}

// TestReplaceDeadVoter: voter 3 is down for good; {1,2,3} -> {1,2,4}
// goes through (the joint configuration's old half has its majority in 1
// and 2) and the group commits on {1,2,4}.
func TestReplaceDeadVoter(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	lead := g.nodes[1]
	for i := range 5 {
		if _, err := lead.p.Append(batch(t, 9, int32(i), 1, "x"), partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	g.nodes[3].r.Stop()
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], n4}
	lead = g.reassign(all, []uint64{1, 2, 4})
	// One old voter more down: the other two of {1,2,4} are a majority.
	if lead != g.nodes[2] {
		g.nodes[2].r.Stop()
	} else {
		g.nodes[1].r.Stop()
	}
	res, err := lead.p.Append(batch(t, 9, 5, 1, "y"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("a commit on the leader and 4", func() bool { return lead.p.HighWatermark() > res.LastOffset })
	hw := lead.p.HighWatermark()
	g.waitFor("4 at the high watermark", func() bool { return n4.p.HighWatermark() >= hw })
	if !bytes.Equal(serve(t, n4.p, hw), serve(t, lead.p, hw)) {
		t.Fatal("replica 4 differs from the leader")
	}
}

// TestConfChangeCutByLeaderChange: a leader cut off proposes a conf change
// past five uncommitted batches; a new leader cuts that tail, and when
// the first leader leads again (in a later term, its log now shorter,
// nothing written) its next step is not held back by the cut change's
// index, which the log may not reach for a long time on an idle
// partition.
func TestConfChangeCutByLeaderChange(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	g.net.isolate(1, g.ids)
	for i := range 5 {
		if _, err := g.nodes[1].p.Append(batch(t, 9, int32(i), 1, "cut"), partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	m, err := g.nodes[1].r.Reconfigure([]uint64{1, 2, 3, 4})
	if err != nil || m.Step != "add learner 4" {
		t.Fatalf("%+v %v", m, err)
	}
	g.waitFor("a leader among 2 and 3", func() bool {
		return g.nodes[2].p.LeaderEpoch() >= 0 || g.nodes[3].p.LeaderEpoch() >= 0
	})
	g.net.heal()
	g.waitFor("1 to step down", func() bool { return g.nodes[1].p.LeaderEpoch() < 0 })
	g.elect(1)
	g.waitFor("learner 4 added by the leader of the new term", func() bool {
		m, err := g.nodes[1].r.Reconfigure([]uint64{1, 2, 3, 4})
		if err != nil {
			t.Fatal(err)
		}
		return slices.Contains(m.Learners, 4)
	})
}
