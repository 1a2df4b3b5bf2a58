package handler

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// ConsumerGroupHeartbeat: the next-generation consumer group protocol
// (KIP-848). A member heartbeats its subscription and the partitions it
// owns; the coordinator assigns (server-side "uniform" or "range") and
// answers with the member's epoch and, when it changed, its assignment.
//
// Behavior:
//   - Epoch 0 joins (rejoins, in place, with the same member id), -1
//     leaves, -2 leaves for now (a static member restarting); any other
//     epoch must be the member's (FENCED_MEMBER_EPOCH otherwise, except one
//     epoch behind after a lost answer, with nothing owned that it should
//     not own).
//   - A member releases partitions before others get them; one that does
//     not within its rebalance timeout is removed, as is one silent for
//     the session timeout (45 s).
//   - Topics travel by id: owned partitions of unknown ids are ignored,
//     assignments name the ids Metadata gives.
//   - Errors: INVALID_REQUEST (Kafka's request checks), UNKNOWN_MEMBER_ID,
//     FENCED_MEMBER_EPOCH, UNSUPPORTED_ASSIGNOR, UNRELEASED_INSTANCE_ID,
//     INVALID_REGULAR_EXPRESSION (v1), GROUP_ID_NOT_FOUND for a classic
//     group with members, FENCED_INSTANCE_ID.
//
// Version notes: v0 the coordinator makes member ids; v1 the member makes
// its own (KIP-1082) and may subscribe with a regex (RE2 syntax, matching
// whole topic names).
func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ConsumerGroupHeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	if req.Version >= 1 && r.MemberEpoch == 0 && r.MemberID == "" {
		resp.ErrorCode, resp.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr("MemberId can't be empty")
		return now(resp)
	}
	hb := group.ConsumerHeartbeat{
		Group: r.Group, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch,
		InstanceID: r.InstanceID, RackID: r.RackID, ClientID: req.ClientID, ClientHost: clientHost(req),
		RebalanceTimeout: -1, SubscribedTopics: r.SubscribedTopicNames, SubscribedRegex: r.SubscribedTopicRegex,
		ServerAssignor: r.ServerAssignor,
	}
	if r.RebalanceTimeoutMillis >= 0 {
		hb.RebalanceTimeout = time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	}
	if r.Topics != nil {
		hb.Owned = []group.TopicPartition{}
		for _, t := range r.Topics {
			topic, ok := h.c.TopicByID(metadata.TopicID(t.TopicID))
			if !ok {
				continue
			}
			for _, p := range t.Partitions {
				hb.Owned = append(hb.Owned, group.TopicPartition{Topic: topic.Name, Partition: p})
			}
		}
	}
	call := h.groups.ConsumerGroupHeartbeat(hb)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res = group.ConsumerHeartbeatResult{Err: err}
		}
		resp.ErrorCode = errorCode(res.Err)
		if res.Err != nil {
			resp.ErrorMessage = errorMessage(res.Err)
			return resp
		}
		resp.MemberID = kmsg.StringPtr(res.MemberID)
		resp.MemberEpoch = res.MemberEpoch
		resp.HeartbeatIntervalMillis = int32(res.HeartbeatInterval.Milliseconds())
		if res.HasAssignment {
			a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
			a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
			for _, ps := range h.byTopicID(res.Assignment) {
				at := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
				at.TopicID, at.Partitions = ps.id, ps.partitions
				a.Topics = append(a.Topics, at)
			}
			resp.Assignment = &a
		}
		return resp
	}}, nil
}

type topicIDPartitions struct {
	name       string
	id         [16]byte
	partitions []int32
}

// byTopicID groups partitions by topic, with the topics' ids; partitions
// of topics that no longer exist are left out.
func (h *Handler) byTopicID(tps []group.TopicPartition) []topicIDPartitions {
	var out []topicIDPartitions
	idx := map[string]int{}
	for _, tp := range tps {
		i, ok := idx[tp.Topic]
		if !ok {
			t, exists := h.c.Topic(tp.Topic)
			if !exists {
				continue
			}
			i = len(out)
			idx[tp.Topic] = i
			out = append(out, topicIDPartitions{name: tp.Topic, id: t.ID})
		}
		out[i].partitions = append(out[i].partitions, tp.Partition)
	}
	return out
}
