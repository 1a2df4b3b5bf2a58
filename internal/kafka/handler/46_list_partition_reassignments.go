package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// ListPartitionReassignments (KIP-455): kafka-reassign-partitions.sh
// --verify / --list and `strom topic reassign --list`.
//
// Behavior:
//   - Needs DESCRIBE on the cluster; otherwise CLUSTER_AUTHORIZATION_FAILED.
//   - Lists the reassignments in progress from the metadata (any broker
//     answers): Replicas are the union (the target first, then the
//     replicas it drops), AddingReplicas the target's new brokers,
//     RemovingReplicas those it drops, as Kafka's. Null topics: all; a
//     named partition with none in progress, or unknown, is left out.
//
// Version notes: v0 only, flexible.
func init() { register(46, 0, 0, handleListPartitionReassignments) }

func handleListPartitionReassignments(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ListPartitionReassignmentsRequest)
	resp := r.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
	if !h.allowedCluster(req, acl.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp)
	}
	var only map[string][]int32
	if r.Topics != nil {
		only = map[string][]int32{}
		for _, t := range r.Topics {
			only[t.Topic] = append(only[t.Topic], t.Partitions...)
		}
	}
	byTopic := map[string]int{}
	for _, ra := range h.c.Reassignments(only) {
		k, ok := byTopic[ra.Topic]
		if !ok {
			k = len(resp.Topics)
			byTopic[ra.Topic] = k
			rt := kmsg.NewListPartitionReassignmentsResponseTopic()
			rt.Topic = ra.Topic
			resp.Topics = append(resp.Topics, rt)
		}
		rp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		rp.Partition, rp.Replicas = ra.Partition, ra.Replicas
		rp.AddingReplicas, rp.RemovingReplicas = nonNil(ra.Adding), nonNil(ra.Removing)
		resp.Topics[k].Partitions = append(resp.Topics[k].Partitions, rp)
	}
	return now(resp)
}

func nonNil(s []int32) []int32 {
	if s == nil {
		return []int32{}
	}
	return s
}
