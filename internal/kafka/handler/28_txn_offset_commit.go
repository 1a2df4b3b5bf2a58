package handler

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/partition"
)

// TxnOffsetCommit: commits a consumer group's offsets inside a
// transaction; they become the group's committed offsets when the
// transaction commits and are dropped when it aborts.
//
// Behavior (Kafka's design: the group coordinator answers it):
//   - The group coordinator checks the sender first (KIP-447, v3+): a
//     member id and generation other than -1 must be the group's current
//     ones (UNKNOWN_MEMBER_ID, ILLEGAL_GENERATION, FENCED_INSTANCE_ID), so
//     a zombie of an older generation cannot commit.
//   - It writes the offsets to the group's partition of __consumer_offsets
//     as a transactional batch of the producer (its id and epoch); the
//     answer waits until the batch is committed there. They stay pending
//     (OffsetFetch with require_stable: UNSTABLE_OFFSET_COMMIT) until the
//     transaction's marker lands in that partition.
//   - When this broker coordinates the transaction, the group must be in
//     it (AddOffsetsToTxn for that group: INVALID_TXN_STATE otherwise).
//     At another broker's coordinator only the partition is checked
//     (Kafka's group coordinator asks nothing for v0-v4 either): the
//     partition checks the producer's first batch of a transaction
//     there with the transaction coordinator, in process or at its broker
//     (KIP-890 part 1, as Produce): AddOffsetsToTxn must have added the
//     partition (INVALID_TXN_STATE otherwise); an older epoch is fenced;
//     a coordinator that cannot answer is COORDINATOR_LOAD_IN_PROGRESS
//     (retried).
//   - Every partition gets the request's error: the commit is all or
//     nothing, as the transaction is. Metadata over
//     offset.metadata.max.bytes is OFFSET_METADATA_TOO_LARGE for the whole
//     request.
//
// Version notes: v1 is v0; v2 leader epochs; v3 generation, member and
// instance ids (KIP-447) and PRODUCER_FENCED; v3+ flexible; v4 is v3
// (KIP-890 TRANSACTION_ABORTABLE is not returned); v5 (transactions v2):
// the group joins the transaction here (AddOffsets in process), no
// AddOffsetsToTxn needed, when transaction.version is 2 (v4's behaviour
// otherwise); in a cluster the group coordinator's broker asks the
// transaction coordinator's to add the group's offsets partition
// (AddPartitionsToTxn v5, as Produce v12+ does for its partitions); a
// transaction coordinator not ready (down, moving, loading, ending the
// previous transaction) is COORDINATOR_LOAD_IN_PROGRESS, retried. v6
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
	txnID := r.TransactionalID
	topic, index := group.GroupPartition(r.Group)
	tc := group.TxnCommitRequest{
		Group: r.Group, Generation: -1, ProducerID: r.ProducerID, ProducerEpoch: r.ProducerEpoch,
		VerifyTxn: func(pid int64, epoch int16) error { return h.verifyTxn(&txnID, pid, epoch, topic, index) },
	}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			o := group.CommitOffset{Topic: rt.Topic, Partition: rp.Partition, Offset: rp.Offset, LeaderEpoch: -1}
			if req.Version >= 2 {
				o.LeaderEpoch = rp.LeaderEpoch
			}
			if rp.Metadata != nil {
				o.Metadata = *rp.Metadata
			}
			tc.Offsets = append(tc.Offsets, o)
		}
	}
	if req.Version >= 3 {
		tc.Generation, tc.MemberID = r.Generation, r.MemberID
		if r.InstanceID != nil {
			tc.InstanceID = *r.InstanceID
		}
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		if req.Version >= 5 && h.transactionVersion() >= 2 {
			// Transactions v2: the group joins the transaction here. With
			// transaction.version 1 v5 is v4, as Produce v12 is v11 then.
			if err := h.addOffsetsToTxn(ctx, txnID, r.ProducerID, r.ProducerEpoch, r.Group); err != nil {
				return answer(err)
			}
		}
		if err := h.verifyTxnGroup(r.ProducerID, r.ProducerEpoch, r.Group); err != nil {
			return answer(err)
		}
		err, werr := h.groups.TxnCommit(tc).Wait(ctx)
		if werr != nil {
			err = werr
		}
		return answer(err)
	}}, nil
}

// addOffsetsToTxn adds group's offsets to the transaction for
// TxnOffsetCommit v5+ (transactions v2), as AddOffsetsToTxn would: in
// process when this broker coordinates the transaction; else the
// coordinator's broker is asked to add the group's offsets partition
// (addToTxn: AddPartitionsToTxn v5, as Kafka's group coordinator does),
// which is what the group's commit needs there (the partition verifies
// the offsets' batch as any transactional write). A coordinator that
// cannot answer now is COORDINATOR_LOAD_IN_PROGRESS, which the producer
// retries.
func (h *Handler) addOffsetsToTxn(ctx context.Context, id string, pid int64, epoch int16, groupID string) error {
	_, local, err := h.txnCoordinator()
	if err == nil && local {
		err = h.txns.AddOffsets(ctx, id, pid, epoch, groupID)
	} else {
		topic, index := group.GroupPartition(groupID)
		var errs []error
		if errs, err = h.addToTxn(ctx, id, pid, epoch, []txn.TopicPartition{{Topic: topic, Partition: index}}); err == nil {
			err = errs[0]
		}
	}
	// NOT_COORDINATOR would send the client looking for another group
	// coordinator; the group's is right, the transaction's is not ready.
	if errors.Is(retriableAdd(err), partition.ErrTxnVerifyUnavailable) {
		return fmt.Errorf("%w: %v", group.ErrCoordinatorLoading, err)
	}
	return err
}

// verifyTxnGroup checks, when this broker's transaction coordinator holds
// the producer's transaction, that AddOffsetsToTxn added the group; at
// another broker's the partition's verification is the check.
func (h *Handler) verifyTxnGroup(pid int64, epoch int16, groupID string) error {
	if _, local, err := h.txnCoordinator(); err != nil || !local {
		return nil
	}
	err := h.txns.VerifyGroup(pid, epoch, groupID)
	if errors.Is(err, txn.ErrCoordinatorLoading) {
		return fmt.Errorf("%w: %v", group.ErrCoordinatorLoading, err)
	}
	return err
}
