package console

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// quorumResp builds a DescribeQuorum answer of one partition.
func quorumResp(code int16, leader int32, voters, observers [][3]int64) *kmsg.DescribeQuorumResponse {
	resp := kmsg.NewPtrDescribeQuorumResponse()
	t := kmsg.NewDescribeQuorumResponseTopic()
	t.Topic = metadataQuorumTopic
	p := kmsg.NewDescribeQuorumResponseTopicPartition()
	p.ErrorCode, p.LeaderID, p.LeaderEpoch, p.HighWatermark = code, leader, 7, 100
	rs := func(in [][3]int64) (out []kmsg.DescribeQuorumResponseTopicPartitionReplicaState) {
		for _, v := range in {
			r := kmsg.NewDescribeQuorumResponseTopicPartitionReplicaState()
			r.ReplicaID, r.LogEndOffset, r.LastFetchTimestamp, r.LastCaughtUpTimestamp = int32(v[0]), v[1], v[2], v[2]
			out = append(out, r)
		}
		return out
	}
	p.CurrentVoters, p.Observers = rs(voters), rs(observers)
	t.Partitions = append(t.Partitions, p)
	resp.Topics = append(resp.Topics, t)
	return resp
}

// TestQuorumFrom reads DescribeQuorum answers as the cluster page shows
// them: voters sorted with their lag behind the high watermark and unknown
// times as null, observers, a follower's redirect to the leader, a single
// node's "no quorum", and errors.
func TestQuorumFrom(t *testing.T) {
	q, next := quorumFrom(quorumResp(0, 2, [][3]int64{{3, 90, -1}, {1, 100, 1000}, {2, 120, 2000}}, [][3]int64{{4, 40, 500}}), 2)
	if next != -1 || !q.Available || q.Leader != 2 || q.Epoch != 7 || q.HighWatermark != 100 || len(q.Voters) != 3 || len(q.Observers) != 1 {
		t.Fatalf("quorum %+v next %d", q, next)
	}
	v := q.Voters
	if v[0].ID != 1 || v[0].Lag != 0 || v[1].ID != 2 || v[1].Lag != 0 || v[2].ID != 3 || v[2].Lag != 10 {
		t.Errorf("voters %+v", v)
	}
	if v[2].LastFetchMs != nil || v[1].LastFetchMs == nil || *v[1].LastFetchMs != 2000 {
		t.Errorf("fetch times %+v", v)
	}
	if o := q.Observers[0]; o.ID != 4 || o.Lag != 60 {
		t.Errorf("observer %+v", o)
	}

	if q, next = quorumFrom(quorumResp(kerr.NotLeaderForPartition.Code, 3, nil, nil), 1); next != 3 {
		t.Errorf("a follower's answer: next %d, quorum %+v", next, q)
	}
	if q, next = quorumFrom(quorumResp(kerr.NotLeaderForPartition.Code, 1, nil, nil), 1); next != -1 || q.Error == "" {
		t.Errorf("a broker naming itself as leader and refusing: next %d, quorum %+v", next, q)
	}
	if q, next = quorumFrom(quorumResp(kerr.UnknownTopicOrPartition.Code, -1, nil, nil), 1); next != -1 || q.Available || !strings.Contains(q.Message, "single node") || q.Error != "" {
		t.Errorf("single node: next %d, quorum %+v", next, q)
	}
	bad := quorumResp(0, 1, nil, nil)
	bad.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	if q, _ = quorumFrom(bad, 1); q.Available || !strings.Contains(q.Error, "CLUSTER_AUTHORIZATION_FAILED") {
		t.Errorf("refused: %+v", q)
	}
	empty := kmsg.NewPtrDescribeQuorumResponse()
	if q, _ = quorumFrom(empty, 1); q.Available || q.Error == "" {
		t.Errorf("malformed: %+v", q)
	}
}

// TestPartitionStates: under-replicated (ISR shorter than replicas) and
// offline (no leader) partitions, and replicas on brokers the cluster
// does not list.
func TestPartitionStates(t *testing.T) {
	tds := kadm.TopicDetails{
		"b": {Topic: "b", Partitions: kadm.PartitionDetails{
			0: {Partition: 0, Leader: 1, Replicas: []int32{1, 2, 3}, ISR: []int32{1, 2, 3}},
			1: {Partition: 1, Leader: 2, LeaderEpoch: 4, Replicas: []int32{2, 3, 4}, ISR: []int32{2}},
			2: {Partition: 2, Leader: -1, Replicas: []int32{4}, ISR: []int32{}, OfflineReplicas: []int32{4}, Err: kerr.LeaderNotAvailable},
		}},
		"a":    {Topic: "a", IsInternal: true, Partitions: kadm.PartitionDetails{0: {Partition: 0, Leader: 1, Replicas: []int32{1}, ISR: []int32{1}}}},
		"gone": {Topic: "gone", Err: kerr.UnknownTopicOrPartition},
	}
	out := clusterStatusJSON{Brokers: []brokerStatusJSON{{brokerJSON: brokerJSON{ID: 1}}, {brokerJSON: brokerJSON{ID: 2}}, {brokerJSON: brokerJSON{ID: 3}}}}
	partitionStates(&out, tds)
	if out.Topics != 2 || out.Partitions != 4 {
		t.Errorf("counts %d topics %d partitions", out.Topics, out.Partitions)
	}
	if len(out.UnderReplicated) != 2 || out.UnderReplicated[0].Partition != 1 || out.UnderReplicated[0].LeaderEpoch != 4 || out.UnderReplicated[1].Partition != 2 {
		t.Errorf("under-replicated %+v", out.UnderReplicated)
	}
	if len(out.Offline) != 1 || out.Offline[0].Topic != "b" || out.Offline[0].Partition != 2 || out.Offline[0].Error == "" {
		t.Errorf("offline %+v", out.Offline)
	}
	if len(out.MissingBrokers) != 1 || out.MissingBrokers[0] != 4 {
		t.Errorf("missing %v", out.MissingBrokers)
	}
}
