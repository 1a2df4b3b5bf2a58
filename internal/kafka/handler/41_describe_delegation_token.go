package handler

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeDelegationToken (KIP-48): the tokens of the owners asked (all
// with Owners null, none with an empty list), with their HMACs, that the
// requester may see: its own, those it may renew, those it has DESCRIBE
// on (DelegationToken resource, the token id) and those of owners it has
// DESCRIBE_TOKENS on (User resource, KIP-373). Without an authorizer every
// token is visible, as in Kafka. Expired tokens are left out.
//
// Behavior: DELEGATION_TOKEN_AUTH_DISABLED without tokens.
//
// Version notes: v1 is v0; v2 flexible; v3 the requester fields.
func init() { register(41, 0, 3, handleDescribeDelegationToken) }

func handleDescribeDelegationToken(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeDelegationTokenRequest)
	resp := r.ResponseKind().(*kmsg.DescribeDelegationTokenResponse)
	secret := h.tokenSecret()
	if secret == "" {
		resp.ErrorCode = kerr.DelegationTokenAuthDisabled.Code
		return now(resp)
	}
	var owners []string
	for _, o := range r.Owners {
		owners = append(owners, o.PrincipalType+":"+o.PrincipalName)
	}
	principal := principalOf(req)
	nowMs := time.Now().UnixMilli()
	for _, t := range h.c.Security().Tokens() {
		if t.Expiry <= nowMs || r.Owners != nil && !slices.Contains(owners, t.Owner) {
			continue
		}
		if !ownerOrRenewer(t, principal) && !h.allowed(req, acl.OpDescribe, acl.ResourceDelegationToken, t.ID) &&
			!h.allowed(req, acl.OpDescribeTokens, acl.ResourceUser, t.Owner) {
			continue
		}
		d := kmsg.NewDescribeDelegationTokenResponseTokenDetail()
		d.PrincipalType, d.PrincipalName = splitPrincipal(t.Owner)
		d.TokenRequesterPrincipalType, d.TokenRequesterPrincipalName = splitPrincipal(t.Requester)
		d.IssueTimestamp, d.ExpiryTimestamp, d.MaxTimestamp = t.Issued, t.Expiry, t.Max
		d.TokenID = t.ID
		d.HMAC = auth.TokenHMAC(secret, t.ID)
		for _, rn := range t.Renewers {
			x := kmsg.NewDescribeDelegationTokenResponseTokenDetailRenewer()
			x.PrincipalType, x.PrincipalName = splitPrincipal(rn)
			d.Renewers = append(d.Renewers, x)
		}
		resp.TokenDetails = append(resp.TokenDetails, d)
	}
	return now(resp)
}
