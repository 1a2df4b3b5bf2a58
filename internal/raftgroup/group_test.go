package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"testing/synctest"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// Three and five groups elect a leader; proposals from the leader and from
// a follower (forwarded by raft) get the state machine's result on their
// node; all state machines end equal, each payload applied once.
func TestProposeFromLeaderAndFollower(t *testing.T) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, n, nil)
				lead := c.leader()
				fol := c.follower(lead)
				var want []string
				out := make(chan proposeResult, 40)
				for i := 0; i < 20; i++ {
					for _, id := range []uint64{lead, fol} {
						p := fmt.Sprintf("n%d-%d", id, i)
						c.proposeAsync(id, p, out)
						want = append(want, p)
					}
				}
				got := map[string]bool{}
				c.until(200, "proposals unanswered", func() bool {
					for {
						select {
						case r := <-out:
							if r.err != nil {
								t.Fatalf("propose %s: %v", r.payload, r.err)
							}
							if s, _ := r.v.(string); !hasPayload(s, r.payload) {
								t.Fatalf("propose %s: result %v", r.payload, r.v)
							}
							got[r.payload] = true
						default:
							return len(got) == len(want)
						}
					}
				})
				applied := c.converged()
				slices.Sort(applied)
				slices.Sort(want)
				if !slices.Equal(applied, want) {
					t.Fatalf("applied %v, want each of %v once", applied, want)
				}
				st := c.nodes[lead].g.Status()
				if len(st.Match) != n || st.Commit < uint64(len(want)) || st.Applied != st.Commit {
					t.Fatalf("leader status %+v", st)
				}
				for id, m := range st.Match {
					if m != st.LastIndex {
						t.Fatalf("voter %d match %d, leader's last index %d", id, m, st.LastIndex)
					}
				}
			})
		})
	}
}

// The leader stops: the others elect a new one and proposals go on, from
// the new leader and from a follower.
func TestLeaderStopsNewLeaderTakesOver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		old := c.leader()
		c.mustPropose(old, "before")
		c.stop(old)
		lead := c.leader()
		if lead == old {
			t.Fatalf("stopped node %d still leader", old)
		}
		if st := c.nodes[lead].g.Status(); st.LeaderChanges < 2 || st.Term < 2 {
			t.Fatalf("after a new election: %+v", st)
		}
		c.mustPropose(lead, "after-leader")
		c.mustPropose(c.follower(lead, old), "after-follower")
		got := c.converged()
		if !slices.Equal(got, []string{"before", "after-leader", "after-follower"}) {
			t.Fatalf("applied %v", got)
		}
	})
}

// A node restarted from its directory replays its log (no snapshot yet)
// and catches up on what was committed while it was down.
func TestRestartedNodeCatchesUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		lead := c.leader()
		for i := 0; i < 10; i++ {
			c.mustPropose(lead, fmt.Sprintf("a%d", i))
		}
		c.converged()
		down := c.follower(lead)
		c.stop(down)
		for i := 0; i < 10; i++ {
			c.mustPropose(lead, fmt.Sprintf("b%d", i))
		}
		c.start(down)
		got := c.converged()
		if len(got) != 20 {
			t.Fatalf("applied %d payloads, want 20", len(got))
		}
		if _, restores, _ := c.nodes[down].sm.state(); restores != 0 {
			t.Fatalf("restarted node restored %d snapshots; it had none", restores)
		}
		// Its own proposals work after the restart (a new incarnation).
		c.mustPropose(down, "from-restarted")
		c.converged()
	})
}

// A node kept down while the others snapshot and compact their logs past
// its last entry catches up by a snapshot (MsgSnap), restores it, and
// goes on from the log after it; restarted again, it starts from its own
// snapshot file.
func TestDownNodeCatchesUpBySnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 10; cfg.KeepEntries = 2 })
		lead := c.leader()
		c.mustPropose(lead, "first")
		c.converged()
		down := c.follower(lead)
		downLast := c.nodes[down].g.Status().LastIndex
		c.stop(down)
		for i := 0; i < 45; i++ {
			c.mustPropose(lead, fmt.Sprintf("p%d", i))
		}
		st := c.nodes[lead].g.Status()
		if st.SnapshotIndex == 0 || st.FirstIndex <= downLast+1 {
			t.Fatalf("leader did not compact past the down node's last index %d: %+v", downLast, st)
		}
		c.start(down)
		got := c.converged()
		if len(got) != 46 {
			t.Fatalf("applied %d payloads, want 46", len(got))
		}
		_, restores, _ := c.nodes[down].sm.state()
		if restores != 1 {
			t.Fatalf("caught-up node restored %d snapshots, want 1", restores)
		}
		fst := c.nodes[down].g.Status()
		if fst.SnapshotIndex == 0 || fst.FirstIndex != fst.SnapshotIndex+1 && fst.SnapshotIndex < fst.FirstIndex {
			t.Fatalf("caught-up node status %+v", fst)
		}
		// The log goes on after the snapshot.
		c.mustPropose(down, "after-snapshot")
		c.converged()
		c.stop(down)
		c.start(down)
		got = c.converged()
		if len(got) != 47 {
			t.Fatalf("after a restart: applied %d payloads, want 47", len(got))
		}
		if _, restores, _ := c.nodes[down].sm.state(); restores != 1 {
			t.Fatalf("restarted node restored %d snapshots from its directory, want 1", restores)
		}
	})
}

// A minority cut off from the others commits nothing: the old leader steps
// down (CheckQuorum), proposals there fail; the majority elects a leader
// and goes on. After the heal the old leader's uncommitted proposal, cut
// by the new leader's entries, fails with ErrProposalDropped, and all
// state machines agree.
func TestPartitionedMinority(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 5, func(cfg *Config) { cfg.ProposalTimeoutTicks = 50 })
		old := c.leader()
		c.mustPropose(old, "before")
		c.converged()
		split := func(lead uint64) (minority, majority []uint64) {
			minority = []uint64{lead, c.follower(lead)}
			for _, id := range c.ids {
				if !slices.Contains(minority, id) {
					majority = append(majority, id)
				}
			}
			c.net.partition(minority, majority)
			return minority, majority
		}
		newLeader := func(minority, majority []uint64) uint64 {
			var lead uint64
			c.until(300, "majority elects no leader", func() bool {
				l := c.nodes[majority[0]].g.Leader()
				if l != 0 && slices.Contains(majority, l) && c.nodes[l].g.Status().State == "StateLeader" {
					lead = l
					return true
				}
				return false
			})
			c.until(100, "old leader did not step down", func() bool {
				return c.nodes[minority[0]].g.Status().State != "StateLeader"
			})
			return lead
		}

		// 1. A proposal the old leader appended but cannot commit.
		minority, majority := split(old)
		cut := make(chan proposeResult, 1)
		c.proposeAsync(old, "cut-off", cut)
		synctest.Wait()
		lead := newLeader(minority, majority)
		c.mustPropose(lead, "majority1")
		select {
		case r := <-cut:
			t.Fatalf("the cut-off proposal was answered during the partition: %v %v", r.v, r.err)
		default:
		}
		c.net.heal()
		c.until(40, "cut-off proposal unanswered after the heal", func() bool {
			select {
			case r := <-cut:
				if !errors.Is(r.err, ErrProposalDropped) {
					t.Fatalf("cut-off proposal: %v, %v; want ErrProposalDropped", r.v, r.err)
				}
				return true
			default:
				return false
			}
		})
		if got := c.converged(); !slices.Equal(got, []string{"before", "majority1"}) {
			t.Fatalf("applied %v, want [before majority1]", got)
		}

		// 2. Proposals on a minority fail (no leader there: dropped; or
		// forwarded to a leader that cannot commit: timed out, or lost
		// when that leader steps down), and the minority applies nothing.
		minority, majority = split(lead)
		lead = newLeader(minority, majority)
		for _, id := range minority {
			v, err := c.propose(id, fmt.Sprintf("minority-%d", id))
			if !errors.Is(err, ErrProposalDropped) && !errors.Is(err, ErrProposalTimeout) && !errors.Is(err, ErrLeaderLost) {
				t.Fatalf("proposal on minority node %d: %v, %v", id, v, err)
			}
		}
		c.mustPropose(lead, "majority2")
		for _, id := range minority {
			if got, _, _ := c.nodes[id].sm.state(); !slices.Equal(got, []string{"before", "majority1"}) {
				t.Fatalf("minority node %d applied %v during the partition", id, got)
			}
		}
		c.net.heal()
		if got := c.converged(); !slices.Equal(got, []string{"before", "majority1", "majority2"}) {
			t.Fatalf("applied %v, want [before majority1 majority2]", got)
		}
	})
}

// A proposal with no leader anywhere fails at once; one whose context ends
// returns the context's error; Stop answers the pending ones with
// ErrStopped.
func TestProposalErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		if _, err := c.nodes[1].g.Propose(context.Background(), []byte("x")); !errors.Is(err, ErrProposalDropped) {
			t.Fatalf("proposal before any election: %v", err)
		}
		lead := c.leader()
		fol := c.follower(lead)
		c.net.partition([]uint64{fol}, []uint64{lead})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := c.nodes[fol].g.Propose(ctx, []byte("y"))
			errc <- err
		}()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled proposal: %v", err)
		}
		out := make(chan proposeResult, 1)
		c.proposeAsync(fol, "z", out)
		synctest.Wait()
		c.stop(fol)
		if r := <-out; !errors.Is(r.err, ErrStopped) {
			t.Fatalf("proposal pending at Stop: %v", r.err)
		}
		if _, err := c.nodes[lead].g.Propose(context.Background(), make([]byte, 2<<20)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("2 MiB payload: %v", err)
		}
	})
}

// An empty directory bootstraps with Voters (none: an error); a directory
// with a log ignores them, keeping the configuration its log holds.
func TestBootstrapOnlyWhenEmpty(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		lead := c.leader()
		c.mustPropose(lead, "x")
		c.converged()
		fol := c.follower(lead)
		c.stop(fol)
		c.modify = func(cfg *Config) { cfg.Voters = []uint64{fol, 7, 8} } // a different list
		c.start(fol)
		c.converged()
		if st := c.nodes[fol].g.Status(); !slices.Equal(st.Voters, []uint64{1, 2, 3}) {
			t.Fatalf("restarted with other voters: configuration %v, want [1 2 3]", st.Voters)
		}
		nd := &testNode{id: 9, fs: c.nodes[fol].fs, sm: &testSM{}}
		cfg := c.config(nd)
		cfg.Dir, cfg.Voters = "/data/other-group", nil
		if _, err := Start(cfg); err == nil {
			t.Fatal("an empty directory without voters started")
		}
	})
}

// A group of one elects itself at Start, without waiting for an election
// timeout (no tick given here), and commits alone; again after a restart.
func TestSingleVoter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, nil)
		synctest.Wait()
		if lead := c.nodes[1].g.Leader(); lead != 1 {
			t.Fatalf("leader %d at start, want 1 at once", lead)
		}
		c.mustPropose(1, "solo")
		c.stop(1)
		c.start(1)
		synctest.Wait()
		if lead := c.nodes[1].g.Leader(); lead != 1 {
			t.Fatalf("leader %d after a restart, want 1 at once", lead)
		}
		c.mustPropose(1, "again")
		if got := c.converged(); !slices.Equal(got, []string{"solo", "again"}) {
			t.Fatalf("applied %v", got)
		}
	})
}

// TransferLeadership hands leadership to the voter named; WaitLeader
// returns once a leader is known.
func TestTransferLeadership(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		waited := make(chan error, 1)
		go func() { waited <- c.nodes[2].g.WaitLeader(context.Background()) }()
		lead := c.leader()
		if err := <-waited; err != nil {
			t.Fatal(err)
		}
		to := c.follower(lead)
		done := make(chan error, 1)
		go func() { done <- c.nodes[lead].g.TransferLeadership(context.Background(), to) }()
		c.until(100, "transfer unfinished", func() bool { return len(done) == 1 })
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got := c.leader(); got != to {
			t.Fatalf("leader %d after a transfer to %d", got, to)
		}
		c.mustPropose(lead, "after-transfer")
		c.converged()
	})
}

// A compacted group whose snapshot file is gone, or damaged, does not
// start (its log no longer holds what the snapshot did); nothing is
// written meanwhile, so restoring the file lets it start again.
func TestStartRefusesMissingOrDamagedSnapshot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 5; cfg.KeepEntries = 1 })
		lead := c.leader()
		for i := 0; i < 12; i++ {
			c.mustPropose(lead, fmt.Sprintf("p%d", i))
		}
		c.converged()
		id := c.follower(lead)
		nd := c.nodes[id]
		if st := nd.g.Status(); st.FirstIndex <= 1 {
			t.Fatalf("not compacted: %+v", st)
		}
		c.stop(id)
		cfg := c.config(nd)
		path := cfg.Dir + "/" + SnapshotFile
		good, err := nd.fs.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := nd.fs.Remove(path); err != nil {
			t.Fatal(err)
		}
		cfg.SM = &testSM{}
		if _, err := Start(cfg); !errors.Is(err, ErrSnapshotBehindLog) {
			t.Fatalf("start without the snapshot: %v", err)
		}
		bad := append([]byte(nil), good...)
		bad[len(bad)-1] ^= 0xff
		if err := nd.fs.WriteFile(path, bad); err != nil {
			t.Fatal(err)
		}
		if _, err := Start(cfg); err == nil {
			t.Fatal("started on a damaged snapshot")
		}
		if err := nd.fs.WriteFile(path, good); err != nil {
			t.Fatal(err)
		}
		c.start(id)
		if got := c.converged(); len(got) != 12 {
			t.Fatalf("applied %d after the snapshot came back, want 12", len(got))
		}
	})
}

func TestConfigRefused(t *testing.T) {
	base := Config{ID: 1, Dir: "/g", FS: memfs.New(), SM: &testSM{}, Send: func([]*raftpb.Message) {}}
	for name, mod := range map[string]func(*Config){
		"id 0":                  func(c *Config) { c.ID = 0 },
		"no dir":                func(c *Config) { c.Dir = "" },
		"no send":               func(c *Config) { c.Send = nil },
		"voter 0":               func(c *Config) { c.Voters = []uint64{1, 0} },
		"duplicate voter":       func(c *Config) { c.Voters = []uint64{1, 2, 1} },
		"heartbeat >= election": func(c *Config) { c.ElectionTicks, c.HeartbeatTicks = 3, 3 },
	} {
		cfg := base
		mod(&cfg)
		if _, err := Start(cfg); err == nil {
			t.Errorf("%s: started", name)
		}
	}
}

// A panic on the group's goroutine (here the state machine's) stops that
// group with ErrPanicked, answers its waiting proposal, and leaves the
// process and the other groups running.
func TestPanicStopsOnlyTheGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 3, nil)
		lead := c.leader()
		c.mustPropose(lead, "fine")
		fol := c.follower(lead)
		c.nodes[fol].sm.mu.Lock()
		c.nodes[fol].sm.bad = "panic on next apply"
		c.nodes[fol].sm.mu.Unlock()
		out := make(chan proposeResult, 1)
		c.proposeAsync(fol, "boom", out)
		synctest.Wait()
		r := <-out
		if !errors.Is(r.err, ErrStopped) || !errors.Is(c.nodes[fol].g.Err(), ErrPanicked) {
			t.Fatalf("proposal on the panicking node: %v; group error %v", r.err, c.nodes[fol].g.Err())
		}
		if st := c.nodes[fol].g.Status(); !errors.Is(st.Err, ErrPanicked) {
			t.Fatalf("status of the stopped group: %+v", st)
		}
		c.net.set(fol, nil)
		c.nodes[fol].g = nil
		c.mustPropose(lead, "still-working")
	})
}

// A request that panics on the goroutine (do is how Status and
// TransferLeadership run there) returns instead of waiting forever.
func TestRequestPanicReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCluster(t, 1, nil)
		g := c.nodes[1].g
		if err := g.do(context.Background(), func() { panic("request") }); !errors.Is(err, ErrStopped) {
			t.Fatalf("do after a panic: %v", err)
		}
		<-g.Done()
		if !errors.Is(g.Err(), ErrPanicked) {
			t.Fatalf("group error %v", g.Err())
		}
	})
}
