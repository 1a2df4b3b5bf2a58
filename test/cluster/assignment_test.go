package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestManualReplicaAssignment: CreateTopics and CreatePartitions with a
// replica assignment (kafka-topics.sh --replica-assignment) place every
// partition's replicas as asked, in that order (the first is the
// preferred leader); a broker listed twice, an unknown broker or lists of
// different lengths are refused with INVALID_REPLICA_ASSIGNMENT.
func TestManualReplicaAssignment(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b := c.direct(c.nodes[1].kafka)
	create := func(topic string, assignment ...[]int32) int16 {
		req := kmsg.NewPtrCreateTopicsRequest()
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		for i, r := range assignment {
			ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			ra.Partition, ra.Replicas = int32(i), r
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
		}
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}
	grow := func(topic string, count int32, assignment ...[]int32) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, count
		for _, r := range assignment {
			a := kmsg.NewCreatePartitionsRequestTopicAssignment()
			a.Replicas = r
			rt.Assignment = append(rt.Assignment, a)
		}
		req.Topics = append(req.Topics, rt)
		req.TimeoutMillis = 30000
		resp, err := req.RequestWith(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].ErrorCode
	}
	bad := kerr.InvalidReplicaAssignment.Code
	for name, code := range map[string]int16{
		"twice":   create("twice", []int32{1, 1, 2}),
		"unknown": create("unknown", []int32{1, 2, 9}),
		"uneven":  create("uneven", []int32{1, 2, 3}, []int32{1, 2}),
	} {
		if code != bad {
			t.Errorf("create %s: %v, want INVALID_REPLICA_ASSIGNMENT", name, kerr.ErrorForCode(code))
		}
	}
	if code := create("placed", []int32{3, 1, 2}, []int32{2, 3, 1}); code != 0 {
		t.Fatalf("create placed: %v", kerr.ErrorForCode(code))
	}
	if code := grow("placed", 3, []int32{1, 2}); code != bad {
		t.Errorf("grow with two replicas for a topic of three: %v, want INVALID_REPLICA_ASSIGNMENT", kerr.ErrorForCode(code))
	}
	if code := grow("placed", 3, []int32{1, 3, 2}); code != 0 {
		t.Fatalf("grow placed: %v", kerr.ErrorForCode(code))
	}
	adm := c.admin(c.nodes[0].kafka)
	want := [][]int32{{3, 1, 2}, {2, 3, 1}, {1, 3, 2}}
	waitFor(t, 30*time.Second, "the assigned replicas in the metadata", func() error {
		md, err := adm.Metadata(ctx, "placed")
		if err != nil {
			return err
		}
		for i, w := range want {
			p, ok := md.Topics["placed"].Partitions[int32(i)]
			if !ok || !slices.Equal(p.Replicas, w) || p.Leader < 1 {
				return fmt.Errorf("partition %d: %+v, want replicas %v", i, p, w)
			}
		}
		return nil
	})
}
