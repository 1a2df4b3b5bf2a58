package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// ledger records which proposals were acknowledged (a result returned)
// and which were reported dropped (never to be applied).
type ledger struct {
	mu      sync.Mutex
	acked   []string
	dropped []string
}

func (l *ledger) ackedNow() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.acked)
}

// proposer proposes name-0, name-1, ... on g until it stops.
func (l *ledger) proposer(g *Group, name string, n int, wg *sync.WaitGroup) {
	defer wg.Done()
	for i := 0; i < n; i++ {
		p := fmt.Sprintf("%s-%d", name, i)
		_, err := g.Propose(context.Background(), []byte(p))
		l.mu.Lock()
		switch {
		case err == nil:
			l.acked = append(l.acked, p)
		case errors.Is(err, ErrProposalDropped):
			l.dropped = append(l.dropped, p)
		}
		l.mu.Unlock()
		if errors.Is(err, ErrStopped) {
			return
		}
	}
}

// A power cut of every node at once, at the k-th file write of the
// leader after proposals started (mid-append, mid-fsync, mid-snapshot:
// SnapshotEntries is small), loses no acknowledged proposal: after a
// restart on the cut images every state machine holds each of them, once,
// and none of those reported dropped.
func TestPowerCutKeepsAcknowledged(t *testing.T) {
	keeps := map[string]func(string, int) int{
		"none": nil,
		"half": func(_ string, n int) int { return n / 2 },
		"all":  memfs.KeepAll,
	}
	for name, keep := range keeps {
		for k := 1; k <= 60; k += 7 {
			t.Run(fmt.Sprintf("%s/write%d", name, k), func(t *testing.T) {
				synctest.Test(t, func(t *testing.T) {
					powerCut(t, k, memfs.CrashOptions{KeepUnsyncedPrefix: keep})
				})
			})
		}
	}
}

func powerCut(t *testing.T, k int, opts memfs.CrashOptions) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 8; cfg.KeepEntries = 2 })
	lead := c.leader()
	var l ledger
	var before []string
	images := map[uint64]*memfs.FS{}
	cut := c.nodes[lead].fs.CrashAtWrite(k, opts, func() {
		// The leader's FS is locked here; the others are not.
		before = l.ackedNow()
		for _, id := range c.ids {
			if id != lead {
				images[id] = c.nodes[id].fs.Crash(opts)
			}
		}
	})
	var wg sync.WaitGroup
	for _, id := range c.ids {
		wg.Add(1)
		go l.proposer(c.nodes[id].g, fmt.Sprintf("n%d", id), 15, &wg)
	}
	c.until(500, "proposers did not finish", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.acked)+len(l.dropped) >= 45
	})
	leadImage := cut()
	if before == nil && len(images) == 0 {
		// Fewer than k writes: the cut came now, after everything.
		before = l.ackedNow()
		for _, id := range c.ids {
			if id != lead {
				images[id] = c.nodes[id].fs.Crash(opts)
			}
		}
	}
	images[lead] = leadImage
	for _, id := range c.ids {
		c.stop(id)
	}
	wg.Wait()
	t.Logf("cut at leader write %d: %d acknowledged before it, %d dropped", k, len(before), len(l.dropped))
	for _, id := range c.ids {
		c.nodes[id].fs = images[id]
		c.start(id)
	}
	got := c.converged()
	seen := map[string]int{}
	for _, p := range got {
		seen[p]++
		if seen[p] > 1 {
			t.Fatalf("%s applied twice", p)
		}
	}
	for _, p := range before {
		if seen[p] == 0 {
			t.Fatalf("acknowledged %s lost by the power cut (have %v)", p, got)
		}
	}
	for _, p := range l.dropped {
		if seen[p] != 0 {
			t.Fatalf("%s was reported dropped but is applied", p)
		}
	}
	// The group goes on.
	c.mustPropose(c.leader(), "after")
}

// A follower catching up by snapshot loses power at each file write of
// the install (snapshot file, log reset, the entries after it): restarted
// on the cut image, it starts (Start finishes or redoes the install) and
// converges.
func TestPowerCutDuringSnapshotInstall(t *testing.T) {
	for k := 1; k <= 12; k++ {
		t.Run(fmt.Sprintf("write%d", k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, 3, func(cfg *Config) { cfg.SnapshotEntries = 10; cfg.KeepEntries = 2 })
				lead := c.leader()
				c.mustPropose(lead, "first")
				c.converged()
				down := c.follower(lead)
				c.stop(down)
				for i := 0; i < 30; i++ {
					c.mustPropose(lead, fmt.Sprintf("p%d", i))
				}
				// At the cut the node goes silent: nothing it does after
				// the image was taken may be heard (the leader would count
				// entries the image lacks).
				var cutDone atomic.Bool
				others := slices.DeleteFunc(slices.Clone(c.ids), func(id uint64) bool { return id == down })
				cut := c.nodes[down].fs.CrashAtWrite(k, memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}, func() {
					cutDone.Store(true)
					c.net.partition([]uint64{down}, others)
				})
				c.start(down)
				c.until(300, "neither cut nor caught up", func() bool {
					got, _, _ := c.nodes[down].sm.state()
					return cutDone.Load() || len(got) == 31
				})
				image := cut()
				c.stop(down)
				c.net.heal()
				_, hasSnap, err := readSnapshot(image, c.config(c.nodes[down]).Dir)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("cut at write %d: %v; snapshot file in the image: %v", k, cutDone.Load(), hasSnap)
				c.nodes[down].fs = image
				c.start(down)
				got := c.converged()
				if len(got) != 31 {
					t.Fatalf("applied %d payloads, want 31", len(got))
				}
				c.mustPropose(down, "after")
				c.converged()
			})
		})
	}
}

// With one follower cut off, every commit needs the other follower's
// acknowledgement. That follower loses power in the middle of its writes
// (at each of its k-th writes), pausing there long enough for a commit it
// already acknowledged to reach the client if it had acknowledged before
// its entries were durable. After a restart of all three, the old leader
// is kept away: the two followers elect one of them, and every proposal
// acknowledged before the cut must be there. (Sending a Ready's messages
// before its entries are fsynced fails this test.)
func TestPowerCutFollowerAcknowledgesOnlyDurable(t *testing.T) {
	for k := 1; k <= 8; k++ {
		t.Run(fmt.Sprintf("write%d", k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, 3, nil)
				lead := c.leader()
				c.mustPropose(lead, "first")
				c.converged()
				a := c.follower(lead)
				b := c.follower(lead, a)
				c.net.partition([]uint64{b}, []uint64{lead, a})
				l := &ledger{}
				acks := make(chan struct{}, 100)
				var before []string
				var cutDone atomic.Bool
				cut := c.nodes[a].fs.CrashAtWrite(k, memfs.CrashOptions{}, func() {
					// Give an acknowledgement sent ahead of this write the
					// time to come back as a result (fake time: it passes
					// once everything else is blocked).
					select {
					case <-acks:
					case <-time.After(2 * time.Second):
					}
					cutDone.Store(true)
					before = l.ackedNow()
					c.net.partition([]uint64{a}, []uint64{lead, b})
				})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					g := c.nodes[lead].g
					for i := 0; i < 10; i++ {
						p := fmt.Sprintf("p%d", i)
						if _, err := g.Propose(context.Background(), []byte(p)); err != nil {
							return
						}
						l.mu.Lock()
						l.acked = append(l.acked, p)
						l.mu.Unlock()
						acks <- struct{}{}
					}
				}()
				c.until(300, "no cut", cutDone.Load)
				images := map[uint64]*memfs.FS{a: cut(), lead: c.nodes[lead].fs.Crash(memfs.CrashOptions{}), b: c.nodes[b].fs.Crash(memfs.CrashOptions{})}
				for _, id := range c.ids {
					c.stop(id)
				}
				wg.Wait()
				c.net.heal()
				for _, id := range []uint64{a, b} {
					c.nodes[id].fs = images[id]
					c.start(id)
				}
				got := c.converged()
				t.Logf("cut at write %d of node %d: acknowledged before %v, after restart without the leader %v", k, a, before, got)
				for _, p := range append([]string{"first"}, before...) {
					if !slices.Contains(got, p) {
						t.Fatalf("acknowledged %s lost: the followers hold %v", p, got)
					}
				}
			})
		})
	}
}

// A power cut at each file write of a first Start (the bootstrap: its
// conf-change entries, then its hard state) leaves a directory that
// starts, elects and commits. (A cut between the entries and the hard
// state left a group with no voters, which never elected.)
func TestPowerCutDuringBootstrap(t *testing.T) {
	for k := 1; k <= 12; k++ {
		t.Run(fmt.Sprintf("write%d", k), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := &cluster{t: t, net: &memNet{groups: map[uint64]*Group{}, cut: map[[2]uint64]bool{}}, nodes: map[uint64]*testNode{}, ids: []uint64{1}}
				fs := memfs.New()
				if err := fs.MkdirAll("/data"); err != nil {
					t.Fatal(err)
				}
				if err := fs.SyncDir("/"); err != nil {
					t.Fatal(err)
				}
				c.nodes[1] = &testNode{id: 1, fs: fs}
				cut := fs.CrashAtWrite(k, memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}, nil)
				c.start(1)
				synctest.Wait()
				image := cut()
				c.stop(1)
				c.nodes[1].fs = image
				c.start(1)
				defer c.stop(1)
				c.leader()
				c.mustPropose(1, "x")
			})
		})
	}
}

// What a node acknowledged it applies again as soon as it restarts, before
// any election: its commit index on disk covers every proposal it
// answered (a power cut right after the answers, unsynced bytes lost).
// Proposals on a follower too, whose commit index otherwise lags.
func TestRestartReplaysAcknowledgedBeforeElection(t *testing.T) {
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				c := newCluster(t, n, nil)
				lead := c.leader()
				proposer := lead
				if n > 1 {
					proposer = c.follower(lead)
				}
				var acked []string
				for i := 0; i < 5; i++ {
					p := fmt.Sprintf("p%d", i)
					c.mustPropose(proposer, p)
					acked = append(acked, p)
				}
				image := c.nodes[proposer].fs.Crash(memfs.CrashOptions{})
				for _, id := range c.ids {
					c.stop(id)
				}
				c.nodes[proposer].fs = image
				c.start(proposer)
				synctest.Wait() // no tick: no election, no leader to learn a commit from
				got, _, _ := c.nodes[proposer].sm.state()
				if !slices.Equal(got, acked) {
					t.Fatalf("node %d replayed %v at restart, acknowledged %v", proposer, got, acked)
				}
			})
		})
	}
}
