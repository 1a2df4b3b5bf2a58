package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// OAUTHBEARER is the SASL mechanism of KIP-255: an unsecured-looking
// bearer token, here a JWT checked against a JWKS.
const OAUTHBEARER = "OAUTHBEARER"

// ErrBadJWKS marks a JWKS file that cannot be used.
var ErrBadJWKS = errors.New("bad JWKS")

// OAuthValidator checks OAUTHBEARER tokens (Kafka's KIP-768 validation):
// a JWT signed by a key of the JWKS (RS256/384/512, PS256/384/512,
// ES256/384/512; "none" and HMAC never), not expired (exp required, with
// ClockSkew), not before nbf, and with the expected issuer and one of the
// expected audiences when those are set. The principal is User: and the
// SubClaim claim ("sub"). Signature checks are golang-jwt's. The keys come
// from a file read once (LoadJWKS) or from an http(s) URL fetched again
// and again (FetchJWKS, jwks.go); they are swapped whole, atomically.
type OAuthValidator struct {
	keys      atomic.Pointer[map[string]crypto.PublicKey] // by kid
	remote    *remoteJWKS                                 // nil for a file
	Issuer    string
	Audience  []string
	SubClaim  string
	ClockSkew time.Duration
	now       func() time.Time
}

// LoadJWKS reads a JWKS file (RFC 7517: {"keys":[...]}) of RSA and EC
// public keys, each with a kid.
func LoadJWKS(path string) (*OAuthValidator, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadJWKS, err)
	}
	keys, err := parseJWKS(b, path)
	if err != nil {
		return nil, err
	}
	v := &OAuthValidator{SubClaim: "sub", now: time.Now}
	v.keys.Store(&keys)
	return v, nil
}

// parseJWKS reads a JWKS document (RFC 7517: {"keys":[...]}) of RSA and EC
// public keys, each with a kid; from names it in errors. Keys of another
// type or use are skipped; a document with no usable key is an error.
func parseJWKS(b []byte, from string) (map[string]crypto.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Crv, N, E, X, Y, Use string
		} `json:"keys"`
	}
	if err := json.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadJWKS, from, err)
	}
	keys := map[string]crypto.PublicKey{}
	num := func(s string) (*big.Int, error) {
		raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
		if err != nil || len(raw) == 0 {
			return nil, fmt.Errorf("%w: %s: a key parameter is not base64url", ErrBadJWKS, from)
		}
		return new(big.Int).SetBytes(raw), nil
	}
	for _, k := range set.Keys {
		if k.Kid == "" || k.Use != "" && k.Use != "sig" {
			continue
		}
		switch k.Kty {
		case "RSA":
			n, err := num(k.N)
			if err != nil {
				return nil, err
			}
			e, err := num(k.E)
			if err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31 {
				return nil, fmt.Errorf("%w: %s: key %s: bad exponent", ErrBadJWKS, from, k.Kid)
			}
			if n.BitLen() < 2048 {
				return nil, fmt.Errorf("%w: %s: key %s: RSA keys under 2048 bits are refused", ErrBadJWKS, from, k.Kid)
			}
			keys[k.Kid] = &rsa.PublicKey{N: n, E: int(e.Int64())}
		case "EC":
			var curve elliptic.Curve
			switch k.Crv {
			case "P-256":
				curve = elliptic.P256()
			case "P-384":
				curve = elliptic.P384()
			case "P-521":
				curve = elliptic.P521()
			default:
				return nil, fmt.Errorf("%w: %s: key %s: curve %q", ErrBadJWKS, from, k.Kid, k.Crv)
			}
			x, err := num(k.X)
			if err != nil {
				return nil, err
			}
			y, err := num(k.Y)
			if err != nil {
				return nil, err
			}
			pub := &ecdsa.PublicKey{Curve: curve, X: x, Y: y}
			if _, err := pub.ECDH(); err != nil { // the point must be on the curve
				return nil, fmt.Errorf("%w: %s: key %s: %v", ErrBadJWKS, from, k.Kid, err)
			}
			keys[k.Kid] = pub
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: %s: no RSA or EC signing key with a kid", ErrBadJWKS, from)
	}
	return keys, nil
}

// key is the verification key of kid. A kid the keys lack makes a remote
// JWKS fetch again (the issuer rotated its keys), at most once per
// kidRefreshEvery, waiting up to kidRefreshWait for the answer.
func (v *OAuthValidator) key(kid string) (crypto.PublicKey, bool) {
	if m := v.keys.Load(); m != nil {
		if k, ok := (*m)[kid]; ok {
			return k, true
		}
	}
	if v.remote == nil || !v.remote.refreshForKid(v) {
		return nil, false
	}
	if m := v.keys.Load(); m != nil {
		k, ok := (*m)[kid]
		return k, ok
	}
	return nil, false
}

// ParseOAuthBearer splits an OAUTHBEARER client message (RFC 7628:
// gs2-header, then \x01-separated key=value pairs, auth=Bearer <token>
// among them, ending in \x01\x01) and returns the token. FuzzParseOAuthBearer
// feeds it.
func ParseOAuthBearer(msg []byte) (token string, err error) {
	if len(msg) > 64<<10 {
		return "", fmt.Errorf("%w: OAUTHBEARER message of %d bytes", ErrAuthFailed, len(msg))
	}
	s := string(msg)
	gs2, rest, ok := strings.Cut(s, "\x01")
	if !ok || !strings.HasPrefix(gs2, "n,") && !strings.HasPrefix(gs2, "y,") || !strings.HasSuffix(rest, "\x01\x01") {
		return "", fmt.Errorf("%w: not an OAUTHBEARER client message", ErrAuthFailed)
	}
	for _, kv := range strings.Split(strings.TrimSuffix(rest, "\x01\x01"), "\x01") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return "", fmt.Errorf("%w: OAUTHBEARER pair %q", ErrAuthFailed, kv)
		}
		if k == "auth" {
			scheme, tok, ok := strings.Cut(v, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
				return "", fmt.Errorf("%w: auth is not a Bearer token", ErrAuthFailed)
			}
			token = tok
		}
	}
	if token == "" {
		return "", fmt.Errorf("%w: no auth=Bearer", ErrAuthFailed)
	}
	return token, nil
}

// validate checks a token and returns its principal and expiry.
func (v *OAuthValidator) validate(token string) (principal string, exp time.Time, err error) {
	opts := []jwt.ParserOption{
		jwt.WithValidMethods([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512"}),
		jwt.WithExpirationRequired(), jwt.WithLeeway(v.ClockSkew), jwt.WithTimeFunc(v.now),
	}
	if v.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(v.Issuer))
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := v.key(kid); ok {
			return k, nil
		}
		return nil, errors.New("no key of that kid")
	}, opts...)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: token: %v", ErrAuthFailed, err)
	}
	if len(v.Audience) > 0 {
		aud, _ := claims.GetAudience()
		ok := false
		for _, a := range aud {
			for _, want := range v.Audience {
				ok = ok || a == want
			}
		}
		if !ok {
			return "", time.Time{}, fmt.Errorf("%w: token audience %v is not %v", ErrAuthFailed, aud, v.Audience)
		}
	}
	sub, _ := claims[v.SubClaim].(string)
	if sub == "" {
		return "", time.Time{}, fmt.Errorf("%w: token has no %q claim", ErrAuthFailed, v.SubClaim)
	}
	e, _ := claims.GetExpirationTime()
	return UserPrincipal(sub), e.Time, nil
}

type oauthExchange struct {
	v         *OAuthValidator
	principal string
	exp       time.Time
}

func (x *oauthExchange) Step(msg []byte) ([]byte, bool, error) {
	if x.principal != "" {
		return nil, false, fmt.Errorf("%w: exchange already over", ErrAuthFailed)
	}
	tok, err := ParseOAuthBearer(msg)
	if err != nil {
		return nil, false, err
	}
	p, exp, err := x.v.validate(tok)
	if err != nil {
		return nil, false, err
	}
	x.principal, x.exp = p, exp
	return []byte{}, true, nil
}

func (x *oauthExchange) Principal() string { return x.principal }

// Expiry is when the token expires: the session ends then at the latest
// (with connections.max.reauth.ms set, as Kafka).
func (x *oauthExchange) Expiry() time.Time { return x.exp }
