package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// EndTxn: commits or aborts a producer's ongoing transaction.
//
// Behavior:
//   - The answer waits (in Reply.Finish) until the prepare record is
//     durable in __transaction_state (the outcome is decided then) and
//     the COMMIT or ABORT markers are written (appended on this broker's
//     partitions, acknowledged by the other brokers), so a late write at
//     the ended epoch is fenced everywhere; the local markers' fsyncs and
//     the completion record follow in the background, and at the next
//     start if the broker stops first. Until the completion the id's next transaction waits
//     for it (AddPartitionsToTxn, an implicit add, InitProducerId; up to
//     2 s, then CONCURRENT_TRANSACTIONS, which clients retry).
//   - A retried end that is already decided is answered without error; a
//     commit of an aborted transaction (or the reverse), or an end with
//     nothing ongoing, is INVALID_TXN_STATE. An older epoch is
//     PRODUCER_FENCED (v2+), an epoch a timeout abort bumped away
//     INVALID_PRODUCER_EPOCH (KAFKA-20785).
//
// Version notes: v1 is v0; v2 PRODUCER_FENCED; v3+ flexible; v4 is v3
// (KIP-890 TRANSACTION_ABORTABLE is not returned); v5 (KIP-890 part 2,
// transactions v2): the end bumps the producer epoch (the markers carry
// the new one) and the answer gives the producer id and epoch to use
// next; a retry of that end at the old epoch gets the same answer; an
// abort with nothing ongoing bumps the epoch too.
func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.EndTxnRequest)
	resp := r.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if h.txns == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		if req.Version >= 5 {
			pid, epoch, err := h.txns.EndTxnBump(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit)
			resp.ErrorCode = errorCode(err)
			if err == nil {
				resp.ProducerID, resp.ProducerEpoch = pid, epoch
			}
			return resp
		}
		err := h.txns.EndTxn(ctx, r.TransactionalID, r.ProducerID, r.ProducerEpoch, r.Commit)
		resp.ErrorCode = fencedFor(errorCode(err), req.Version >= 2)
		return resp
	}}, nil
}
