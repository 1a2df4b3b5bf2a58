package cluster

import (
	"errors"
	"log/slog"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// The offsets topic of a cluster gets offsets.topic.replication.factor
// replicas (3 by default), capped by the cluster's size, and is not
// created while fewer brokers are alive than that (Kafka's rule: the
// client retries FindCoordinator) rather than created with fewer copies
// for good. Before issue 18's internal topics it always had one.
func TestOffsetsTopicReplicationFactor(t *testing.T) {
	for _, tc := range []struct {
		name    string
		props   map[string]string
		brokers []int32
		want    int // replicas of __consumer_offsets-0; 0: not created
	}{
		{"default of 3, three brokers", nil, []int32{1, 2, 3}, 3},
		{"default of 3, a cluster of two", nil, []int32{1, 2}, 2},
		{"set to 2", map[string]string{"offsets.topic.replication.factor": "2"}, []int32{1, 2, 3}, 2},
		{"three voters, two brokers up", map[string]string{"node.id": "1", "process.roles": "broker,controller",
			"controller.quorum.voters": "1@localhost:19093,2@localhost:29093,3@localhost:39093"}, []int32{1, 2}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bc, err := metadata.NewBrokerConfig(tc.props)
			if err != nil {
				t.Fatal(err)
			}
			p := &directProposer{}
			p.store = metadata.NewReplicatedStore(p, time.Minute)
			c, err := Open(Config{DataDir: "/data", FS: memfs.New(), Broker: bc, Logger: slog.New(slog.DiscardHandler),
				Quorum: leaderQuorum{id: 1}, RaftSend: func(uint64, *raftpb.Message) {},
				OpenMetadata: func(string) (*metadata.Store, error) { return p.store, nil }})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			for _, id := range tc.brokers {
				if err := c.Register(metadata.BrokerInfo{ID: id, Host: "localhost", Port: 9092 + id, Incarnation: "a"}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = c.OffsetsLeader()
			off, ok := c.Topic(OffsetsTopic)
			if tc.want == 0 {
				if ok || !errors.Is(err, metadata.ErrInvalidReplicationFactor) {
					t.Fatalf("created with too few brokers alive: %v, %v", off.Replicas, err)
				}
				return
			}
			if !ok {
				t.Fatalf("offsets topic not created: %v", err)
			}
			if len(off.Replicas) != 1 || len(off.Replicas[0]) != tc.want {
				t.Fatalf("replicas %v, want %d of partition 0", off.Replicas, tc.want)
			}
		})
	}
}
