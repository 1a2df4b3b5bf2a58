package broker

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// TestOAuthBearer: OAUTHBEARER with a JWT checked against a local JWKS
// file: a good token produces and consumes; an expired token, another
// audience or issuer, a key not in the JWKS, alg none and no sub are all
// SASL_AUTHENTICATION_FAILED.
func TestOAuthBearer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "kid": "k1", "use": "sig", "n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
	}}})
	s := startSecured(t, "none", map[string]string{
		"sasl.enabled.mechanisms":             "OAUTHBEARER,PLAIN",
		"sasl.oauthbearer.jwks.endpoint.url":  "file://" + testutil.WriteFile(t, t.TempDir(), "jwks.json", jwks),
		"sasl.oauthbearer.expected.audience":  "strom",
		"sasl.oauthbearer.expected.issuer":    "https://idp.example",
		"sasl.oauthbearer.clock.skew.seconds": "0",
	})
	sign := func(k *rsa.PrivateKey, kid string, claims jwt.MapClaims) string {
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = kid
		out, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "svc-orders", "aud": "strom", "iss": "https://idp.example", "exp": time.Now().Add(time.Hour).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	good := sign(key, "k1", claims(nil))
	if err := roundTrip(t, s.addr("SASL_PLAINTEXT"), "oauth", kgo.SASL(oauth.Auth{Token: good}.AsMechanism())); err != nil {
		t.Fatalf("a good token: %v", err)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims(nil)).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for name, tok := range map[string]string{
		"expired":     sign(key, "k1", claims(func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-time.Minute).Unix() })),
		"no exp":      sign(key, "k1", claims(func(c jwt.MapClaims) { delete(c, "exp") })),
		"audience":    sign(key, "k1", claims(func(c jwt.MapClaims) { c["aud"] = "other" })),
		"issuer":      sign(key, "k1", claims(func(c jwt.MapClaims) { c["iss"] = "https://evil.example" })),
		"unknown key": sign(other, "k1", claims(nil)),
		"unknown kid": sign(key, "k2", claims(nil)),
		"no sub":      sign(key, "k1", claims(func(c jwt.MapClaims) { delete(c, "sub") })),
		"alg none":    none,
		"not a jwt":   "abc.def.ghi",
	} {
		if err := firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(oauth.Auth{Token: tok}.AsMechanism())); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Errorf("%s: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}
}

// TestOAuthBearerJWKSURL: sasl.oauthbearer.jwks.endpoint.url at an http
// URL (an issuer's JWKS endpoint): a token of its key logs in and
// produces; after the issuer rotates to a new key, a token of the new kid
// logs in (the broker fetched the JWKS again) and one of the old key is
// refused. The broker's shutdown stops the refresh loop (its goroutine is
// in the wait group Shutdown waits for).
func TestOAuthBearerJWKSURL(t *testing.T) {
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	var mu sync.Mutex
	keys := map[string]*rsa.PrivateKey{}
	rotate := func(kid string) {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		defer mu.Unlock()
		clear(keys)
		keys[kid] = k
	}
	rotate("2026-a")
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		var set []map[string]string
		for kid, k := range keys {
			set = append(set, map[string]string{"kty": "RSA", "kid": kid, "n": b64(k.N.Bytes()), "e": b64(big.NewInt(int64(k.E)).Bytes())})
		}
		json.NewEncoder(w).Encode(map[string]any{"keys": set})
	}))
	defer idp.Close()
	s := startSecured(t, "none", map[string]string{
		"sasl.enabled.mechanisms":            "OAUTHBEARER",
		"sasl.oauthbearer.jwks.endpoint.url": idp.URL + "/realms/strom/protocol/openid-connect/certs",
	})
	sign := func(kid string) string {
		mu.Lock()
		k := keys[kid]
		mu.Unlock()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "svc", "exp": time.Now().Add(time.Hour).Unix()})
		tok.Header["kid"] = kid
		out, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	old := sign("2026-a")
	if err := roundTrip(t, s.addr("SASL_PLAINTEXT"), "jwks-url", kgo.SASL(oauth.Auth{Token: old}.AsMechanism())); err != nil {
		t.Fatalf("a token of the issuer's key: %v", err)
	}
	rotate("2026-b")
	if err := roundTrip(t, s.addr("SASL_PLAINTEXT"), "jwks-url-2", kgo.SASL(oauth.Auth{Token: sign("2026-b")}.AsMechanism())); err != nil {
		t.Fatalf("a token of the rotated key: %v", err)
	}
	if err := firstRequest(t, s.addr("SASL_PLAINTEXT"), kgo.SASL(oauth.Auth{Token: old}.AsMechanism())); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("a token of the rotated-out key: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}

// TestJWKSURLRefused: a JWKS URL of another scheme, or with no host, stops
// the start with a message naming the setting.
func TestJWKSURLRefused(t *testing.T) {
	for _, u := range []string{"ftp://idp.example/jwks", "https:///jwks"} {
		_, err := Start(Config{DataDir: t.TempDir(), HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
			Props:     map[string]string{"sasl.oauthbearer.jwks.endpoint.url": u, "sasl.enabled.mechanisms": "OAUTHBEARER"},
			Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})
		if !errors.Is(err, metadata.ErrInvalidConfig) || !strings.Contains(err.Error(), "sasl.oauthbearer.jwks.endpoint.url") {
			t.Errorf("%s: %v, want ErrInvalidConfig naming the setting", u, err)
		}
	}
}
