package handler

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// OffsetCommit: a group commits consumed offsets.
//
// Behavior:
//   - The answer waits (in Reply.Finish) until the offsets are durable in
//     __consumer_offsets: an acknowledged commit survives a crash.
//   - A partition of a topic that does not exist, or past its partition
//     count, is UNKNOWN_TOPIC_OR_PARTITION; the others are committed.
//   - Generation -1 with no member id commits from outside group
//     management (OffsetCommit v0, kafka-node's Consumer, admin tools):
//     allowed while the group has no members, and it creates the group if
//     needed. Otherwise the member and generation must be current:
//     UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID,
//     REBALANCE_IN_PROGRESS (between JoinGroup and SyncGroup). A member
//     commit to a group that does not exist is ILLEGAL_GENERATION before
//     v9 and GROUP_ID_NOT_FOUND from v9, as Kafka answers.
//   - Metadata is stored as given (null as ""), up to
//     offset.metadata.max.bytes (4096): OFFSET_METADATA_TOO_LARGE beyond.
//   - The committed leader epoch (v6+) is stored and returned by
//     OffsetFetch v5+.
//   - In a KIP-848 group the generation is the member epoch (v9+; older
//     versions are UNSUPPORTED_VERSION for its members): the current epoch
//     commits anything, an older one only partitions the member still
//     owns (else STALE_MEMBER_EPOCH); a newer one is FENCED_MEMBER_EPOCH.
//
// Version notes: v1 generation, member id and a per-partition commit
// timestamp; v2-v4 retention time (an explicit expiry); v3 throttle; v6
// leader epoch; v7 group.instance.id; v8+ flexible; v9 GROUP_ID_NOT_FOUND
// for an unknown group. v10 (topic ids) is not served.
func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.OffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
	// codes[i][j] answers r.Topics[i].Partitions[j]; -1 means "ask the
	// coordinator".
	codes := make([][]int16, len(r.Topics))
	cr := group.CommitRequest{Group: r.Group, MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID), Generation: -1, Version: req.Version}
	if req.Version >= 1 {
		cr.Generation = r.Generation
	}
	if req.Version >= 2 && req.Version <= 4 && r.RetentionTimeMillis > 0 {
		cr.Retention = time.Duration(r.RetentionTimeMillis) * time.Millisecond
	}
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
			codes[i][j] = -1
			o := group.CommitOffset{
				Topic: t.Topic, Partition: p.Partition, Offset: p.Offset,
				LeaderEpoch: -1, Metadata: derefStr(p.Metadata), Timestamp: -1,
			}
			if req.Version >= 6 {
				o.LeaderEpoch = p.LeaderEpoch
			}
			if req.Version == 1 {
				o.Timestamp = p.Timestamp
			}
			cr.Offsets = append(cr.Offsets, o)
			where = append(where, pos{i, j})
		}
	}
	build := func(res group.CommitResult) kmsg.Response {
		groupCode := errorCode(res.Err)
		if res.Err != nil && req.Version < 9 && groupCode == kerr.GroupIDNotFound.Code {
			groupCode = kerr.IllegalGeneration.Code
		}
		for k, w := range where {
			c := groupCode
			if res.Err == nil && k < len(res.Errs) {
				c = errorCode(res.Errs[k])
			}
			codes[w.t][w.p] = c
		}
		for i, t := range r.Topics {
			rt := kmsg.NewOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for j, p := range t.Partitions {
				rp := kmsg.NewOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, codes[i][j]
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp
	}
	if h.groups == nil {
		return now(build(group.CommitResult{Err: group.ErrCoordinatorNotAvailable}))
	}
	if len(cr.Offsets) == 0 {
		// Nothing for the coordinator, but the group id is still checked.
		if r.Group == "" {
			return now(build(group.CommitResult{Err: group.ErrInvalidGroupID}))
		}
		return now(build(group.CommitResult{}))
	}
	call := h.groups.CommitOffsets(cr)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res = group.CommitResult{Err: err}
		}
		return build(res)
	}}, nil
}
