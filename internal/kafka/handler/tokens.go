package handler

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// Delegation tokens (KIP-48), shared by CreateDelegationToken,
// RenewDelegationToken, ExpireDelegationToken, DescribeDelegationToken
// (38-41) and the SCRAM exchange of SaslHandshake:
//
//   - Enabled by delegation.token.secret.key (or its old name
//     delegation.token.master.key); without it every token API answers
//     DELEGATION_TOKEN_AUTH_DISABLED and no token authenticates.
//   - The metadata store keeps a token's id, owner, requester, renewers and
//     times; its HMAC (HMAC-SHA512 of the id under the key, auth.TokenHMAC)
//     is derived where needed, and its SCRAM credential (a salt of this
//     broker's, 4096 iterations, the base64 HMAC as the password) is
//     derived at its first use here and kept in tokenCreds.
//   - Renew and Expire name the token by its HMAC, as Kafka's requests do.

// tokenSecret is the key of delegation tokens' HMACs; "" when tokens are
// disabled.
func (h *Handler) tokenSecret() string {
	s := h.c.Broker().Settings()
	if s.DelegationTokenSecretKey != "" {
		return s.DelegationTokenSecretKey
	}
	return s.DelegationTokenMasterKey
}

// tokenRequestsAllowed is Kafka's rule for who may create, renew and
// expire tokens: an authenticated client (SASL, or a TLS client
// certificate) that did not itself log in with a token.
func tokenRequestsAllowed(req *server.Request) bool {
	s := req.Conn.Session
	if s == nil || s.ByToken() {
		return false
	}
	return s.SASL() || s.TLS() && s.Principal() != server.Anonymous
}

// splitPrincipal splits "User:alice" into its type and name.
func splitPrincipal(p string) (typ, name string) {
	typ, name, _ = strings.Cut(p, ":")
	return typ, name
}

// newTokenID is a fresh token id: 16 random bytes in URL-safe base64
// (what Kafka's ids look like: a random UUID's base64).
func newTokenID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokenByHMAC finds the token whose HMAC under secret is mac.
func tokenByHMAC(sec *metadata.Security, secret string, mac []byte) (metadata.DelegationToken, bool) {
	for _, t := range sec.Tokens() {
		if hmac.Equal(auth.TokenHMAC(secret, t.ID), mac) {
			return t, true
		}
	}
	return metadata.DelegationToken{}, false
}

// ownerOrRenewer reports whether principal may renew or expire t.
func ownerOrRenewer(t metadata.DelegationToken, principal string) bool {
	if t.Owner == principal {
		return true
	}
	for _, r := range t.Renewers {
		if r == principal {
			return true
		}
	}
	return false
}

// tokenCreds keeps the SCRAM credentials this broker derived for tokens,
// by token id and mechanism. Entries of tokens no longer in the store are
// dropped when the map outgrows the store's tokens.
type tokenCreds struct {
	mu sync.Mutex
	m  map[[2]string]tokenCred
}

type tokenCred struct {
	mac  []byte // the HMAC it was derived from (the key may change)
	cred auth.ScramCredential
}

// get returns the credential of token id for mechanism, deriving it (a
// PBKDF2 of 4096 iterations) the first time.
func (tc *tokenCreds) get(sec *metadata.Security, secret, id, mechanism string) (auth.ScramCredential, bool) {
	mac := auth.TokenHMAC(secret, id)
	key := [2]string{id, mechanism}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if e, ok := tc.m[key]; ok && hmac.Equal(e.mac, mac) {
		return e.cred, true
	}
	salt := make([]byte, 16)
	rand.Read(salt)
	c, err := auth.Derive(mechanism, []byte(auth.TokenPassword(mac)), salt, auth.MinScramIterations) // Kafka's count for tokens: the mechanism's minimum
	if err != nil {
		return auth.ScramCredential{}, false
	}
	if tc.m == nil {
		tc.m = map[[2]string]tokenCred{}
	}
	if n := len(sec.Tokens()); len(tc.m) > 2*n+16 {
		for k := range tc.m {
			if _, ok := sec.Token(k[0]); !ok {
				delete(tc.m, k)
			}
		}
	}
	tc.m[key] = tokenCred{mac: mac, cred: c}
	return c, true
}

// TokenScramCredential serves delegation tokens to the SCRAM exchange
// (auth.TokenCredentials): a token of the store, not expired, with tokens
// enabled.
func (c scramCredentials) TokenScramCredential(id, mechanism string) (auth.ScramCredential, string, bool) {
	if c.h == nil {
		return auth.ScramCredential{}, "", false
	}
	secret := c.h.tokenSecret()
	t, ok := c.s.Token(id)
	if secret == "" || !ok || t.Expiry <= time.Now().UnixMilli() {
		return auth.ScramCredential{}, "", false
	}
	cred, ok := c.h.tokenCreds.get(c.s, secret, id, mechanism)
	return cred, t.Owner, ok
}
