package console_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// kfakeEnv is a console on franz-go's fake cluster, which has consumer
// groups whatever the state of Strom's.
func kfakeEnv(t *testing.T, opts ...kfake.Opt) *testEnv {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.ListenFn(localListen)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return newEnvAt(t, c.ListenAddrs()[0])
}

type groupReply struct {
	Group, State string
	Members      int
	Lag          *int64
	Topics       []string
	MemberList   []struct{ ClientID string } `json:"member_list"`
	Partitions   []struct {
		Topic     string
		Partition int32
		Committed int64
		EndOffset int64 `json:"end_offset"`
		Lag       int64
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	e := kfakeEnv(t)
	topic := e.topic(2)
	var recs []*kgo.Record
	for i := range 10 {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 2), Value: fmt.Appendf(nil, "%d", i)})
	}
	cl, _ := kgo.NewClient(kgo.SeedBrokers(e.con.Brokers()...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// An empty group that committed 2 of partition 0's 5 records and all
	// of partition 1's.
	var offs kadm.Offsets
	offs.Add(kadm.Offset{Topic: topic, Partition: 0, At: 2, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: topic, Partition: 1, At: 5, LeaderEpoch: -1})
	if err := e.adm.CommitAllOffsets(context.Background(), "readers", offs); err != nil {
		t.Fatal(err)
	}

	var list struct{ Groups []groupReply }
	e.do("GET", "/api/v1/groups", nil, &list)
	if len(list.Groups) != 1 || list.Groups[0].Group != "readers" || list.Groups[0].Lag == nil || *list.Groups[0].Lag != 3 {
		t.Fatalf("groups %+v", list.Groups)
	}
	var g groupReply
	e.do("GET", "/api/v1/groups/readers", nil, &g)
	if len(g.Partitions) != 2 || g.Partitions[0].Lag != 3 || g.Partitions[0].Committed != 2 || g.Partitions[0].EndOffset != 5 || g.Partitions[1].Lag != 0 {
		t.Errorf("group %+v", g)
	}
	e.wantStatus("GET", "/api/v1/groups/nobody-here", nil, 404, "unknown_group")

	// Reset: a dry run changes nothing; then to earliest.
	var rr struct {
		DryRun  bool `json:"dry_run"`
		Offsets []struct {
			Partition        int32
			Previous, Offset int64
		}
	}
	e.do("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic, "to": "earliest", "dry_run": true}, &rr)
	if !rr.DryRun || len(rr.Offsets) != 2 || rr.Offsets[0].Previous != 2 || rr.Offsets[0].Offset != 0 {
		t.Errorf("dry run %+v", rr)
	}
	e.do("GET", "/api/v1/groups/readers", nil, &g)
	if *g.Lag != 3 {
		t.Errorf("dry run changed the lag to %d", *g.Lag)
	}
	e.do("POST", "/api/v1/groups/readers/reset", map[string]any{"to": "earliest"}, &rr)
	e.do("GET", "/api/v1/groups/readers", nil, &g)
	if *g.Lag != 10 {
		t.Errorf("lag after reset to earliest: %d", *g.Lag)
	}
	e.do("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic, "partitions": []int{1}, "to": "4"}, &rr)
	e.do("GET", "/api/v1/groups/readers", nil, &g)
	if g.Partitions[1].Committed != 4 || g.Partitions[0].Committed != 0 {
		t.Errorf("after reset of partition 1 to 4: %+v", g.Partitions)
	}
	e.wantStatus("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic, "to": "99"}, 400, "offset_out_of_range")
	e.wantStatus("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic, "to": "soon"}, 400, "bad_position")
	e.wantStatus("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic}, 400, "bad_position")
	e.wantStatus("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": topic, "partitions": []int{7}, "to": "earliest"}, 400, "bad_partition")
	e.wantStatus("POST", "/api/v1/groups/readers/reset", map[string]any{"topic": "nope", "to": "earliest"}, 404, "unknown_topic")
	e.wantStatus("POST", "/api/v1/groups/readers/reset", `{"to":`, 400, "bad_json")

	// A group with a live member cannot be reset.
	member, err := kgo.NewClient(kgo.SeedBrokers(e.con.Brokers()...), kgo.ConsumerGroup("live"), kgo.ConsumeTopics(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	go member.PollFetches(context.Background())
	eventually(t, 15*time.Second, func() error {
		var lg groupReply
		e.do("GET", "/api/v1/groups/live", nil, &lg)
		if lg.Members != 1 || lg.State != "Stable" {
			return fmt.Errorf("live group %+v", lg)
		}
		return nil
	})
	e.wantStatus("POST", "/api/v1/groups/live/reset", map[string]any{"topic": topic, "to": "earliest"}, 409, "group_not_empty")
}

// A cluster without the group APIs gets a 501 that says so, not a 502.
func TestGroupsUnsupported(t *testing.T) {
	t.Parallel()
	v := kversion.Stable()
	for _, k := range []kmsg.Key{kmsg.ListGroups, kmsg.DescribeGroups, kmsg.JoinGroup, kmsg.OffsetFetch} {
		v.SetMaxKeyVersion(k.Int16(), -1)
	}
	e := kfakeEnv(t, kfake.MaxVersions(v))
	var c struct {
		GroupsSupported bool `json:"groups_supported"`
	}
	if e.do("GET", "/api/v1/cluster", nil, &c); c.GroupsSupported {
		t.Error("cluster says groups_supported")
	}
	e.wantStatus("GET", "/api/v1/groups", nil, 501, "groups_unsupported")
	e.wantStatus("GET", "/api/v1/groups/g", nil, 501, "groups_unsupported")
	e.wantStatus("POST", "/api/v1/groups/g/reset", map[string]any{"to": "earliest"}, 501, "groups_unsupported")
	var s struct {
		GroupsError string `json:"groups_error"`
	}
	e.do("GET", "/api/v1/stats", nil, &s)
}
