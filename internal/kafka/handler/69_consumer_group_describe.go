package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// ConsumerGroupDescribe: KIP-848 groups, member by member: epochs,
// subscriptions, current and target assignments.
//
// Behavior:
//   - A group that does not exist, or a classic group, is
//     GROUP_ID_NOT_FOUND; an empty id INVALID_GROUP_ID.
//   - States: Empty, Assigning, Reconciling (a member has not reached its
//     target yet), Stable.
//
// Version notes: v1 member type (always 1: consumer members).
func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ConsumerGroupDescribeRequest)
	resp := r.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	calls := make([]*group.Call[group.ConsumerDescription], len(r.Groups))
	for i, id := range r.Groups {
		if h.groups == nil {
			calls[i] = group.Done(group.ConsumerDescription{Err: group.ErrCoordinatorNotAvailable, Group: id})
			continue
		}
		calls[i] = h.groups.DescribeConsumerGroup(id)
	}
	assignment := func(tps []group.TopicPartition) kmsg.Assignment {
		a := kmsg.NewAssignment()
		a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
		for _, t := range h.byTopicID(tps) {
			at := kmsg.NewAssignmentTopicPartition()
			at.TopicID, at.Topic, at.Partitions = t.id, t.name, t.partitions
			a.TopicPartitions = append(a.TopicPartitions, at)
		}
		return a
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for i, call := range calls {
			d, err := call.Wait(ctx)
			if err != nil {
				d = group.ConsumerDescription{Err: err}
			}
			rg := kmsg.NewConsumerGroupDescribeResponseGroup()
			rg.Group = r.Groups[i]
			rg.ErrorCode, rg.ErrorMessage = errorCode(d.Err), errorMessage(d.Err)
			if d.Err == nil {
				rg.State, rg.Epoch, rg.AssignmentEpoch, rg.AssignorName = d.State, d.Epoch, d.AssignmentEpoch, d.Assignor
				if r.IncludeAuthorizedOperations {
					rg.AuthorizedOperations = h.authorizedOps(req, acl.ResourceGroup, rg.Group, groupOperations)
				}
				for _, m := range d.Members {
					rm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
					rm.MemberID, rm.InstanceID, rm.RackID = m.MemberID, optStr(m.InstanceID), optStr(m.RackID)
					rm.MemberEpoch, rm.ClientID, rm.ClientHost = m.MemberEpoch, m.ClientID, m.ClientHost
					rm.SubscribedTopics = m.SubscribedTopics
					if rm.SubscribedTopics == nil {
						rm.SubscribedTopics = []string{}
					}
					rm.SubscribedTopicRegex = optStr(m.SubscribedRegex)
					rm.Assignment, rm.TargetAssignment = assignment(m.Assignment), assignment(m.TargetAssignment)
					rm.MemberType = 1
					rg.Members = append(rg.Members, rm)
				}
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}}, nil
}
