package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
)

// OffsetFetch: a group's committed offsets.
//
// Behavior:
//   - Each partition answers its committed offset, leader epoch (v5+) and
//     metadata exactly as committed; -1 (epoch -1, metadata "") when
//     nothing is committed.
//   - A group that does not exist (yet) answers -1 for every partition
//     with no error, as Kafka does: librdkafka consumers look up committed
//     offsets before joining, and GROUP_ID_NOT_FOUND would break them.
//   - Null topics (v2+) ask for every partition the group has committed.
//   - The answer reflects every commit acknowledged before it, including
//     one still in flight on the same connection.
//   - Group-level errors (INVALID_GROUP_ID for an empty id) are given per
//     partition before v2, at the top from v2, per group from v8.
//
// Version notes: v2 null topics and top-level error; v3 throttle; v5
// leader epoch; v6+ flexible; v7 require-stable (KIP-447): a partition
// with offsets in a transaction not yet complete (TxnOffsetCommit sent,
// EndTxn not done) answers UNSTABLE_OFFSET_COMMIT (retriable), offset -1,
// so a consumer taking over the partition waits for the transaction
// instead of starting from an offset about to change; v8 several groups; v9 member id and epoch:
// for a KIP-848 group the member must be in it at that epoch
// (UNKNOWN_MEMBER_ID, STALE_MEMBER_EPOCH); classic groups do not check.
// v10 (topic ids) is not served.
func init() { register(9, 0, 9, handleOffsetFetch) }

func handleOffsetFetch(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.OffsetFetchRequest)
	resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version < 8 {
		var tps []group.TopicPartition
		if r.Topics != nil || req.Version < 2 {
			tps = []group.TopicPartition{}
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
		}
		call := h.fetchOffsets(r.Group, tps)
		return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
			res, err := call.Wait(ctx)
			if err != nil {
				res = group.FetchResult{Err: err}
			}
			code := errorCode(res.Err)
			if req.Version >= 2 {
				resp.ErrorCode = code
			}
			offsets := res.Offsets
			pending := h.pendingOffsets(r.Group, req.Version >= 7 && r.RequireStable)
			if res.Err != nil {
				if req.Version >= 2 {
					return resp
				}
				offsets = errOffsets(tps)
			}
			for _, t := range groupByTopic(offsets) {
				rt := kmsg.NewOffsetFetchResponseTopic()
				rt.Topic = t[0].Topic
				for _, o := range t {
					rp := kmsg.NewOffsetFetchResponseTopicPartition()
					rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Partition, o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
					if res.Err != nil {
						rp.ErrorCode = code
					} else if req.Version >= 7 && r.RequireStable && o.Pending || pending[txn.TopicPartition{Topic: o.Topic, Partition: o.Partition}] {
						rp.ErrorCode, rp.Offset, rp.LeaderEpoch = kerr.UnstableOffsetCommit.Code, -1, -1
					}
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp
		}}, nil
	}
	calls := make([]*group.Call[group.FetchResult], len(r.Groups))
	for i, g := range r.Groups {
		var tps []group.TopicPartition
		if g.Topics != nil {
			tps = []group.TopicPartition{}
			for _, t := range g.Topics {
				for _, p := range t.Partitions {
					tps = append(tps, group.TopicPartition{Topic: t.Topic, Partition: p})
				}
			}
		}
		var as *group.FetchAs
		if g.MemberID != nil || g.MemberEpoch >= 0 {
			as = &group.FetchAs{MemberID: derefStr(g.MemberID), MemberEpoch: g.MemberEpoch}
		}
		calls[i] = h.fetchOffsetsAs(g.Group, tps, as)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for i, call := range calls {
			res, err := call.Wait(ctx)
			if err != nil {
				res = group.FetchResult{Err: err}
			}
			rg := kmsg.NewOffsetFetchResponseGroup()
			rg.Group = r.Groups[i].Group
			rg.ErrorCode = errorCode(res.Err)
			if res.Err == nil {
				pending := h.pendingOffsets(rg.Group, r.RequireStable)
				for _, t := range groupByTopic(res.Offsets) {
					rt := kmsg.NewOffsetFetchResponseGroupTopic()
					rt.Topic = t[0].Topic
					for _, o := range t {
						rp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
						rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = o.Partition, o.Offset, o.LeaderEpoch, kmsg.StringPtr(o.Metadata)
						if r.RequireStable && o.Pending || pending[txn.TopicPartition{Topic: o.Topic, Partition: o.Partition}] {
							rp.ErrorCode, rp.Offset, rp.LeaderEpoch = kerr.UnstableOffsetCommit.Code, -1, -1
						}
						rt.Partitions = append(rt.Partitions, rp)
					}
					rg.Topics = append(rg.Topics, rt)
				}
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}}, nil
}

// pendingOffsets is the group's partitions with transactional offsets not
// yet complete in legacy transaction records (kept in __transaction_state
// by earlier versions), when the request requires stable offsets; the
// offsets TxnOffsetCommit writes now are pending in the group coordinator
// (group.Offset.Pending).
func (h *Handler) pendingOffsets(group string, requireStable bool) map[txn.TopicPartition]bool {
	if !requireStable || h.txns == nil {
		return nil
	}
	return h.txns.PendingOffsets(group)
}

func (h *Handler) fetchOffsets(id string, tps []group.TopicPartition) *group.Call[group.FetchResult] {
	return h.fetchOffsetsAs(id, tps, nil)
}

func (h *Handler) fetchOffsetsAs(id string, tps []group.TopicPartition, as *group.FetchAs) *group.Call[group.FetchResult] {
	if h.groups == nil {
		return group.Done(group.FetchResult{Err: group.ErrCoordinatorNotAvailable})
	}
	return h.groups.FetchOffsetsAs(id, tps, as)
}

// errOffsets is -1 for every partition, for error answers that list them.
func errOffsets(tps []group.TopicPartition) []group.Offset {
	out := make([]group.Offset, len(tps))
	for i, tp := range tps {
		out[i] = group.Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, LeaderEpoch: -1}
	}
	return out
}

// groupByTopic splits offsets into runs of one topic, keeping the order of
// the topics' first appearance.
func groupByTopic(offsets []group.Offset) [][]group.Offset {
	idx := map[string]int{}
	var out [][]group.Offset
	for _, o := range offsets {
		i, ok := idx[o.Topic]
		if !ok {
			i = len(out)
			idx[o.Topic] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], o)
	}
	return out
}
