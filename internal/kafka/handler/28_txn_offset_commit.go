package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
)

// TxnOffsetCommit: commits a consumer group's offsets inside a
// transaction; they become the group's committed offsets when the
// transaction commits and are dropped when it aborts.
//
// Behavior:
//   - The group coordinator checks the sender first (KIP-447, v3+): a
//     member id and generation other than -1 must be the group's current
//     ones (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID), so
//     a zombie of an older generation cannot commit. Then the transaction
//     coordinator keeps the offsets in the transaction's state, durable in
//     __transaction_state before the answer; AddOffsetsToTxn for the group
//     must have come first (INVALID_TXN_STATE otherwise).
//   - Every partition gets the request's error: the commit is all or
//     nothing, as the transaction is.
//   - Metadata over offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE
//     for the whole request, checked now: a committed transaction must be
//     able to apply its offsets.
//
// Version notes: v1 is v0; v2 leader epochs; v3 generation, member and
// instance ids (KIP-447) and PRODUCER_FENCED; v3+ flexible; v4 is v3
// (KIP-890 TRANSACTION_ABORTABLE is not returned); v5 (transactions v2):
// the group joins the transaction here, no AddOffsetsToTxn needed. v6
// (topic ids) is not served.
func init() { register(28, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.TxnOffsetCommitRequest)
	resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	answer := func(err error) kmsg.Response {
		code := fencedFor(errorCode(err), req.Version >= 3)
		for _, rt := range r.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	if h.txns == nil || h.groups == nil {
		return now(answer(kerr.CoordinatorNotAvailable))
	}
	var offsets []txn.PendingOffset
	check := group.CommitRequest{Group: r.Group, Generation: -1}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			o := txn.PendingOffset{Group: r.Group, Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
			if req.Version >= 2 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			offsets = append(offsets, o)
			check.Offsets = append(check.Offsets, group.CommitOffset{Topic: o.Topic, Partition: o.Partition, Offset: o.Offset, Metadata: o.Metadata})
		}
	}
	if req.Version >= 3 {
		check.Generation, check.MemberID = r.Generation, r.MemberID
		if r.InstanceID != nil {
			check.InstanceID = *r.InstanceID
		}
	}
	validated := h.groups.ValidateTxnCommit(check)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		verr, err := validated.Wait(ctx)
		if err == nil {
			err = verr
		}
		if err == nil {
			err = h.txns.CommitOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group, offsets, req.Version >= 5)
		}
		return answer(err)
	}}, nil
}
