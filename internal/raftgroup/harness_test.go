package raftgroup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// testSM records the payloads it applied, in order. Apply checks that
// indexes only grow (an entry applied twice or out of order fails).
type testSM struct {
	mu       sync.Mutex
	last     uint64
	payloads []string
	restores int
	bad      string
}

type smState struct {
	Last     uint64
	Payloads []string
}

func (s *testSM) Apply(index uint64, payload []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.bad == "panic on next apply" {
		panic("test state machine: asked to panic")
	}
	if index <= s.last && s.bad == "" {
		s.bad = fmt.Sprintf("applied index %d after %d", index, s.last)
	}
	s.last = index
	s.payloads = append(s.payloads, string(payload))
	return fmt.Sprintf("%d:%s", index, payload)
}

func (s *testSM) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return json.Marshal(smState{Last: s.last, Payloads: s.payloads})
}

func (s *testSM) Restore(index uint64, data []byte) error {
	var st smState
	if err := json.Unmarshal(data, &st); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.last, s.payloads = index, st.Payloads
	s.restores++
	return nil
}

func (s *testSM) state() (payloads []string, restores int, bad string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.payloads), s.restores, s.bad
}

// memNet is an in-memory transport: it delivers a copy of each message (as
// a wire would) to the destination's Step, unless the link is cut.
type memNet struct {
	mu     sync.Mutex
	groups map[uint64]*Group
	cut    map[[2]uint64]bool // from, to
}

func (n *memNet) sender(from uint64) func([]*raftpb.Message) {
	return func(msgs []*raftpb.Message) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, m := range msgs {
			if n.cut[[2]uint64{from, m.GetTo()}] {
				continue
			}
			if g := n.groups[m.GetTo()]; g != nil {
				g.Step(proto.CloneOf(m))
			}
		}
	}
}

func (n *memNet) set(id uint64, g *Group) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if g == nil {
		delete(n.groups, id)
	} else {
		n.groups[id] = g
	}
}

// partition cuts every link between a and the others (both ways); heal
// restores all links.
func (n *memNet) partition(a, b []uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, x := range a {
		for _, y := range b {
			n.cut[[2]uint64{x, y}] = true
			n.cut[[2]uint64{y, x}] = true
		}
	}
}

func (n *memNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]uint64]bool{}
}

type testNode struct {
	id   uint64
	fs   *memfs.FS
	sm   *testSM
	tick chan time.Time
	g    *Group // nil while down
}

type cluster struct {
	t      *testing.T
	net    *memNet
	nodes  map[uint64]*testNode
	ids    []uint64
	modify func(*Config)
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// newCluster starts n groups (raft ids 1..n) on their own memfs; it must
// run inside a synctest bubble. modify adjusts each Config.
func newCluster(t *testing.T, n int, modify func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, net: &memNet{groups: map[uint64]*Group{}, cut: map[[2]uint64]bool{}}, nodes: map[uint64]*testNode{}, modify: modify}
	for i := 1; i <= n; i++ {
		c.ids = append(c.ids, uint64(i))
	}
	for _, id := range c.ids {
		fs := memfs.New()
		// The group's parent directory exists durably, as the data
		// directory does for the broker.
		if err := fs.MkdirAll("/data"); err != nil {
			t.Fatal(err)
		}
		if err := fs.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		c.nodes[id] = &testNode{id: id, fs: fs}
		c.start(id)
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.g != nil {
				nd.g.Stop()
			}
		}
	})
	return c
}

func (c *cluster) config(nd *testNode) Config {
	cfg := Config{
		Group: 0, ID: nd.id, Voters: c.ids, Dir: "/data/__cluster_metadata-0", FS: nd.fs, SM: nd.sm,
		Send: c.net.sender(nd.id), Tick: nd.tick, Logger: quiet,
	}
	if c.modify != nil {
		c.modify(&cfg)
	}
	return cfg
}

// start starts node id's group on its filesystem, with a new state
// machine that the group restores from its directory.
func (c *cluster) start(id uint64) {
	c.t.Helper()
	nd := c.nodes[id]
	nd.sm = &testSM{}
	nd.tick = make(chan time.Time)
	g, err := Start(c.config(nd))
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	nd.g = g
	c.net.set(id, g)
}

func (c *cluster) stop(id uint64) {
	nd := c.nodes[id]
	c.net.set(id, nil)
	nd.g.Stop()
	nd.g = nil
}

// tick gives every running group one tick, then lets everything the
// ticks caused happen (messages, appends, applies) before returning.
func (c *cluster) tick() {
	for _, id := range c.ids {
		if nd := c.nodes[id]; nd.g != nil {
			nd.tick <- time.Time{}
		}
	}
	synctest.Wait()
}

// until ticks until cond holds, failing after limit ticks.
func (c *cluster) until(limit int, what string, cond func() bool) {
	c.t.Helper()
	synctest.Wait()
	for i := 0; !cond(); i++ {
		if i == limit {
			c.t.Fatalf("after %d ticks: %s", limit, what)
		}
		c.tick()
	}
}

// leader ticks until the running groups agree on a running leader, and
// returns it.
func (c *cluster) leader() uint64 {
	c.t.Helper()
	var lead uint64
	c.until(500, "no leader agreed on", func() bool {
		lead = 0
		for _, id := range c.ids {
			nd := c.nodes[id]
			if nd.g == nil {
				continue
			}
			l := nd.g.Leader()
			if l == 0 || (lead != 0 && l != lead) || c.nodes[l] == nil || c.nodes[l].g == nil {
				return false
			}
			lead = l
		}
		return lead != 0 && c.nodes[lead].g.Status().State == "StateLeader"
	})
	return lead
}

type proposeResult struct {
	payload string
	v       any
	err     error
}

// proposeAsync proposes on node id from a goroutine of the bubble.
func (c *cluster) proposeAsync(id uint64, payload string, out chan<- proposeResult) {
	g := c.nodes[id].g
	go func() {
		v, err := g.Propose(context.Background(), []byte(payload))
		out <- proposeResult{payload, v, err}
	}()
}

// propose proposes on node id and returns its result once everything has
// settled (ticking if a commit needs it).
func (c *cluster) propose(id uint64, payload string) (any, error) {
	c.t.Helper()
	out := make(chan proposeResult, 1)
	c.proposeAsync(id, payload, out)
	var r proposeResult
	c.until(300, "proposal "+payload+" unanswered", func() bool {
		select {
		case r = <-out:
			return true
		default:
			return false
		}
	})
	return r.v, r.err
}

// mustPropose proposes and checks the result is the state machine's for
// this payload.
func (c *cluster) mustPropose(id uint64, payload string) {
	c.t.Helper()
	v, err := c.propose(id, payload)
	if err != nil {
		c.t.Fatalf("propose %s on node %d: %v", payload, id, err)
	}
	if s, _ := v.(string); !hasPayload(s, payload) {
		c.t.Fatalf("propose %s on node %d: result %v", payload, id, v)
	}
}

func hasPayload(result, payload string) bool {
	var idx uint64
	var p string
	n, _ := fmt.Sscanf(result, "%d:%s", &idx, &p)
	return n == 2 && idx > 0 && p == payload
}

// converged ticks until every running node applied the same payloads as
// the leader, and returns them.
func (c *cluster) converged() []string {
	c.t.Helper()
	lead := c.leader()
	var want []string
	c.until(500, "state machines differ", func() bool {
		want, _, _ = c.nodes[lead].sm.state()
		for _, id := range c.ids {
			nd := c.nodes[id]
			if nd.g == nil {
				continue
			}
			got, _, bad := nd.sm.state()
			if bad != "" {
				c.t.Fatalf("node %d: %s", id, bad)
			}
			if !slices.Equal(got, want) {
				return false
			}
		}
		return true
	})
	return want
}

func (c *cluster) follower(not ...uint64) uint64 {
	for _, id := range c.ids {
		if c.nodes[id].g != nil && !slices.Contains(not, id) && c.nodes[id].g.Leader() != id {
			return id
		}
	}
	c.t.Fatal("no running follower")
	return 0
}
