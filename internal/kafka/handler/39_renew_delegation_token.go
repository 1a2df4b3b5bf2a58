package handler

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// RenewDelegationToken (KIP-48): moves a token's expiry to now plus
// RenewTimeMillis (delegation.token.expiry.time.ms when negative), never
// past its max.
//
// Behavior: DELEGATION_TOKEN_AUTH_DISABLED without tokens;
// DELEGATION_TOKEN_REQUEST_NOT_ALLOWED as CreateDelegationToken; no token
// with that HMAC: DELEGATION_TOKEN_NOT_FOUND; a requester that is neither
// its owner nor a renewer: DELEGATION_TOKEN_OWNER_MISMATCH; a token past
// its expiry: DELEGATION_TOKEN_EXPIRED. Durable before the answer.
//
// Version notes: v1 is v0; v2 flexible.
func init() { register(39, 0, 2, handleRenewDelegationToken) }

func handleRenewDelegationToken(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.RenewDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.RenewDelegationTokenResponse)
	period := r.RenewTimeMillis
	if period < 0 {
		period = h.c.Broker().Settings().DelegationTokenExpiryTime.Milliseconds()
	}
	resp.ExpiryTimestamp, resp.ErrorCode = h.changeTokenExpiry(req, r.HMAC, period, false)
	return now(resp)
}

// changeTokenExpiry is Renew and Expire: the token of mac gets the expiry
// now+period (at most its max); with remove (Expire with a negative
// period) it is removed instead, and the answer's expiry is now. It
// returns the new expiry and the error code.
func (h *Handler) changeTokenExpiry(req *server.Request, mac []byte, period int64, remove bool) (int64, int16) {
	secret := h.tokenSecret()
	if secret == "" {
		return 0, kerr.DelegationTokenAuthDisabled.Code
	}
	if !tokenRequestsAllowed(req) {
		return 0, kerr.DelegationTokenRequestNotAllowed.Code
	}
	sec := h.c.Security()
	t, ok := tokenByHMAC(sec, secret, mac)
	if !ok {
		return 0, kerr.DelegationTokenNotFound.Code
	}
	if !ownerOrRenewer(t, principalOf(req)) {
		return 0, kerr.DelegationTokenOwnerMismatch.Code
	}
	nowMs := time.Now().UnixMilli()
	if t.Expiry <= nowMs {
		return 0, kerr.DelegationTokenExpired.Code
	}
	change := metadata.TokenChange{Remove: sec.ExpiredTokens(nowMs)}
	expiry := nowMs
	if remove {
		change.Remove = append(change.Remove, t.ID)
	} else {
		expiry = min(t.Max, nowMs+period)
		change.ID, change.SetExpiry = t.ID, expiry
	}
	if err := h.c.ChangeTokens(change); err != nil {
		h.log.Warn("delegation token not changed", "token", t.ID, "err", err)
		return 0, errorCode(err)
	}
	return expiry, 0
}
