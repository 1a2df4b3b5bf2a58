package handler

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// On a single node every partition has one replica, which leads: a
// preferred election is ELECTION_NOT_NEEDED (and left out of an
// all-partitions answer), an unclean one too, an unknown partition
// UNKNOWN_TOPIC_OR_PARTITION; a reassignment is INVALID_REPLICA_ASSIGNMENT
// with a message, a cancel NO_REASSIGNMENT_IN_PROGRESS, and none is
// listed. (A cluster's answers: test/cluster TestReassignUnderLoad.)
func TestElectAndReassignSingleNode(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	adm := b.admin(t)
	if _, err := adm.CreateTopic(context.Background(), 2, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	elect := func(typ int8, topics []kmsg.ElectLeadersRequestTopic) *kmsg.ElectLeadersResponse {
		t.Helper()
		req := kmsg.NewPtrElectLeadersRequest()
		req.ElectionType, req.Topics, req.TimeoutMillis = typ, topics, 5000
		return admRaw[*kmsg.ElectLeadersResponse](t, cl, req)
	}
	named := []kmsg.ElectLeadersRequestTopic{{Topic: "t", Partitions: []int32{0, 1, 7}}, {Topic: "nope", Partitions: []int32{0}}}
	for _, typ := range []int8{0, 1} {
		resp := elect(typ, named)
		codes := map[string]int16{}
		for _, rt := range resp.Topics {
			for _, p := range rt.Partitions {
				codes[rt.Topic+"-"+string(rune('0'+p.Partition))] = p.ErrorCode
			}
		}
		want := map[string]int16{"t-0": kerr.ElectionNotNeeded.Code, "t-1": kerr.ElectionNotNeeded.Code,
			"t-7": kerr.UnknownTopicOrPartition.Code, "nope-0": kerr.UnknownTopicOrPartition.Code}
		for k, c := range want {
			if codes[k] != c {
				t.Errorf("election type %d: %s: code %d, want %d (%v)", typ, k, codes[k], c, codes)
			}
		}
	}
	if resp := elect(0, nil); len(resp.Topics) != 0 {
		t.Errorf("all partitions: %+v, want nothing (none needed an election)", resp.Topics)
	}
	if resp := elect(5, named); resp.Topics[0].Partitions[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("unknown election type: %+v", resp.Topics[0].Partitions[0])
	}

	alter := func(replicas []int32) kmsg.AlterPartitionAssignmentsResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
		req.AllowReplicationFactorChange = true
		req.Topics = []kmsg.AlterPartitionAssignmentsRequestTopic{{Topic: "t",
			Partitions: []kmsg.AlterPartitionAssignmentsRequestTopicPartition{{Partition: 0, Replicas: replicas}}}}
		resp := admRaw[*kmsg.AlterPartitionAssignmentsResponse](t, cl, req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%+v", resp)
		}
		return resp.Topics[0].Partitions[0]
	}
	if p := alter([]int32{0, 1}); p.ErrorCode != kerr.InvalidReplicaAssignment.Code || p.ErrorMessage == nil {
		t.Errorf("reassign on a single node: %+v", p)
	}
	if p := alter(nil); p.ErrorCode != kerr.NoReassignmentInProgress.Code {
		t.Errorf("cancel on a single node: %+v", p)
	}
	list := admRaw[*kmsg.ListPartitionReassignmentsResponse](t, cl, kmsg.NewPtrListPartitionReassignmentsRequest())
	if list.ErrorCode != 0 || len(list.Topics) != 0 {
		t.Errorf("list: %+v", list)
	}
}
