package broker

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

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
