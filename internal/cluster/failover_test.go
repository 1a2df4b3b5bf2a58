package cluster

import (
	"context"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestFailingOverRules: a Metadata answer is held only while a partition's
// recorded leader is on a node down from here for less than the window
// and a majority of its replicas are up; not once the new leader is
// recorded, the node is back, the majority is gone, or the node has been
// down for longer than the window (no standing delay).
func TestFailingOverRules(t *testing.T) {
	var mu sync.Mutex
	down := map[int32]bool{}
	setDown := func(n int32, d bool) { mu.Lock(); down[n] = d; mu.Unlock() }
	c, p := openReplicatedNode(t, 4, func(cfg *Config) {
		cfg.PeerConnected = func(n int32) bool { mu.Lock(); defer mu.Unlock(); return !down[n] }
	})
	registerBrokers(t, c, 1, 2, 3) // this node (4) holds no replica
	res := c.CreateTopics([]TopicSpec{{Name: "t", Partitions: 1, ReplicationFactor: 3, Assignment: [][]int32{{1, 2, 3}}}}, false)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	lead := func(node, epoch int32) {
		t.Helper()
		if err := p.store.SetPartitionLeader(metadata.PartitionLeader{Topic: "t", TopicID: res.Topic.ID, Partition: 0, Leader: node, Epoch: epoch, ISR: []int32{1, 2, 3}}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	lead(1, 2)
	names := []string{"t"}
	check := func(what string, want bool) {
		t.Helper()
		if got := c.FailingOver(names); got != want {
			t.Fatalf("%s: FailingOver %v, want %v", what, got, want)
		}
	}
	check("every node up", false)
	setDown(1, true)
	check("the leader's node just went down, two of three replicas up", true)
	setDown(2, true)
	check("a majority of the replicas down: no election to wait for", false)
	setDown(2, false)
	check("the majority back", true)
	lead(2, 3)
	check("the new leader recorded", false)
	lead(1, 2) // an older epoch is skipped on apply
	check("an older record does not bring the old leader back", false)

	// A leader down for longer than the window: answered at once.
	setDown(1, false)
	lead(3, 4)
	setDown(3, true)
	check("the leader's node just went down", true)
	c.downAt.mu.Lock()
	c.downAt.at[3] = time.Now().Add(-failoverWindow - time.Second)
	c.downAt.mu.Unlock()
	check("the leader's node down for longer than the window", false)
	setDown(3, false)
	check("the node back", false)
	setDown(3, true)
	check("down again: a new window", true)
}

// TestMetadataLeaderNodesAndProbe: the nodes to probe before a Metadata
// answer are the other nodes recorded as leaders of the listed
// partitions, each once, none down from here or registered without
// probes (an older Strom), never this node; a probe
// that a node does not answer makes ProbeLeaders false, and it waits at
// most its bound.
func TestMetadataLeaderNodesAndProbe(t *testing.T) {
	var mu sync.Mutex
	down, mute := map[int32]bool{}, map[int32]bool{}
	c, p := openReplicatedNode(t, 1, func(cfg *Config) {
		cfg.PeerConnected = func(n int32) bool { mu.Lock(); defer mu.Unlock(); return !down[n] }
		cfg.PeerProbe = func(ctx context.Context, n int32) bool {
			mu.Lock()
			m := mute[n]
			mu.Unlock()
			if m {
				<-ctx.Done()
				return false
			}
			return true
		}
	})
	registerBrokers(t, c, 1, 2, 3)
	res := c.CreateTopics([]TopicSpec{{Name: "t", Partitions: 3, ReplicationFactor: 3, Assignment: [][]int32{{1, 2, 3}, {2, 3, 1}, {3, 1, 2}}}}, false)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	one := c.CreateTopics([]TopicSpec{{Name: "one", Partitions: 1, ReplicationFactor: 1, Assignment: [][]int32{{2}}}}, false)[0]
	if one.Err != nil {
		t.Fatal(one.Err)
	}
	lead := func(i, node int32) {
		t.Helper()
		if err := p.store.SetPartitionLeader(metadata.PartitionLeader{Topic: "t", TopicID: res.Topic.ID, Partition: i, Leader: node, Epoch: 2, ISR: []int32{1, 2, 3}}, time.Second); err != nil {
			t.Fatal(err)
		}
	}
	lead(0, 1)
	lead(1, 2)
	lead(2, 2)
	nodes := c.MetadataLeaderNodes([]string{"t", "one", "unknown"})
	if !slices.Equal(nodes, []int32{2}) {
		t.Fatalf("nodes to probe %v, want [2] (node 1 is this one, 2 leads two partitions, a single replica is not probed)", nodes)
	}
	lead(2, 3)
	if nodes = c.MetadataLeaderNodes([]string{"t"}); len(nodes) != 2 {
		t.Fatalf("nodes to probe %v, want 2 and 3", nodes)
	}
	if !c.ProbeLeaders(context.Background(), nodes, time.Minute) {
		t.Fatal("every node answered, ProbeLeaders false")
	}
	mu.Lock()
	mute[3] = true
	mu.Unlock()
	start := time.Now()
	if c.ProbeLeaders(context.Background(), nodes, 50*time.Millisecond) {
		t.Fatal("node 3 did not answer, ProbeLeaders true")
	}
	if d := time.Since(start); d < 50*time.Millisecond || d > 10*time.Second {
		t.Fatalf("ProbeLeaders with a mute node returned after %v, want its 50 ms bound", d)
	}
	mu.Lock()
	down[3] = true
	mu.Unlock()
	if nodes = c.MetadataLeaderNodes([]string{"t"}); !slices.Equal(nodes, []int32{2}) {
		t.Fatalf("nodes to probe with node 3 down %v, want [2]", nodes)
	}
	// Node 3 back as a broker of an older Strom, whose raft transport
	// reads a probe as a bad frame: it is not probed.
	mu.Lock()
	down[3] = false
	mu.Unlock()
	if err := c.Register(metadata.BrokerInfo{ID: 3, Host: "localhost", Port: 9095, Incarnation: "older"}); err != nil {
		t.Fatal(err)
	}
	if nodes = c.MetadataLeaderNodes([]string{"t"}); !slices.Equal(nodes, []int32{2}) {
		t.Fatalf("nodes to probe with node 3 registered without probes %v, want [2]", nodes)
	}
}

// TestElectionPending: a replica here that learned of a term newer than
// the recorded leader's epoch, with no entry of that term committed yet,
// says an election is under way (the recorded leader must not be named
// as if current); the recorded leader's own term, or a newer leader
// confirmed by a committed entry of its term, is not pending.
func TestElectionPending(t *testing.T) {
	c, p := openReplicatedNode(t, 1, func(cfg *Config) { cfg.PeerConnected = func(int32) bool { return true } })
	registerBrokers(t, c, 1, 2, 3)
	res := c.CreateTopics([]TopicSpec{{Name: "t", Partitions: 1, ReplicationFactor: 3, Assignment: [][]int32{{2, 1, 3}}}}, false)[0]
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	topic := res.Topic
	g := GroupID(topic.ID, 0)
	c.reps.mu.RLock()
	h := c.reps.groups[g]
	c.reps.mu.RUnlock()
	if h == nil {
		t.Fatal("no replica of t-0 on this node")
	}
	// Node 2 (raft id 3) recorded as the leader at epoch 2.
	if err := p.store.SetPartitionLeader(metadata.PartitionLeader{Topic: "t", TopicID: topic.ID, Partition: 0, Leader: 2, Epoch: 2, ISR: []int32{1, 2, 3}}, time.Second); err != nil {
		t.Fatal(err)
	}
	u := proto.Uint64
	step := func(m *raftpb.Message) { m.To = u(2); c.StepReplica(g, m) }
	until := func(what string, want bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for c.electionPending(&topic, 0, 2) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: electionPending %v, want %v (known leader %+v)", what, !want, want, h.r.Status())
			}
			time.Sleep(time.Millisecond) // polling the replica's loop with a deadline
		}
	}
	until("before any leader is heard from", false)
	step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(3), Term: u(2)})
	until("the recorded leader heard at its own epoch", false)
	step(&raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: u(4), Term: u(5)})
	until("node 3 leads term 5, nothing of term 5 committed", true)
	last := h.r.Status().LastIndex
	step(&raftpb.Message{Type: raftpb.MsgApp.Enum(), From: u(4), Term: u(5), LogTerm: u(1), Index: u(last),
		Entries: []*raftpb.Entry{{Term: u(5), Index: u(last + 1), Type: raftpb.EntryNormal.Enum()}}, Commit: u(last + 1)})
	until("an entry of term 5 committed: node 3 confirmed", false)
}

// openReplicatedNode opens node id of a cluster on a memfs, its metadata a
// directProposer's store whose quorum node 1 leads; edit may set more of
// the Config. It is closed when the test ends.
func openReplicatedNode(t *testing.T, id int32, edit func(*Config)) (*Cluster, *directProposer) {
	t.Helper()
	bc, err := metadata.NewBrokerConfig(map[string]string{"node.id": strconv.Itoa(int(id))})
	if err != nil {
		t.Fatal(err)
	}
	p := &directProposer{}
	p.store = metadata.NewReplicatedStore(p, time.Minute)
	cfg := Config{DataDir: "/data", FS: memfs.New(), Broker: bc, Logger: slog.New(slog.DiscardHandler),
		Quorum: leaderQuorum{id: 1}, RaftSend: func(uint64, *raftpb.Message) {},
		OpenMetadata: func(string) (*metadata.Store, error) { return p.store, nil }}
	if edit != nil {
		edit(&cfg)
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, p
}

// registerBrokers registers brokers ids, each answering probes.
func registerBrokers(t *testing.T, c *Cluster, ids ...int32) {
	t.Helper()
	for _, id := range ids {
		if err := c.Register(metadata.BrokerInfo{ID: id, Host: "localhost", Port: 9092 + id, Incarnation: "a", AnswersProbes: true}); err != nil {
			t.Fatal(err)
		}
	}
}
