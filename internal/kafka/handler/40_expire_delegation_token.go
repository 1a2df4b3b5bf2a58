package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// ExpireDelegationToken (KIP-48): a negative ExpiryPeriodMillis removes
// the token now (revocation); otherwise its expiry becomes now plus the
// period, at most its max.
//
// Behavior: the errors of RenewDelegationToken (changeTokenExpiry).
// Durable before the answer; a removed token no longer authenticates, and
// connections it authenticated keep their session (as Kafka's).
//
// Version notes: v1 is v0; v2 flexible.
func init() { register(40, 0, 2, handleExpireDelegationToken) }

func handleExpireDelegationToken(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ExpireDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.ExpireDelegationTokenResponse)
	resp.ExpiryTimestamp, resp.ErrorCode = h.changeTokenExpiry(req, r.HMAC, r.ExpiryPeriodMillis, r.ExpiryPeriodMillis < 0)
	return now(resp)
}
