package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// AddOffsetsToTxn: adds a consumer group's offsets to a producer's
// transaction, so that TxnOffsetCommit may commit for that group.
//
// Behavior: as AddPartitionsToTxn for the producer checks and
// CONCURRENT_TRANSACTIONS; an empty group id is INVALID_TXN_STATE. The
// group's partition of __consumer_offsets joins the transaction as an
// ordinary partition (Kafka's design): TxnOffsetCommit writes the offsets
// there as the producer's transactional batch, and EndTxn's marker there,
// in process or through WriteTxnMarkers to its leader, commits or drops
// them in the group coordinator, wherever the two coordinators run. The
// answer waits (in Reply.Finish) until the state is durable.
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
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		err := h.txns.AddOffsets(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Group)
		resp.ErrorCode = fencedFor(errorCode(err), req.Version >= 2)
		return resp
	}}, nil
}
