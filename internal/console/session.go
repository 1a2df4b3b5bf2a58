package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// Login configures the console's login (Config.Login). The console then
// answers API calls only to a logged-in session (a cookie) or an API
// token (Bearer), and makes each call to Kafka as that user: it checks a
// login by authenticating to the broker with SASL (Mechanism) as the user,
// and keeps that authenticated client for the session. The broker's ACLs
// decide what each call may do; the console holds no authorization logic.
type Login struct {
	// Mechanism is the SASL mechanism the console logs users in with:
	// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 [SCRAM-SHA-512].
	Mechanism string
	// SessionTTL is how long a session lasts from login [8h].
	SessionTTL time.Duration
	// MaxSessions bounds the sessions (and so the Kafka clients) open at
	// once, tokens included [256]; a login beyond it is refused with 503.
	// MaxSessionsPerUser bounds one user's: a login beyond it ends that
	// user's oldest session [8].
	MaxSessions        int
	MaxSessionsPerUser int
	// TokenTTL is the longest an API token lasts [24h].
	TokenTTL time.Duration
	// SecureCookie sets Secure on the session cookie even when a request
	// did not come over TLS (a TLS-terminating proxy in front). Requests
	// over TLS always get it.
	SecureCookie bool
}

func (l *Login) defaults() {
	if l.Mechanism == "" {
		l.Mechanism = "SCRAM-SHA-512"
	}
	if l.SessionTTL <= 0 {
		l.SessionTTL = 8 * time.Hour
	}
	if l.MaxSessions <= 0 {
		l.MaxSessions = 256
	}
	if l.MaxSessionsPerUser <= 0 {
		l.MaxSessionsPerUser = 8
	}
	if l.TokenTTL <= 0 {
		l.TokenTTL = 24 * time.Hour
	}
}

// mechanism returns the SASL mechanism that authenticates user.
func (l *Login) mechanism(user, pass string) (sasl.Mechanism, error) {
	switch strings.ToUpper(l.Mechanism) {
	case "PLAIN":
		return plain.Auth{User: user, Pass: pass}.AsMechanism(), nil
	case "SCRAM-SHA-256":
		return scram.Auth{User: user, Pass: pass}.AsSha256Mechanism(), nil
	case "SCRAM-SHA-512":
		return scram.Auth{User: user, Pass: pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("console: login mechanism %q: want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", l.Mechanism)
}

// maxLoginsInFlight bounds the logins being checked at once.
const maxLoginsInFlight = 4

// Cookie and header names.
const (
	sessionCookie = "strom_session"
	csrfHeader    = "X-CSRF-Token"
)

// principal is who the console is, towards Kafka, for one request: the
// console's own client (no login), or a user's session or API token. A
// user's principal owns its client: end closes it, once, and cancels ctx,
// which ends the requests and streams still running as that user.
type principal struct {
	user string // "" for the console's own identity
	cl   *kgo.Client
	adm  *kadm.Client
	// auth authenticates another client (a page read, a stream) as user;
	// nil for the console's own identity.
	auth   kgo.Opt
	ctx    context.Context
	cancel context.CancelFunc
	once   sync.Once
}

func (p *principal) end() {
	p.once.Do(func() {
		p.cancel()
		if p.user != "" {
			p.cl.Close()
		}
	})
}

type principalKey struct{}

// who is the principal of a request's context: the session's or token's
// the api wrapper put there, or the console's own.
func (c *Console) who(ctx context.Context) *principal {
	if p, ok := ctx.Value(principalKey{}).(*principal); ok {
		return p
	}
	return c.self
}

// admin and client are the Kafka clients of ctx's principal.
func (c *Console) admin(ctx context.Context) *kadm.Client { return c.who(ctx).adm }
func (c *Console) client(ctx context.Context) *kgo.Client { return c.who(ctx).cl }

// userOpts are the options of a short-lived client (a page read, a
// stream) that runs as ctx's principal.
func (c *Console) userOpts(ctx context.Context, extra ...kgo.Opt) []kgo.Opt {
	if p := c.who(ctx); p.auth != nil {
		extra = append(extra, p.auth)
	}
	return c.clientOpts(extra...)
}

// newPrincipal builds the shared client of a principal: producing (the
// console's partitioner, no linger) and admin requests.
func (c *Console) newPrincipal(user string, auth kgo.Opt) (*principal, error) {
	opts := []kgo.Opt{kgo.RecordPartitioner(c.part), kgo.ProducerLinger(0)}
	if auth != nil {
		opts = append(opts, auth)
	}
	cl, err := kgo.NewClient(c.clientOpts(opts...)...)
	if err != nil {
		return nil, fmt.Errorf("console: kafka client: %w", err)
	}
	adm := kadm.NewClient(cl)
	adm.SetTimeoutMillis(int32(c.cfg.RequestTimeout / time.Millisecond))
	ctx, cancel := context.WithCancel(c.ctx)
	return &principal{user: user, cl: cl, adm: adm, auth: auth, ctx: ctx, cancel: cancel}, nil
}

// authenticate logs user in to the broker: it builds the user's client
// and makes one request with it, so that the broker checks the password.
// A refused login is errBadCredentials, whatever the broker disliked.
func (c *Console) authenticate(ctx context.Context, user, pass string) (*principal, error) {
	mech, err := c.cfg.Login.mechanism(user, pass)
	if err != nil {
		return nil, err
	}
	p, err := c.newPrincipal(user, kgo.SASL(mech))
	if err != nil {
		return nil, err
	}
	// Metadata for no topic: any authenticated user may ask it.
	if _, err := kadm.NewClient(p.cl).BrokerMetadata(ctx); err != nil {
		p.end()
		if errors.Is(err, kerr.SaslAuthenticationFailed) || errors.Is(err, kerr.IllegalSaslState) || errors.Is(err, kerr.UnsupportedSaslMechanism) {
			return nil, errBadCredentials
		}
		return nil, fmt.Errorf("console: login %q: %w", user, err)
	}
	return p, nil
}

var errBadCredentials = &apiError{Status: http.StatusUnauthorized, Code: "bad_credentials", Msg: "wrong user name or password"}

// session is a logged-in browser (or, with token set, an API token).
type session struct {
	key     [32]byte // SHA-256 of the secret the client holds
	user    string
	csrf    string // "" for a token: no cookie, nothing to forge
	token   *tokenInfo
	created time.Time
	expires time.Time
	p       *principal
	// dtCheck is when a delegation token's login is next checked against
	// the cluster (unix nanoseconds; dtokens.go); unused otherwise.
	dtCheck atomic.Int64
}

// sessions holds the live sessions and tokens by the hash of their
// secret: the secret itself is only ever in the client's hands, so a
// heap dump or a log line of the map lends no one a session.
type sessions struct {
	mu struct {
		sync.Mutex
		byKey map[[32]byte]*session
	}
}

func hashSecret(s string) [32]byte { return sha256.Sum256([]byte(s)) }

// randomSecret returns 32 random bytes, base64url.
func randomSecret() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// expiredLocked removes the sessions that expired and returns them, to be
// ended outside the lock (closing a client waits for its goroutines).
// mu must be held.
func (s *sessions) expiredLocked(now time.Time) []*session {
	var out []*session
	for k, x := range s.mu.byKey {
		if !now.Before(x.expires) {
			delete(s.mu.byKey, k)
			out = append(out, x)
		}
	}
	return out
}

func endAll(xs []*session) {
	for _, x := range xs {
		x.p.end()
	}
}

// add registers x under the console's limits: at most max in all (else
// errTooManySessions), at most perUser of x's kind per user (the oldest
// goes).
func (s *sessions) add(x *session, max, perUser int) error {
	s.mu.Lock()
	gone := s.expiredLocked(x.created)
	var mine []*session
	for _, y := range s.mu.byKey {
		if y.user == x.user && (y.token == nil) == (x.token == nil) {
			mine = append(mine, y)
		}
	}
	for len(mine) >= perUser {
		oldest := 0
		for i, y := range mine {
			if y.created.Before(mine[oldest].created) {
				oldest = i
			}
		}
		delete(s.mu.byKey, mine[oldest].key)
		gone = append(gone, mine[oldest])
		mine = append(mine[:oldest], mine[oldest+1:]...)
	}
	var err error
	if len(s.mu.byKey) >= max {
		err = errTooManySessions
	} else {
		s.mu.byKey[x.key] = x
	}
	s.mu.Unlock()
	endAll(gone)
	return err
}

var errTooManySessions = &apiError{Status: http.StatusServiceUnavailable, Code: "too_many_sessions", Msg: "the console has as many sessions open as it allows: try again later"}

// startSweeper ends expired sessions and tokens in the background (their
// Kafka clients hold connections) at least every sweepEvery; lookups and
// logins also drop the expired ones they meet. The goroutine is the
// console's: Close stops it (c.ctx) and waits for it (c.wg).
func (c *Console) startSweeper() {
	every := min(c.cfg.Login.SessionTTL/4, time.Minute)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.ctx.Done():
				return
			case now := <-t.C:
				c.sessions.mu.Lock()
				gone := c.sessions.expiredLocked(now)
				c.sessions.mu.Unlock()
				endAll(gone)
			}
		}
	}()
}

// lookup returns the live session whose secret is secret, or nil.
func (s *sessions) lookup(secret string, now time.Time) *session {
	if secret == "" {
		return nil
	}
	k := hashSecret(secret)
	s.mu.Lock()
	x := s.mu.byKey[k]
	if x != nil && !now.Before(x.expires) {
		delete(s.mu.byKey, k)
		s.mu.Unlock()
		x.p.end()
		return nil
	}
	s.mu.Unlock()
	return x
}

// remove ends the sessions for which drop is true.
func (s *sessions) remove(drop func(*session) bool) int {
	s.mu.Lock()
	var gone []*session
	for k, x := range s.mu.byKey {
		if drop(x) {
			delete(s.mu.byKey, k)
			gone = append(gone, x)
		}
	}
	s.mu.Unlock()
	endAll(gone)
	return len(gone)
}

// list returns the sessions for which keep is true.
func (s *sessions) list(keep func(*session) bool) []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, x := range s.mu.byKey {
		if keep(x) {
			out = append(out, x)
		}
	}
	return out
}

// authRequest finds who a request runs as, under Login: the session of
// its cookie, or the API token of its Authorization header. It returns
// nil when there is neither (or they expired).
func (c *Console) authRequest(r *http.Request) *session {
	now := time.Now()
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return nil
		}
		tok = strings.TrimSpace(tok)
		x := c.sessions.lookup(tok, now)
		if x == nil && strings.HasPrefix(tok, dtPrefix) {
			x = c.delegationTokenSession(r, tok)
		} else if x != nil && x.token != nil && x.token.Durable && !c.delegationTokenValid(r, x) {
			return nil
		}
		if x == nil || x.token == nil {
			return nil // a session's cookie value is not a token
		}
		return x
	}
	ck, err := r.Cookie(sessionCookie)
	if err != nil {
		return nil
	}
	x := c.sessions.lookup(ck.Value, now)
	if x == nil || x.token != nil {
		return nil // a token is not a cookie
	}
	return x
}

// csrfOK reports whether a state-changing request carries its session's
// CSRF token (a page of another site cannot read it: it is only in the
// login reply and GET /api/v1/session, same-origin JSON).
func csrfOK(x *session, r *http.Request) bool {
	if x.token != nil {
		return true // Bearer: the browser never adds it on its own
	}
	got := r.Header.Get(csrfHeader)
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(x.csrf)) == 1
}

func (c *Console) setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || c.cfg.Login.SecureCookie,
	})
}

type loginRequest struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// login checks a user name and password with the broker and opens a
// session: an HttpOnly, SameSite=Strict cookie (Secure under TLS) and a
// CSRF token the page sends back in X-CSRF-Token.
func (c *Console) login(w http.ResponseWriter, r *http.Request) error {
	if c.cfg.Login == nil {
		return notFound("login_disabled", "this console has no login: the broker has no SASL listener, so the console is open to whoever reaches it (keep it on loopback)")
	}
	var req loginRequest
	if err := decodeBody(r, &req); err != nil {
		return err
	}
	if req.User == "" || req.Password == "" || len(req.User) > 255 || len(req.Password) > 1024 {
		return badRequest("bad_login", "send {\"user\":\"...\",\"password\":\"...\"}")
	}
	// Logins at once are few: each opens a Kafka connection, and guessing
	// passwords in parallel should not be cheaper than in a row (the
	// broker delays each refusal).
	select {
	case c.loginSlots <- struct{}{}:
		defer func() { <-c.loginSlots }()
	default:
		w.Header().Set("Retry-After", "1")
		return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_logins", Msg: "too many logins in progress: try again in a second"}
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	p, err := c.authenticate(ctx, req.User, req.Password)
	if err != nil {
		if errors.Is(err, errBadCredentials) {
			c.log.Info("console: login refused", "user", req.User, "remote", r.RemoteAddr)
		}
		return err
	}
	secret, now := randomSecret(), time.Now()
	x := &session{key: hashSecret(secret), user: req.User, csrf: randomSecret(), created: now, expires: now.Add(c.cfg.Login.SessionTTL), p: p}
	if err := c.sessions.add(x, c.cfg.Login.MaxSessions, c.cfg.Login.MaxSessionsPerUser); err != nil {
		p.end()
		return err
	}
	c.log.Info("console: login", "user", req.User, "remote", r.RemoteAddr)
	c.setCookie(w, r, secret, int((c.cfg.Login.SessionTTL+time.Second-1)/time.Second))
	writeJSON(w, http.StatusOK, sessionJSON{LoginRequired: true, User: x.user, CSRFToken: x.csrf, Expires: x.expires.UnixMilli()})
	return nil
}

// logout ends the request's session: its Kafka client closes and its
// streams end.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) error {
	x := sessionOf(r.Context())
	if x != nil {
		c.sessions.remove(func(y *session) bool { return y == x })
		c.log.Info("console: logout", "user", x.user, "remote", r.RemoteAddr)
	}
	c.setCookie(w, r, "", -1)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionJSON struct {
	LoginRequired bool   `json:"login_required"`
	User          string `json:"user,omitempty"`
	CSRFToken     string `json:"csrf_token,omitempty"`
	Expires       int64  `json:"expires,omitempty"`
}

// getSession tells the front end whether it must log in, and who it is.
func (c *Console) getSession(w http.ResponseWriter, r *http.Request) error {
	out := sessionJSON{LoginRequired: c.cfg.Login != nil}
	if out.LoginRequired {
		if x := c.authRequest(r); x != nil && x.token == nil {
			out.User, out.CSRFToken, out.Expires = x.user, x.csrf, x.expires.UnixMilli()
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

type sessionKey struct{}

// sessionOf is the session (or token) a request runs as; nil without
// login.
func sessionOf(ctx context.Context) *session {
	x, _ := ctx.Value(sessionKey{}).(*session)
	return x
}

// withSession puts x and its principal in r's context, and ends the
// request's work when the session ends (logout, expiry).
func withSession(r *http.Request, x *session) *http.Request {
	ctx := context.WithValue(r.Context(), sessionKey{}, x)
	ctx = context.WithValue(ctx, principalKey{}, x.p)
	return r.WithContext(ctx)
}
