package console

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Durable API tokens are Kafka delegation tokens (KIP-48), when the
// cluster has them on (delegation.token.secret.key): the console creates
// one as the logged-in user (CreateDelegationToken, its max lifetime the
// token's TTL) and hands out "strom_dt_<token id>.<HMAC, base64url>". A
// request with it logs in to Kafka by SCRAM with tokenauth=true and acts
// as the token's owner. The broker stores the token, so it survives a
// restart of the console or the broker and works on every node's console;
// revocation is ExpireDelegationToken. The console keeps only a cache of
// the clients it logged in with (in the sessions map, by the secret's
// hash), until the token's expiry; every dtRecheck one request checks that
// the token still exists (a DescribeDelegationTokens through the token's
// own client), so a token revoked elsewhere stops working here within that
// time, while the requests and streams running on the cached client are
// never cut by the check itself. Requests that find the token not logged
// in wait for one login of it (dtLogins), not one each. A token's name
// lives in this console's memory only (Kafka's tokens have none): after a
// restart it lists as "".
// Without delegation tokens on the cluster, tokens stay in memory
// (tokens.go).

const (
	dtPrefix = "strom_dt_"
)

// dtRecheck is how often a cached token login checks that its token
// still exists (a revocation elsewhere takes effect within it). A
// variable for tests.
var dtRecheck = time.Minute

// dtSecret is the API token a user is given for a delegation token.
func dtSecret(id string, mac []byte) string {
	return dtPrefix + id + "." + base64.RawURLEncoding.EncodeToString(mac)
}

// parseDTSecret splits a dtSecret.
func parseDTSecret(s string) (id string, mac []byte, ok bool) {
	rest, ok := strings.CutPrefix(s, dtPrefix)
	if !ok {
		return "", nil, false
	}
	id, enc, ok := strings.Cut(rest, ".")
	if !ok || id == "" || len(id) > 128 {
		return "", nil, false
	}
	mac, err := base64.RawURLEncoding.DecodeString(enc)
	if err != nil || len(mac) == 0 || len(mac) > 128 {
		return "", nil, false
	}
	return id, mac, true
}

// dtNames keeps the names users gave their delegation tokens here.
type dtNames struct {
	mu sync.Mutex
	m  map[string]string // token id -> name
}

func (n *dtNames) set(id, name string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.m == nil {
		n.m = map[string]string{}
	}
	n.m[id] = name
}

func (n *dtNames) get(id string) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.m[id]
}

func (n *dtNames) drop(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.m, id)
}

// tokenAuth is the SASL login of a delegation token: SCRAM (Kafka's
// tokens have no other mechanism) of the console's login mechanism's
// hash, SHA-512 unless that is SCRAM-SHA-256.
func (c *Console) tokenAuth(id string, mac []byte) kgo.Opt {
	a := scram.Auth{User: id, Pass: base64.StdEncoding.EncodeToString(mac), IsToken: true}
	if strings.EqualFold(c.cfg.Login.Mechanism, "SCRAM-SHA-256") {
		return kgo.SASL(a.AsSha256Mechanism())
	}
	return kgo.SASL(a.AsSha512Mechanism())
}

// createDelegationToken makes a durable API token for the session x. ok
// is false when the cluster has delegation tokens off (the caller makes
// a token in memory instead).
func (c *Console) createDelegationToken(ctx context.Context, x *session, name string, ttl time.Duration) (info tokenInfo, secret string, ok bool, err error) {
	if err := c.trimDelegationTokens(ctx, x); err != nil {
		if errors.Is(err, kerr.DelegationTokenAuthDisabled) {
			return tokenInfo{}, "", false, nil
		}
		return tokenInfo{}, "", true, err
	}
	dt, err := x.p.adm.CreateDelegationToken(ctx, kadm.CreateDelegationToken{MaxLifetime: ttl})
	if errors.Is(err, kerr.DelegationTokenAuthDisabled) {
		return tokenInfo{}, "", false, nil
	}
	if err != nil {
		return tokenInfo{}, "", true, err
	}
	c.dtNames.set(dt.TokenID, name)
	info = tokenInfo{ID: dt.TokenID, Name: name, Created: dt.IssueTimestamp.UnixMilli(), Expires: dt.ExpiryTimestamp.UnixMilli(), Durable: true}
	return info, dtSecret(dt.TokenID, dt.HMAC), true, nil
}

// userDelegationTokens lists x's user's live delegation tokens.
func (c *Console) userDelegationTokens(ctx context.Context, x *session) (kadm.DelegationTokens, error) {
	ts, err := x.p.adm.DescribeDelegationTokens(ctx, kadm.Principal{Type: "User", Name: x.user})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	live := ts[:0]
	for _, t := range ts {
		if t.ExpiryTimestamp.After(now) {
			live = append(live, t)
		}
	}
	return live, nil
}

// trimDelegationTokens expires x's user's oldest delegation tokens until
// one more fits under maxTokensPerUser.
func (c *Console) trimDelegationTokens(ctx context.Context, x *session) error {
	ts, err := c.userDelegationTokens(ctx, x)
	if err != nil {
		return err
	}
	for len(ts) >= maxTokensPerUser {
		oldest := 0
		for i, t := range ts {
			if t.IssueTimestamp.Before(ts[oldest].IssueTimestamp) {
				oldest = i
			}
		}
		if err := c.revokeDelegationToken(ctx, x, ts[oldest]); err != nil {
			return err
		}
		ts = append(ts[:oldest], ts[oldest+1:]...)
	}
	return nil
}

// revokeDelegationToken expires t now and drops this console's clients of
// it.
func (c *Console) revokeDelegationToken(ctx context.Context, x *session, t kadm.DelegationToken) error {
	if _, err := x.p.adm.ExpireDelegationToken(ctx, t.HMAC, -1); err != nil {
		return err
	}
	c.sessions.remove(func(y *session) bool { return y.token != nil && y.token.Durable && y.token.ID == t.TokenID })
	c.dtNames.drop(t.TokenID)
	c.log.Info("console: api token revoked", "user", x.user, "token", t.TokenID)
	return nil
}

// dtLogins makes concurrent requests with one token not yet logged in
// wait for a single login of it.
type dtLogins struct {
	mu       sync.Mutex
	inflight map[string]chan struct{} // by token id; closed when its login ends
}

// delegationTokenSession logs a request's delegation token in: a new
// client authenticated with it, which then describes the token to learn
// its owner and expiry. The session is cached until the token's expiry.
// nil when the token does not log in (unknown, expired, revoked), or the
// request ended while waiting for a login slot.
func (c *Console) delegationTokenSession(r *http.Request, secret string) *session {
	id, mac, ok := parseDTSecret(secret)
	if !ok {
		return nil
	}
	for {
		if x := c.sessions.lookup(secret, time.Now()); x != nil {
			return x
		}
		c.dtLogins.mu.Lock()
		if ch, busy := c.dtLogins.inflight[id]; busy {
			c.dtLogins.mu.Unlock()
			select {
			case <-ch:
				continue // logged in (look it up), or refused (try ourselves)
			case <-r.Context().Done():
				return nil
			}
		}
		if c.dtLogins.inflight == nil {
			c.dtLogins.inflight = map[string]chan struct{}{}
		}
		ch := make(chan struct{})
		c.dtLogins.inflight[id] = ch
		c.dtLogins.mu.Unlock()
		x := c.loginDelegationToken(r, secret, id, mac)
		c.dtLogins.mu.Lock()
		delete(c.dtLogins.inflight, id)
		close(ch)
		c.dtLogins.mu.Unlock()
		return x
	}
}

// loginDelegationToken is delegationTokenSession's one login.
func (c *Console) loginDelegationToken(r *http.Request, secret, id string, mac []byte) *session {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	// Logins at once are few (session.go's loginSlots): each opens a
	// Kafka connection. A token's request waits for a slot (a device's
	// request should not fail because others log in).
	select {
	case c.loginSlots <- struct{}{}:
		defer func() { <-c.loginSlots }()
	case <-ctx.Done():
		return nil
	}
	now := time.Now()
	p, err := c.newPrincipal("token "+id, c.tokenAuth(id, mac)) // the owner, once known
	if err != nil {
		return nil
	}
	tok, err := describeOwnToken(ctx, p.adm, id)
	if err != nil || tok == nil || !tok.ExpiryTimestamp.After(now) {
		p.end()
		c.log.Info("console: api token refused", "token", id, "remote", r.RemoteAddr, "err", err)
		return nil
	}
	p.user = tok.Owner.Name
	x := &session{key: hashSecret(secret), user: tok.Owner.Name, created: now, p: p, expires: tok.ExpiryTimestamp,
		token: &tokenInfo{ID: id, Name: c.dtNames.get(id), Created: tok.IssueTimestamp.UnixMilli(), Expires: tok.ExpiryTimestamp.UnixMilli(), Durable: true}}
	x.dtCheck.Store(now.Add(dtRecheck).UnixNano())
	// A cached login is no token of its own: it never pushes out the
	// user's other tokens (the cluster bounds delegation tokens per user
	// at creation, trimDelegationTokens), only the console's total bounds it.
	if err := c.sessions.add(x, c.cfg.Login.MaxSessions, c.cfg.Login.MaxSessions); err != nil {
		p.end()
		return nil
	}
	return x
}

// describeOwnToken finds token id among those adm's principal may see (a
// token's own client sees it: its owner's).
func describeOwnToken(ctx context.Context, adm *kadm.Client, id string) (*kadm.DelegationToken, error) {
	ts, err := adm.DescribeDelegationTokens(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ts {
		if ts[i].TokenID == id {
			return &ts[i], nil
		}
	}
	return nil, nil
}

// delegationTokenValid re-checks a cached token login every dtRecheck: the
// request that finds the check due (one: the others go on) describes the
// token through the login's client; a token gone (revoked elsewhere) or
// expired ends the login, and the request is refused. A check that cannot
// reach the cluster lets the request go on (it needs the cluster anyway)
// and is tried again by the next request.
func (c *Console) delegationTokenValid(r *http.Request, x *session) bool {
	due := x.dtCheck.Load()
	now := time.Now()
	if now.UnixNano() < due || !x.dtCheck.CompareAndSwap(due, now.Add(dtRecheck).UnixNano()) {
		return true
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	tok, err := describeOwnToken(ctx, x.p.adm, x.token.ID)
	if err != nil {
		x.dtCheck.Store(0)
		return true
	}
	if tok == nil || !tok.ExpiryTimestamp.After(now) {
		c.sessions.remove(func(y *session) bool { return y == x })
		c.log.Info("console: api token gone from the cluster; its login ends", "token", x.token.ID, "user", x.user)
		return false
	}
	return true
}
