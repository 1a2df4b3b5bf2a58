package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// AlterPartitionReassignments (KIP-455): kafka-reassign-partitions.sh
// --execute / --cancel and `strom topic reassign`.
//
// Behavior:
//   - Needs ALTER on the cluster; otherwise CLUSTER_AUTHORIZATION_FAILED
//     at the top and for every partition.
//   - Any broker takes it: the target is a metadata record committed by
//     the quorum (the controller), answered once committed; the data
//     moves afterwards (ListPartitionReassignments shows it until the
//     partition's raft group has the target voters). Replicas null cancels
//     the partition's reassignment (NO_REASSIGNMENT_IN_PROGRESS when there
//     is none): the group returns to the replicas it had.
//   - INVALID_REPLICA_ASSIGNMENT: a broker named twice or not registered,
//     fewer than two replicas, a partition of one replica (not a raft
//     group: its log has no raft entries to copy through), or a single
//     node. Unknown topic or partition: UNKNOWN_TOPIC_OR_PARTITION.
//   - A target of the same replicas in another order changes the
//     preferred leader only.
//
// Version notes: v1 (KIP-860) AllowReplicationFactorChange: false refuses
// a target whose size differs from the partition's replica count with
// INVALID_REPLICATION_FACTOR; echoed in the response. Flexible from v0.
func init() { register(45, 0, 1, handleAlterPartitionAssignments) }

func handleAlterPartitionAssignments(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.AlterPartitionAssignmentsRequest)
	resp := r.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
	resp.AllowReplicationFactorChange = r.Version < 1 || r.AllowReplicationFactorChange
	denied := !h.allowedCluster(req, acl.OpAlter)
	if denied {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
	}
	return server.Reply{Finish: func(context.Context) kmsg.Response {
		for _, rt := range r.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				var err error
				if denied {
					err = kerr.ClusterAuthorizationFailed
				} else {
					err = h.reassign(rt.Topic, rp.Partition, rp.Replicas, resp.AllowReplicationFactorChange)
				}
				if err != nil {
					sp.ErrorCode, sp.ErrorMessage = adminCode(err), errorMessage(err)
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}}, nil
}

func (h *Handler) reassign(topic string, i int32, target []int32, rfChange bool) error {
	if target != nil && !rfChange {
		if t, ok := h.c.Topic(topic); ok && int(i) < len(t.Replicas) && i >= 0 {
			now := len(t.Replicas[i])
			if ra, moving := t.Reassigning[i]; moving {
				now = len(ra.Before)
			}
			if len(target) != now {
				return adminFail(kerr.InvalidReplicationFactor,
					"%s-%d: %d replicas for a partition of %d, and the request does not allow a replication factor change", topic, i, len(target), now)
			}
		}
	}
	return h.c.Reassign(topic, i, target)
}
