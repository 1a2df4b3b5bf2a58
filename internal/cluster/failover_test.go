package cluster

import (
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestFailingOverRules: a Metadata answer is held only while a partition's
// recorded leader is on a node down from here for less than the window
// and a majority of its replicas are up; not once the new leader is
// recorded, the node is back, the majority is gone, or the node has been
// down for longer than the window (no standing delay).
func TestFailingOverRules(t *testing.T) {
	bc, err := metadata.NewBrokerConfig(map[string]string{"node.id": "4"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	down := map[int32]bool{}
	setDown := func(n int32, d bool) { mu.Lock(); down[n] = d; mu.Unlock() }
	p := &directProposer{}
	p.store = metadata.NewReplicatedStore(p, time.Minute)
	c, err := Open(Config{DataDir: "/data", FS: memfs.New(), Broker: bc, Logger: slog.New(slog.DiscardHandler),
		Quorum: leaderQuorum{id: 1}, RaftSend: func(uint64, *raftpb.Message) {},
		PeerConnected: func(n int32) bool { mu.Lock(); defer mu.Unlock(); return !down[n] },
		OpenMetadata:  func(string) (*metadata.Store, error) { return p.store, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, id := range []int32{1, 2, 3} { // this node (4) holds no replica
		if err := c.Register(metadata.BrokerInfo{ID: id, Host: "localhost", Port: 9092 + id, Incarnation: "a"}); err != nil {
			t.Fatal(err)
		}
	}
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
