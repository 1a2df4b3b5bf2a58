package metadata_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/raftgroup"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// The replicated metadata store (the state machine of the metadata quorum)
// driven by scripts in testdata/replicated, in fake time (testing/synctest):
// three or five nodes, each a metadata.Store applied by a raftgroup.Group on
// its own memfs, connected by an in-memory network that a script can cut.
// A script line is one command:
//
//	cluster <n> [snapshot=<entries> keep=<entries>]   first line: start n nodes
//	create <node> <topic> <partitions> [fails]         CreateTopics through node's store
//	register <node> <broker>                           RegisterBroker (node proposes)
//	fence <node> <broker> true|false [fails]           FenceBroker
//	stop <node> [as <name>] / start <node>             a node's process goes / comes back on its disk
//	isolate <node> / heal                              cut a node off both ways / restore every link
//	elect                                              tick until the nodes not cut off agree on a leader
//	tick <n> / converge                                ticks; tick until every running store agrees
//	check <node>|all topics <a,b,...>|-                the topics (sorted), - for none
//	check <node>|all brokers <1,2*,...>                registered brokers, * = fenced
//	check <node> restored                              the node restored a snapshot from its leader
//
// <node> is a number, leader, follower (a running non-leader), or $name
// saved by "stop ... as name". Every command fails the test when what it
// does fails unexpectedly.
func TestReplicatedScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "replicated", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			synctest.Test(t, func(t *testing.T) { runScript(t, string(b)) })
		})
	}
}

// countingSM counts the snapshots a store restored from its leader (after
// Start's own restore).
type countingSM struct {
	*metadata.Store
	mu       sync.Mutex
	started  bool
	restores int
}

func (c *countingSM) Restore(index uint64, data []byte) error {
	c.mu.Lock()
	if c.started {
		c.restores++
	}
	c.mu.Unlock()
	return c.Store.Restore(index, data)
}

// lateProposer hands proposals to the group once it exists.
type lateProposer struct {
	mu sync.Mutex
	g  *raftgroup.Group
}

func (p *lateProposer) Propose(ctx context.Context, payload []byte) (any, error) {
	p.mu.Lock()
	g := p.g
	p.mu.Unlock()
	return g.Propose(ctx, payload)
}

type mdNode struct {
	id   uint64
	fs   *memfs.FS
	sm   *countingSM
	tick chan time.Time
	g    *raftgroup.Group
}

type mdCluster struct {
	t              *testing.T
	ids            []uint64
	nodes          map[uint64]*mdNode
	names          map[string]uint64
	mu             sync.Mutex // guards cut, and the groups the network delivers to
	cut            map[[2]uint64]bool
	snapEntries    uint64
	keepEntries    uint64
	proposeTimeout int
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func (c *mdCluster) send(from uint64) func([]*raftpb.Message) {
	return func(msgs []*raftpb.Message) {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, m := range msgs {
			if c.cut[[2]uint64{from, m.GetTo()}] {
				continue
			}
			if nd := c.nodes[m.GetTo()]; nd != nil && nd.g != nil {
				nd.g.Step(proto.CloneOf(m))
			}
		}
	}
}

func (c *mdCluster) start(id uint64) {
	c.t.Helper()
	nd := c.nodes[id]
	p := &lateProposer{}
	nd.sm = &countingSM{Store: metadata.NewReplicatedStore(p, time.Hour)}
	nd.tick = make(chan time.Time)
	g, err := raftgroup.Start(raftgroup.Config{
		ID: id, Voters: c.ids, Dir: "/data/__cluster_metadata-0", FS: nd.fs, SM: nd.sm, Send: c.send(id), Tick: nd.tick,
		SnapshotEntries: c.snapEntries, KeepEntries: c.keepEntries, ProposalTimeoutTicks: c.proposeTimeout, Logger: quiet,
	})
	if err != nil {
		c.t.Fatalf("start node %d: %v", id, err)
	}
	p.mu.Lock()
	p.g = g
	p.mu.Unlock()
	nd.sm.mu.Lock()
	nd.sm.started = true
	nd.sm.mu.Unlock()
	c.mu.Lock()
	nd.g = g
	c.mu.Unlock()
}

func (c *mdCluster) stop(id uint64) {
	nd := c.nodes[id]
	c.mu.Lock()
	g := nd.g
	nd.g = nil
	c.mu.Unlock()
	g.Stop()
}

func (c *mdCluster) tick() {
	for _, id := range c.ids {
		if nd := c.nodes[id]; nd.g != nil {
			nd.tick <- time.Time{}
		}
	}
	synctest.Wait()
}

func (c *mdCluster) until(limit int, what string, cond func() bool) {
	c.t.Helper()
	synctest.Wait()
	for i := 0; !cond(); i++ {
		if i == limit {
			c.t.Fatalf("after %d ticks: %s", limit, what)
		}
		c.tick()
	}
}

func (c *mdCluster) running() []uint64 {
	var out []uint64
	for _, id := range c.ids {
		if c.nodes[id].g != nil {
			out = append(out, id)
		}
	}
	return out
}

// leader ticks until the running nodes that can reach a majority agree
// on a running leader.
func (c *mdCluster) leader() uint64 {
	c.t.Helper()
	var lead uint64
	c.until(500, "no leader", func() bool {
		for _, id := range c.running() {
			if st := c.nodes[id].g.Status(); st.State == "StateLeader" {
				lead = id
				return true
			}
		}
		return false
	})
	return lead
}

func (c *mdCluster) node(ref string) uint64 {
	c.t.Helper()
	switch {
	case ref == "leader":
		return c.leader()
	case ref == "follower":
		lead := c.leader()
		for _, id := range c.running() {
			if id != lead {
				return id
			}
		}
		c.t.Fatal("no running follower")
	case strings.HasPrefix(ref, "$"):
		id, ok := c.names[ref[1:]]
		if !ok {
			c.t.Fatalf("no node saved as %s", ref)
		}
		return id
	}
	n, err := strconv.Atoi(ref)
	if err != nil || c.nodes[uint64(n)] == nil {
		c.t.Fatalf("no node %q", ref)
	}
	return uint64(n)
}

// commit runs f (a store call that proposes) in the bubble and ticks until
// it returns.
func (c *mdCluster) commit(what string, f func() error) error {
	c.t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	var err error
	c.until(c.proposeTimeout+50, what+" unanswered", func() bool {
		select {
		case err = <-done:
			return true
		default:
			return false
		}
	})
	return err
}

// view is what a store holds, comparable across nodes.
func view(s *metadata.Store) string {
	type topic struct {
		Name       string
		ID         metadata.TopicID
		Partitions int32
		Replicas   [][]int32
	}
	var ts []topic
	for _, t := range s.Topics() {
		ts = append(ts, topic{t.Name, t.ID, t.Partitions, t.Replicas})
	}
	slices.SortFunc(ts, func(a, b topic) int { return strings.Compare(a.Name, b.Name) })
	b, _ := json.Marshal(struct {
		Topics  []topic
		Brokers []metadata.BrokerInfo
	}{ts, s.Brokers()})
	return string(b)
}

func runScript(t *testing.T, script string) {
	c := &mdCluster{t: t, nodes: map[uint64]*mdNode{}, names: map[string]uint64{}, cut: map[[2]uint64]bool{},
		snapEntries: 10_000, keepEntries: 1_000, proposeTimeout: 50}
	t.Cleanup(func() {
		for _, id := range c.running() {
			c.stop(id)
		}
	})
	for ln, line := range strings.Split(script, "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		where := fmt.Sprintf("line %d (%s)", ln+1, strings.TrimSpace(line))
		fail := func(format string, args ...any) { t.Fatalf(where+": "+format, args...) }
		arg := func(i int) string {
			if i >= len(f) {
				fail("missing argument %d", i)
			}
			return f[i]
		}
		num := func(i int) int {
			n, err := strconv.Atoi(arg(i))
			if err != nil {
				fail("%v", err)
			}
			return n
		}
		switch f[0] {
		case "cluster":
			for _, kv := range f[2:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.Atoi(v)
				switch k {
				case "snapshot":
					c.snapEntries = uint64(n)
				case "keep":
					c.keepEntries = uint64(n)
				default:
					fail("unknown option %s", k)
				}
			}
			for i := 1; i <= num(1); i++ {
				c.ids = append(c.ids, uint64(i))
				c.nodes[uint64(i)] = &mdNode{id: uint64(i), fs: memfs.New()}
			}
			for _, id := range c.ids {
				c.start(id)
			}
		case "create":
			id := c.node(arg(1))
			topic := metadata.Topic{Name: arg(2), Partitions: int32(num(3)), Replicas: make([][]int32, num(3))}
			for i := range topic.Replicas {
				topic.Replicas[i] = []int32{int32(id - 1)}
			}
			err := c.commit(where, func() error { _, err := c.nodes[id].sm.CreateTopics([]metadata.Topic{topic}); return err })
			if wantFail := len(f) > 4 && f[4] == "fails"; wantFail != (err != nil) {
				fail("error %v", err)
			} else if wantFail && !errors.Is(err, metadata.ErrNoQuorum) && !errors.Is(err, metadata.ErrTopicExists) {
				fail("error %v: want ErrNoQuorum or ErrTopicExists", err)
			}
		case "register":
			id := c.node(arg(1))
			b := metadata.BrokerInfo{ID: int32(num(2)), Host: "localhost", Port: int32(9092 + num(2)), Incarnation: "i" + arg(2)}
			if err := c.commit(where, func() error { return c.nodes[id].sm.RegisterBroker(b) }); err != nil {
				fail("%v", err)
			}
		case "fence":
			id := c.node(arg(1))
			fenced := arg(3) == "true"
			err := c.commit(where, func() error { return c.nodes[id].sm.FenceBroker(int32(num(2)), fenced) })
			if wantFail := len(f) > 4 && f[4] == "fails"; wantFail != (err != nil) || (wantFail && !errors.Is(err, metadata.ErrNoQuorum)) {
				fail("error %v", err)
			}
		case "stop":
			id := c.node(arg(1))
			if len(f) == 4 && f[2] == "as" {
				c.names[f[3]] = id
			}
			c.stop(id)
		case "start":
			c.start(c.node(arg(1)))
		case "isolate":
			id := c.node(arg(1))
			c.mu.Lock()
			for _, o := range c.ids {
				if o != id {
					c.cut[[2]uint64{id, o}], c.cut[[2]uint64{o, id}] = true, true
				}
			}
			c.cut[[2]uint64{id, 0}] = true // marks it isolated (no node 0)
			c.mu.Unlock()
		case "elect":
			// Until the nodes not cut off agree on a leader among them.
			c.until(500, where+": no leader among the connected nodes", func() bool {
				c.mu.Lock()
				defer c.mu.Unlock()
				var lead uint64
				for _, id := range c.running() {
					if c.cut[[2]uint64{id, 0}] {
						continue
					}
					l := c.nodes[id].g.Leader()
					if l == 0 || (lead != 0 && l != lead) || c.cut[[2]uint64{l, 0}] {
						return false
					}
					lead = l
				}
				return lead != 0
			})
		case "heal":
			c.mu.Lock()
			c.cut = map[[2]uint64]bool{}
			c.mu.Unlock()
		case "tick":
			for i := 0; i < num(1); i++ {
				c.tick()
			}
		case "converge":
			c.leader()
			c.until(500, where+": stores differ", func() bool {
				run := c.running()
				want := view(c.nodes[run[0]].sm.Store)
				for _, id := range run[1:] {
					if view(c.nodes[id].sm.Store) != want {
						return false
					}
				}
				return true
			})
		case "check":
			ids := c.running()
			if arg(1) != "all" {
				ids = []uint64{c.node(arg(1))}
			}
			for _, id := range ids {
				s := c.nodes[id].sm
				switch arg(2) {
				case "topics":
					var names []string
					for _, tp := range s.Topics() {
						names = append(names, tp.Name)
					}
					slices.Sort(names)
					if got := strings.Join(names, ","); got != strings.TrimPrefix(arg(3), "-") {
						fail("node %d topics %q", id, got)
					}
				case "brokers":
					var bs []string
					for _, b := range s.Brokers() {
						x := strconv.Itoa(int(b.ID))
						if b.Fenced {
							x += "*"
						}
						bs = append(bs, x)
					}
					if got := strings.Join(bs, ","); got != arg(3) {
						fail("node %d brokers %q", id, got)
					}
				case "restored":
					s.mu.Lock()
					n := s.restores
					s.mu.Unlock()
					if n == 0 {
						fail("node %d restored no snapshot from its leader", id)
					}
				default:
					fail("unknown check %s", arg(2))
				}
			}
		default:
			fail("unknown command")
		}
	}
}
