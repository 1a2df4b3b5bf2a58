package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// OffsetDelete: delete some committed offsets of a group (KIP-496).
//
// Behavior:
//   - Group errors at the top: GROUP_ID_NOT_FOUND, INVALID_GROUP_ID,
//     NON_EMPTY_GROUP for a group with members that is not a consumer
//     group.
//   - Per partition: UNKNOWN_TOPIC_OR_PARTITION for a partition that does
//     not exist; GROUP_SUBSCRIBED_TO_TOPIC while members consume the topic;
//     otherwise the offset is deleted (no error if none was committed).
//
// Version notes: v0 only.
func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.OffsetDeleteRequest)
	resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	codes := make([][]int16, len(r.Topics))
	var tps []group.TopicPartition
	type pos struct{ t, p int }
	var where []pos
	for i, t := range r.Topics {
		codes[i] = make([]int16, len(t.Partitions))
		topic, ok := h.c.Topic(t.Topic)
		for j, p := range t.Partitions {
			if !ok || p.Partition < 0 || p.Partition >= topic.Partitions {
				codes[i][j] = kerr.UnknownTopicOrPartition.Code
				continue
			}
			tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p.Partition})
			where = append(where, pos{i, j})
		}
	}
	if tps == nil {
		tps = []group.TopicPartition{}
	}
	call := h.groups.DeleteOffsets(r.Group, tps)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res = group.DeleteOffsetsResult{Err: err}
		}
		if res.Err != nil {
			resp.ErrorCode = errorCode(res.Err)
			return resp
		}
		for k, w := range where {
			if k < len(res.Errs) {
				codes[w.t][w.p] = errorCode(res.Errs[k])
			}
		}
		for i, t := range r.Topics {
			rt := kmsg.NewOffsetDeleteResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetDeleteResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}}, nil
}
