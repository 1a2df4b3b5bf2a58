package console

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// API tokens let a script or a device call the API (HTTP produce above
// all) without a browser session: a logged-in user creates one, and
// requests send it as "Authorization: Bearer <token>". A token runs as
// the user who created it, with that user's ACLs: it holds a Kafka client
// authenticated as the user, like a session.
//
// Where they live: when the cluster has delegation tokens on
// (delegation.token.secret.key), a token is a Kafka delegation token made
// as the user (dtokens.go): the cluster keeps it, so it survives restarts
// and works through every console. Otherwise in this console's memory,
// hashed (SHA-256; the secret is shown once, at creation): such tokens end
// at their expiry, on revocation, and when the console stops, and each
// console of a cluster has its own. Never the user's password: Kafka has
// no impersonation, so the console acts as a user only through the
// user's own login or a delegation token of the user.

// maxTokensPerUser bounds one user's live tokens; creating one more
// revokes the oldest.
const maxTokensPerUser = 16

// tokenInfo is what a token's owner may see of it.
type tokenInfo struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Created int64  `json:"created"`
	Expires int64  `json:"expires"`
	// Durable: a Kafka delegation token (dtokens.go), kept by the
	// cluster; else a token of this console's memory.
	Durable bool `json:"durable"`
}

type tokenRequest struct {
	Name       string `json:"name"`
	TTLSeconds int64  `json:"ttl_seconds"`
}

// createToken makes an API token for the session's user. Only a session
// may: a token cannot mint tokens.
func (c *Console) createToken(w http.ResponseWriter, r *http.Request) error {
	x, err := browserSession(r)
	if err != nil {
		return err
	}
	var req tokenRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" || len(req.Name) > 100 {
		return badRequest("bad_token", "name: want 1 to 100 characters")
	}
	ttl := c.cfg.Login.TokenTTL
	if req.TTLSeconds < 0 || time.Duration(req.TTLSeconds)*time.Second > ttl {
		return badRequest("bad_token", "ttl_seconds=%d: want 1 to %d (0 for the longest)", req.TTLSeconds, int64(ttl/time.Second))
	}
	if req.TTLSeconds > 0 {
		ttl = time.Duration(req.TTLSeconds) * time.Second
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	if info, secret, ok, err := c.createDelegationToken(ctx, x, req.Name, ttl); ok {
		if err != nil {
			return err
		}
		c.log.Info("console: api token created", "user", x.user, "token", info.ID, "name", info.Name, "durable", true)
		writeJSON(w, http.StatusCreated, struct {
			tokenInfo
			Token string `json:"token"`
		}{info, secret})
		return nil
	}
	p, err := c.newPrincipal(x.user, x.p.auth)
	if err != nil {
		return err
	}
	var id [8]byte
	rand.Read(id[:])
	now := time.Now()
	ti := &tokenInfo{ID: hex.EncodeToString(id[:]), Name: req.Name, Created: now.UnixMilli(), Expires: now.Add(ttl).UnixMilli()}
	secret := "strom_" + ti.ID + "_" + randomSecret()
	t := &session{key: hashSecret(secret), user: x.user, token: ti, created: now, expires: now.Add(ttl), p: p}
	if err := c.sessions.add(t, c.cfg.Login.MaxSessions, maxTokensPerUser); err != nil {
		p.end()
		return err
	}
	c.log.Info("console: api token created", "user", x.user, "token", ti.ID, "name", ti.Name)
	writeJSON(w, http.StatusCreated, struct {
		tokenInfo
		Token string `json:"token"`
	}{*ti, secret})
	return nil
}

// listTokens lists the session's user's live tokens.
func (c *Console) listTokens(w http.ResponseWriter, r *http.Request) error {
	x, err := browserSession(r)
	if err != nil {
		return err
	}
	now := time.Now()
	ts := c.sessions.list(func(y *session) bool {
		return y.token != nil && !y.token.Durable && y.user == x.user && now.Before(y.expires)
	})
	out := make([]tokenInfo, 0, len(ts))
	for _, t := range ts {
		out = append(out, *t.token)
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	dts, err := c.userDelegationTokens(ctx, x)
	if err != nil && !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		return err
	}
	for _, t := range dts {
		out = append(out, tokenInfo{ID: t.TokenID, Name: c.dtNames.get(t.TokenID), Created: t.IssueTimestamp.UnixMilli(),
			Expires: t.ExpiryTimestamp.UnixMilli(), Durable: true})
	}
	slices.SortFunc(out, func(a, b tokenInfo) int { return int(a.Created - b.Created) })
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
	return nil
}

// deleteToken revokes one of the session's user's tokens: its client
// closes, its requests in flight end.
func (c *Console) deleteToken(w http.ResponseWriter, r *http.Request) error {
	x, err := browserSession(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	n := c.sessions.remove(func(y *session) bool {
		return y.token != nil && !y.token.Durable && y.user == x.user && y.token.ID == id
	})
	if n == 0 {
		ctx, cancel := c.requestCtx(r)
		defer cancel()
		dts, err := c.userDelegationTokens(ctx, x)
		if err != nil && !errors.Is(err, kerr.DelegationTokenAuthDisabled) {
			return err
		}
		i := slices.IndexFunc(dts, func(t kadm.DelegationToken) bool { return t.TokenID == id })
		if i < 0 {
			return notFound("unknown_token", "no token %q of user %q", id, x.user)
		}
		if err := c.revokeDelegationToken(ctx, x, dts[i]); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	c.log.Info("console: api token revoked", "user", x.user, "token", id)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// browserSession is the request's login session, or an error for a
// console without login or a request made with a token.
func browserSession(r *http.Request) (*session, error) {
	x := sessionOf(r.Context())
	if x == nil {
		return nil, notFound("login_disabled", "API tokens need the console's login (a broker with a SASL listener)")
	}
	if x.token != nil {
		return nil, &apiError{Status: http.StatusForbidden, Code: "token_not_allowed", Msg: "an API token cannot manage tokens: log in"}
	}
	return x, nil
}
