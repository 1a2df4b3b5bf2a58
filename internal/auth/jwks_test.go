package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuer is an identity provider's JWKS endpoint for tests: its keys can
// be rotated and its answers broken, and it counts the fetches.
type issuer struct {
	t      *testing.T
	srv    *httptest.Server
	hits   atomic.Int64
	mu     sync.Mutex
	keys   map[string]*ecdsa.PrivateKey
	status int    // answered instead of the JWKS when not 0
	body   []byte // answered instead of the JWKS when not nil
}

func newIssuer(t *testing.T, kids ...string) *issuer {
	is := &issuer{t: t, keys: map[string]*ecdsa.PrivateKey{}}
	is.rotate(kids...)
	is.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		is.mu.Lock()
		defer is.mu.Unlock()
		if is.status != 0 {
			w.WriteHeader(is.status)
			return
		}
		if is.body != nil {
			w.Write(is.body)
			return
		}
		b64 := base64.RawURLEncoding.EncodeToString
		var keys []map[string]string
		for kid, k := range is.keys {
			keys = append(keys, map[string]string{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
				"x": b64(k.X.FillBytes(make([]byte, 32))), "y": b64(k.Y.FillBytes(make([]byte, 32)))})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(is.srv.Close)
	return is
}

// rotate replaces the issuer's keys with new ones of these kids.
func (is *issuer) rotate(kids ...string) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.keys = map[string]*ecdsa.PrivateKey{}
	for _, kid := range kids {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			is.t.Fatal(err)
		}
		is.keys[kid] = k
	}
}

func (is *issuer) setAnswer(status int, body []byte) {
	is.mu.Lock()
	defer is.mu.Unlock()
	is.status, is.body = status, body
}

// token signs a token for sub with kid's key.
func (is *issuer) token(kid, sub string) string {
	is.mu.Lock()
	k := is.keys[kid]
	is.mu.Unlock()
	if k == nil {
		is.t.Fatalf("no key %s", kid)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": sub, "exp": time.Now().Add(time.Hour).Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(k)
	if err != nil {
		is.t.Fatal(err)
	}
	return s
}

// options fetch the issuer's JWKS over https, as the broker's fetcher
// does (this package opens no socket itself).
func (is *issuer) options() JWKSOptions {
	u := is.srv.URL + "/jwks.json"
	return JWKSOptions{Source: u, Logger: slog.New(slog.DiscardHandler), Fetch: func(ctx context.Context) ([]byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return nil, err
		}
		resp, err := is.srv.Client().Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		return io.ReadAll(resp.Body)
	}}
}

// TestJWKSFromURL: a JWKS at an https URL is fetched at start; a token
// whose kid it lacks (the issuer rotated its keys) fetches it again, once
// per kidRefreshEvery however many such tokens come; the keys of the old
// set stop working with the new set.
func TestJWKSFromURL(t *testing.T) {
	is := newIssuer(t, "k1")
	v, err := FetchJWKS(context.Background(), is.options())
	if err != nil {
		t.Fatal(err)
	}
	if p, _, err := v.validate(is.token("k1", "alice")); err != nil || p != "User:alice" {
		t.Fatalf("k1: %q %v", p, err)
	}
	if h := is.hits.Load(); h != 1 {
		t.Fatalf("%d fetches after start and a known kid, want 1", h)
	}
	old := is.token("k1", "alice")
	is.rotate("k2")
	if p, _, err := v.validate(is.token("k2", "bob")); err != nil || p != "User:bob" {
		t.Fatalf("k2 after the rotation: %q %v", p, err)
	}
	if h := is.hits.Load(); h != 2 {
		t.Fatalf("%d fetches after a token of a new kid, want 2", h)
	}
	if _, _, err := v.validate(old); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("a token of the rotated-out key: %v", err)
	}
	is.rotate("k3")
	for range 20 {
		if _, _, err := v.validate(is.token("k3", "mallory")); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("a kid within %v of the last fetch: %v, want refused", kidRefreshEvery, err)
		}
	}
	if h := is.hits.Load(); h != 2 {
		t.Fatalf("%d fetches after 20 tokens of an unknown kid within %v, want 2", h, kidRefreshEvery)
	}
	// Past kidRefreshEvery the new kid is fetched.
	v.now = func() time.Time { return time.Now().Add(kidRefreshEvery) }
	if _, _, err := v.validate(is.token("k3", "carol")); err != nil {
		t.Fatalf("k3 past %v: %v", kidRefreshEvery, err)
	}
}

// TestJWKSRefreshes: Run fetches every Refresh; a failing issuer keeps the
// keys in force and is retried with back-off; an issuer unreachable at
// start leaves logins failing until Run gets the keys.
func TestJWKSRefreshes(t *testing.T) {
	is := newIssuer(t, "k1")
	is.setAnswer(http.StatusServiceUnavailable, nil)
	o := is.options()
	o.Refresh, o.RetryBackoff, o.RetryBackoffMax = 20*time.Millisecond, 5*time.Millisecond, 20*time.Millisecond
	v, err := FetchJWKS(context.Background(), o)
	if err != nil {
		t.Fatalf("an issuer answering 503 at start: %v, want a validator that retries", err)
	}
	tok := is.token("k1", "alice")
	// Made up kids fetch nothing here: keep them from racing Run.
	v.now = func() time.Time { return time.Now().Add(-time.Hour) }
	v.remote.lastFetch = time.Now()
	if _, _, err := v.validate(tok); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("before any JWKS: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); v.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: not after 10s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	is.setAnswer(0, nil)
	waitUntil("the keys after the issuer recovered", func() bool { _, _, err := v.validate(tok); return err == nil })
	is.setAnswer(http.StatusInternalServerError, nil)
	h := is.hits.Load()
	waitUntil("three failed fetches", func() bool { return is.hits.Load() >= h+3 })
	if _, _, err := v.validate(tok); err != nil {
		t.Fatalf("keys dropped while the issuer fails: %v", err)
	}
	is.setAnswer(0, []byte(`{"keys":[]}`))
	h = is.hits.Load()
	waitUntil("two fetches of an empty set", func() bool { return is.hits.Load() >= h+2 })
	if _, _, err := v.validate(tok); err != nil {
		t.Fatalf("keys dropped for an empty set: %v", err)
	}
	is.setAnswer(0, nil)
	is.rotate("k2")
	tok2 := is.token("k2", "bob")
	waitUntil("the rotated keys by the refresh", func() bool { _, _, err := v.validate(tok2); return err == nil })
}

// TestJWKSBadAtStart: an issuer answering something that is not a usable
// JWKS stops the start (ErrBadJWKS).
func TestJWKSBadAtStart(t *testing.T) {
	is := newIssuer(t, "k1")
	for name, set := range map[string]func(*JWKSOptions){
		"no fetch": func(o *JWKSOptions) { o.Fetch = nil },
		"not json": func(*JWKSOptions) { is.setAnswer(0, []byte("<html>")) },
		"no keys":  func(*JWKSOptions) { is.setAnswer(0, []byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`)) },
		"too big":  func(*JWKSOptions) { is.setAnswer(0, []byte(`{"keys":[],"x":"`+strings.Repeat("a", MaxJWKSBytes)+`"}`)) },
	} {
		o := is.options()
		set(&o)
		if _, err := FetchJWKS(context.Background(), o); !errors.Is(err, ErrBadJWKS) {
			t.Errorf("%s: %v, want ErrBadJWKS", name, err)
		}
		is.setAnswer(0, nil)
	}
}
