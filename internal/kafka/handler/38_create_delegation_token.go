package handler

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// CreateDelegationToken (KIP-48): a token that authenticates as its owner
// through SCRAM (the token id as the user, its HMAC as the password).
//
// Behavior (Kafka's DelegationTokenManager):
//   - Tokens disabled (no delegation.token.secret.key):
//     DELEGATION_TOKEN_AUTH_DISABLED.
//   - Only an authenticated client may ask (SASL, or TLS with a client
//     certificate) that did not itself log in with a token:
//     DELEGATION_TOKEN_REQUEST_NOT_ALLOWED otherwise.
//   - Renewers (and a v3 owner) must be User principals:
//     INVALID_PRINCIPAL_TYPE. A token for another owner (v3) needs
//     CREATE_TOKENS on that User (KIP-373):
//     DELEGATION_TOKEN_AUTHORIZATION_FAILED.
//   - Max lifetime: the request's MaxLifetimeMillis if positive, at most
//     delegation.token.max.lifetime.ms; expiry: now plus
//     delegation.token.expiry.time.ms, at most the max.
//   - The token is durable in the metadata (file or quorum) before the
//     answer, which carries its id and HMAC; expired tokens are removed in
//     the same record.
//
// Version notes: v1 is v0 (throttle after the response); v2 flexible; v3
// owner and requester fields.
func init() { register(38, 0, 3, handleCreateDelegationToken) }

func handleCreateDelegationToken(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.CreateDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.CreateDelegationTokenResponse)
	requester := principalOf(req)
	owner := requester
	if r.OwnerPrincipalName != nil && *r.OwnerPrincipalName != "" {
		typ := "User"
		if r.OwnerPrincipalType != nil {
			typ = *r.OwnerPrincipalType
		}
		owner = typ + ":" + *r.OwnerPrincipalName
	}
	resp.PrincipalType, resp.PrincipalName = splitPrincipal(owner)
	resp.TokenRequesterPrincipalType, resp.TokenRequesterPrincipalName = splitPrincipal(requester)
	secret := h.tokenSecret()
	fail := func(code int16) (server.Reply, error) {
		resp.ErrorCode = code
		return now(resp)
	}
	if secret == "" {
		return fail(kerr.DelegationTokenAuthDisabled.Code)
	}
	if !tokenRequestsAllowed(req) {
		return fail(kerr.DelegationTokenRequestNotAllowed.Code)
	}
	var renewers []string
	for _, rn := range r.Renewers {
		if rn.PrincipalType != "User" {
			return fail(kerr.InvalidPrincipalType.Code)
		}
		renewers = append(renewers, rn.PrincipalType+":"+rn.PrincipalName)
	}
	if typ, _ := splitPrincipal(owner); typ != "User" {
		return fail(kerr.InvalidPrincipalType.Code)
	}
	if owner != requester && !h.allowed(req, acl.OpCreateTokens, acl.ResourceUser, owner) {
		return fail(kerr.DelegationTokenAuthorizationFailed.Code)
	}
	s := h.c.Broker().Settings()
	nowMs := time.Now().UnixMilli()
	life := s.DelegationTokenMaxLifetime.Milliseconds()
	if r.MaxLifetimeMillis > 0 {
		life = min(life, r.MaxLifetimeMillis)
	}
	tok := metadata.DelegationToken{ID: newTokenID(), Owner: owner, Requester: requester, Renewers: renewers,
		Issued: nowMs, Max: nowMs + life}
	tok.Expiry = min(tok.Max, nowMs+s.DelegationTokenExpiryTime.Milliseconds())
	err := h.c.ChangeTokens(metadata.TokenChange{Create: &tok, Remove: h.c.Security().ExpiredTokens(nowMs)})
	if errors.Is(err, metadata.ErrTokenExists) { // 128 random bits taken: try once more
		tok.ID = newTokenID()
		err = h.c.ChangeTokens(metadata.TokenChange{Create: &tok})
	}
	if err != nil {
		h.log.Warn("delegation token not created", "owner", owner, "err", err)
		return fail(errorCode(err))
	}
	resp.IssueTimestamp, resp.ExpiryTimestamp, resp.MaxTimestamp = tok.Issued, tok.Expiry, tok.Max
	resp.TokenID = tok.ID
	resp.HMAC = auth.TokenHMAC(secret, tok.ID)
	h.log.Info("delegation token created", "token", tok.ID, "owner", owner, "requester", requester)
	return now(resp)
}
