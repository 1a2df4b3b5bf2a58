package handler

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// InitProducerId: a producer id and epoch for an idempotent or
// transactional producer.
//
// Behavior:
//   - A null TransactionalID gets a new producer id (never handed out
//     before, cluster.AllocateProducerID) with epoch 0. That holds also for
//     v3+ requests naming their current ProducerID/ProducerEpoch (KIP-360,
//     after an UNKNOWN_PRODUCER_ID or a sequence error): as Kafka's
//     coordinator does for non-transactional producers, the old id is not
//     bumped but replaced, which resets its sequences just as well.
//     Naming only one of the two (-1 for the other) is INVALID_REQUEST.
//   - A transactional id goes to the transaction coordinator
//     (txn.Coordinator.InitProducerID): the first call gets a producer id
//     at epoch 0, every later one the next epoch, which fences the older
//     instance (PRODUCER_FENCED for it from then on; INVALID_PRODUCER_EPOCH
//     before v4); its ongoing transaction is aborted first. The answer
//     waits (in Reply.Finish) until the new state is durable.
//     TransactionTimeoutMillis above transaction.max.timeout.ms (or not
//     positive) is INVALID_TRANSACTION_TIMEOUT. An empty transactional id
//     is INVALID_REQUEST, as in Kafka.
//   - In a cluster the coordinator is the leader of __transaction_state-0
//     (another broker answers NOT_COORDINATOR); it sends markers to the
//     partitions other brokers lead with WriteTxnMarkers, and they ask it
//     to verify transactional writes (AddPartitionsToTxn VerifyOnly),
//     through the broker's inter-broker client (Config.TxnPeer, on
//     inter.broker.listener.name with its TLS and SASL). A broker
//     without one (settings that cannot make it, e.g. GSSAPI asked or no
//     JAAS credentials) refuses a transactional id with
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED (fatal for clients, not
//     retried) and a log line with the reason (Config.NoTxnPeer).
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible; v3 ProducerID
// and ProducerEpoch in the request (KIP-360); v4 PRODUCER_FENCED may be
// returned; v5 is v4 (KIP-890 transactions v2 is not advertised as a
// feature, so clients keep to its first part).
func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case r.TransactionalID != nil && *r.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp)
	case req.Version >= 3 && (r.ProducerID == -1) != (r.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp)
	case r.TransactionalID != nil && h.c.Peers() && h.cfg.TxnPeer == nil:
		// More than one node, and without a client to the other brokers
		// the coordinator cannot
		// write markers to their partitions nor they ask it to verify a
		// write. Refused, not accepted and left hanging.
		h.log.Warn("this broker has no inter-broker client for transactions; refusing a transactional producer",
			"transactional_id", *r.TransactionalID, "client_id", req.ClientID, "reason", h.cfg.NoTxnPeer)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp)
	case r.TransactionalID != nil && h.txns == nil:
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	case r.TransactionalID != nil:
		id := *r.TransactionalID
		pid, epoch := int64(-1), int16(-1)
		if req.Version >= 3 {
			pid, epoch = r.ProducerID, r.ProducerEpoch
		}
		timeout := time.Duration(r.TransactionTimeoutMillis) * time.Millisecond
		return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
			p, e, err := h.txns.InitProducerID(ctx, id, timeout, pid, epoch)
			if err != nil {
				resp.ErrorCode = fencedFor(errorCode(err), req.Version >= 4)
				return resp
			}
			resp.ProducerID, resp.ProducerEpoch = p, e
			return resp
		}}, nil
	}
	id, err := h.c.AllocateProducerID()
	if err != nil {
		h.log.Error("allocating a producer id failed", "err", err)
		resp.ErrorCode = errorCode(err)
		return now(resp)
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return now(resp)
}
