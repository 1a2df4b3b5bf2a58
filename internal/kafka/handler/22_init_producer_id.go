package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// InitProducerId: a producer id and epoch for an idempotent producer.
//
// Behavior:
//   - A null TransactionalID gets a new producer id (never handed out
//     before, cluster.AllocateProducerID) with epoch 0. That holds also for
//     v3+ requests naming their current ProducerID/ProducerEpoch (KIP-360,
//     after an UNKNOWN_PRODUCER_ID or a sequence error): as Kafka's
//     coordinator does for non-transactional producers, the old id is not
//     bumped but replaced, which resets its sequences just as well.
//     Naming only one of the two (-1 for the other) is INVALID_REQUEST.
//   - Transactions are not implemented yet, and a transactional id must not
//     get an id that only looks transactional. It is answered
//     TRANSACTIONAL_ID_AUTHORIZATION_FAILED: the one error that every
//     client treats as fatal at once (kgo: non-retriable; Java: fatal;
//     librdkafka: fatal, where any other code is retried forever), so the
//     application fails clearly instead of hanging. An empty transactional
//     id is INVALID_REQUEST, as in Kafka.
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible; v3 ProducerID
// and ProducerEpoch in the request (KIP-360); v4 is v3 (PRODUCER_FENCED may
// be returned); v5 is v4 (KIP-890 transactions v2, not served).
func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.InitProducerIDRequest)
	resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case r.TransactionalID != nil && *r.TransactionalID == "":
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp)
	case r.TransactionalID != nil:
		h.log.Info("rejecting a transactional producer: transactions are not supported yet",
			"transactional_id", *r.TransactionalID, "client_id", req.ClientID, "remote", req.Conn.RemoteAddr)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp)
	case req.Version >= 3 && (r.ProducerID == -1) != (r.ProducerEpoch == -1):
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp)
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
