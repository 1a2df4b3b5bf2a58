package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/kafka/server"
)

// AddOffsetsToTxn: adds a consumer group's offsets to a producer's
// transaction, so that TxnOffsetCommit may commit for that group.
//
// Behavior: as AddPartitionsToTxn for the producer checks and
// CONCURRENT_TRANSACTIONS; an empty group id is INVALID_TXN_STATE. The
// answer waits (in Reply.Finish) until the state is durable. In a cluster
// whose offsets topic has (or will get) more than one replica it is
// INVALID_TXN_STATE with a log line: a committed transaction's offsets are
// applied through the group coordinator in process, and a replicated
// offsets topic's leader moves away from the transaction coordinator.
//
// Version notes: v1 is v0; v2 PRODUCER_FENCED; v3+ flexible; v4 is v3
// (KIP-890 TRANSACTION_ABORTABLE is not returned).
func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.AddOffsetsToTxnRequest)
	resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	if h.txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	if !h.txnOffsetsColocated() {
		// A committed transaction's offsets are applied through the
		// group coordinator in process; a replicated offsets topic's
		// leader moves away from the transaction coordinator's broker,
		// and the transaction could then never complete. Refused up
		// front (the client aborts) rather than left hanging.
		h.log.Warn("offsets in a transaction need offsets.topic.replication.factor=1 in a cluster for now; refusing AddOffsetsToTxn",
			"transactional_id", r.TransactionalID, "group", r.Group)
		resp.ErrorCode = kerr.InvalidTxnState.Code
		return now(resp)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		err := h.txns.AddOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group)
		resp.ErrorCode = fencedFor(errorCode(err), req.Version >= 2)
		return resp
	}}, nil
}

// txnOffsetsColocated reports whether a transaction's offsets can be
// applied: always on a single node; in a cluster only while the offsets
// topic has one replica (it is placed with the transaction log, so the
// group and transaction coordinators share a broker), created or to be
// created with offsets.topic.replication.factor=1.
func (h *Handler) txnOffsetsColocated() bool {
	if !h.c.Replicated() {
		return true
	}
	if t, ok := h.c.Topic(cluster.OffsetsTopic); ok {
		return len(t.Replicas) > 0 && len(t.Replicas[0]) <= 1
	}
	return h.c.Broker().Settings().OffsetsTopicReplicationFactor <= 1
}
