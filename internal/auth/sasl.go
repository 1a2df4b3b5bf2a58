package auth

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"

	"github.com/xdg-go/scram"
)

// SASL mechanisms Strom serves.
const (
	PLAIN        = "PLAIN"
	ScramSHA256  = "SCRAM-SHA-256"
	ScramSHA512  = "SCRAM-SHA-512"
	maxPlainSize = 4 << 10
)

// Mechanisms are the SASL mechanisms Strom serves, in sasl.enabled.mechanisms
// spelling (OAUTHBEARER only with a JWKS configured).
var Mechanisms = []string{PLAIN, ScramSHA256, ScramSHA512, OAUTHBEARER}

// SCRAM iteration bounds (KIP-554: Kafka refuses fewer than the
// mechanism's minimum, 4096, and more than 16384).
const (
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// Errors of an exchange. Every failure a client causes is ErrAuthFailed:
// the answer never says whether the user or the password was wrong.
var (
	ErrAuthFailed           = errors.New("authentication failed")
	ErrUnsupportedMechanism = errors.New("unsupported SASL mechanism")
)

// ScramCredential is what the broker stores for one user and mechanism: the
// salt, the iteration count, and the keys derived from the salted password
// (RFC 5802), never the password.
type ScramCredential struct {
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
	Iterations int
}

// Credentials looks up a user's SCRAM credential for a mechanism
// (SCRAM-SHA-256 or SCRAM-SHA-512). It must be safe for concurrent use.
type Credentials interface {
	ScramCredential(user, mechanism string) (ScramCredential, bool)
}

// TokenCredentials looks up delegation tokens (KIP-48) for SCRAM: a
// client that sends the tokenauth=true extension names a token id as its
// user and proves the token's HMAC as its password. owner is the
// principal the token authenticates as ("User:alice"). Credentials that
// also implement it serve tokens; an expired or unknown token is not ok.
type TokenCredentials interface {
	TokenScramCredential(id, mechanism string) (cred ScramCredential, owner string, ok bool)
}

// Exchange is one SASL authentication in progress on a connection.
type Exchange interface {
	// Step takes the client's next message and returns the answer; done
	// says the exchange succeeded. An error is ErrAuthFailed (wrapped)
	// and ends the exchange.
	Step(msg []byte) (answer []byte, done bool, err error)
	// Principal is "User:<name>", once done.
	Principal() string
}

// NewExchange starts an exchange of mechanism against creds (PLAIN,
// SCRAM) or oauth (OAUTHBEARER; nil refuses it).
func NewExchange(mechanism string, creds Credentials, oauth *OAuthValidator) (Exchange, error) {
	switch mechanism {
	case OAUTHBEARER:
		if oauth == nil {
			return nil, fmt.Errorf("%w: OAUTHBEARER without a JWKS", ErrUnsupportedMechanism)
		}
		return &oauthExchange{v: oauth}, nil
	case PLAIN:
		return &plainExchange{creds: creds}, nil
	case ScramSHA256, ScramSHA512:
		gen := scram.SHA256
		if mechanism == ScramSHA512 {
			gen = scram.SHA512
		}
		x := &scramExchange{}
		srv, err := gen.NewServer(func(user string) (scram.StoredCredentials, error) {
			var c ScramCredential
			ok := false
			if x.token {
				if tc, isTC := creds.(TokenCredentials); isTC {
					c, x.owner, ok = tc.TokenScramCredential(user, mechanism)
				}
			} else {
				c, ok = creds.ScramCredential(user, mechanism)
			}
			if !ok {
				return scram.StoredCredentials{}, fmt.Errorf("%w: unknown user", ErrAuthFailed)
			}
			return scram.StoredCredentials{
				KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: c.Iterations},
				StoredKey:  c.StoredKey, ServerKey: c.ServerKey,
			}, nil
		})
		if err != nil {
			return nil, fmt.Errorf("scram: %w", err)
		}
		x.conv = srv.NewConversation()
		return x, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
}

type scramExchange struct {
	conv    *scram.ServerConversation
	user    string
	started bool
	token   bool   // the client sent tokenauth=true: user is a token id
	owner   string // the token's owner, once looked up
}

// tokenAuth reports whether a SCRAM client-first message carries Kafka's
// tokenauth=true extension (KIP-48: extensions follow the nonce, as
// key=value attributes; they stay in the message the proofs sign).
func tokenAuth(clientFirst []byte) bool {
	fields := bytes.Split(clientFirst, []byte{','})
	for i := 4; i < len(fields); i++ { // gs2 flag, authzid, n=, r=, then extensions
		if string(fields[i]) == "tokenauth=true" {
			return true
		}
	}
	return false
}

func (x *scramExchange) Step(msg []byte) ([]byte, bool, error) {
	if x.conv.Done() {
		return nil, false, fmt.Errorf("%w: exchange already over", ErrAuthFailed)
	}
	if !x.started {
		x.started = true
		x.token = tokenAuth(msg)
	}
	out, err := x.conv.Step(string(msg))
	if err != nil {
		return nil, false, fmt.Errorf("%w: scram: %v", ErrAuthFailed, err)
	}
	if !x.conv.Done() {
		return []byte(out), false, nil
	}
	if !x.conv.Valid() {
		return nil, false, fmt.Errorf("%w: scram: invalid proof", ErrAuthFailed)
	}
	if a := x.conv.AuthzID(); a != "" && (x.token || a != x.conv.Username()) {
		return nil, false, fmt.Errorf("%w: authorization id differs from the user", ErrAuthFailed)
	}
	x.user = x.conv.Username()
	return []byte(out), true, nil
}

// Principal is the user's, or for a delegation token its owner's.
func (x *scramExchange) Principal() string {
	if x.token {
		return x.owner
	}
	return UserPrincipal(x.user)
}

// TokenAuthenticated reports whether the exchange proved a delegation
// token rather than a user's password: such a connection may not create
// or renew tokens (Kafka's rule).
func (x *scramExchange) TokenAuthenticated() bool { return x.token && x.conv.Done() && x.conv.Valid() }

// plainExchange checks a PLAIN message (RFC 4616: authzid NUL user NUL
// password) against the user's SCRAM credentials: the password is salted
// with the stored salt and its StoredKey compared, so PLAIN users are the
// SCRAM users and no password is ever stored.
type plainExchange struct {
	creds Credentials
	user  string
}

// ParsePlain splits a PLAIN message; FuzzParsePlain feeds it.
func ParsePlain(msg []byte) (authzid, user, password string, err error) {
	if len(msg) > maxPlainSize {
		return "", "", "", fmt.Errorf("%w: PLAIN message of %d bytes", ErrAuthFailed, len(msg))
	}
	parts := bytes.Split(msg, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 || len(parts[2]) == 0 {
		return "", "", "", fmt.Errorf("%w: PLAIN message is not authzid NUL user NUL password", ErrAuthFailed)
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), nil
}

func (x *plainExchange) Step(msg []byte) ([]byte, bool, error) {
	authzid, user, password, err := ParsePlain(msg)
	if err != nil {
		return nil, false, err
	}
	if authzid != "" && authzid != user {
		return nil, false, fmt.Errorf("%w: authorization id differs from the user", ErrAuthFailed)
	}
	for _, m := range []string{ScramSHA512, ScramSHA256} {
		c, ok := x.creds.ScramCredential(user, m)
		if !ok {
			continue
		}
		got, err := Derive(m, []byte(password), c.Salt, c.Iterations)
		if err != nil {
			return nil, false, fmt.Errorf("%w: %v", ErrAuthFailed, err)
		}
		if subtle.ConstantTimeCompare(got.StoredKey, c.StoredKey) == 1 {
			x.user = user
			return []byte{}, true, nil
		}
		return nil, false, fmt.Errorf("%w: wrong password", ErrAuthFailed)
	}
	return nil, false, fmt.Errorf("%w: unknown user", ErrAuthFailed)
}

func (x *plainExchange) Principal() string { return UserPrincipal(x.user) }

func hashOf(mechanism string) (func() hash.Hash, error) {
	switch mechanism {
	case ScramSHA256:
		return sha256.New, nil
	case ScramSHA512:
		return sha512.New, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
}

// Derive computes the stored credential of a password with xdg-go/scram
// (PBKDF2 and RFC 5802's keys).
func Derive(mechanism string, password, salt []byte, iterations int) (ScramCredential, error) {
	gen := scram.SHA256
	if mechanism == ScramSHA512 {
		gen = scram.SHA512
	} else if mechanism != ScramSHA256 {
		return ScramCredential{}, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
	}
	cl, err := gen.NewClient("u", string(password), "")
	if err != nil {
		return ScramCredential{}, err
	}
	sc, err := cl.GetStoredCredentialsWithError(scram.KeyFactors{Salt: string(salt), Iters: iterations})
	if err != nil {
		return ScramCredential{}, err
	}
	return ScramCredential{Salt: salt, Iterations: iterations, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}, nil
}

// FromSaltedPassword computes the stored credential from what
// AlterUserScramCredentials carries (KIP-554: the client salts the
// password; the broker never sees it): StoredKey = H(HMAC(salted,
// "Client Key")), ServerKey = HMAC(salted, "Server Key") (RFC 5802).
func FromSaltedPassword(mechanism string, salted, salt []byte, iterations int) (ScramCredential, error) {
	h, err := hashOf(mechanism)
	if err != nil {
		return ScramCredential{}, err
	}
	mac := func(key []byte, msg string) []byte {
		m := hmac.New(h, key)
		m.Write([]byte(msg))
		return m.Sum(nil)
	}
	d := h()
	d.Write(mac(salted, "Client Key"))
	return ScramCredential{
		Salt:       bytes.Clone(salt),
		Iterations: iterations,
		StoredKey:  d.Sum(nil),
		ServerKey:  mac(salted, "Server Key"),
	}, nil
}
