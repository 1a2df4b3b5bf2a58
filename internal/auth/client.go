package auth

import (
	"crypto/rand"
	"fmt"
	"sort"
	"strings"

	"github.com/xdg-go/scram"
)

// ClientExchange is the client's side of one SASL authentication: the
// broker logging in to a peer (the raft transport on the controller
// listener). Step takes the server's last message (nil to start) and
// returns the next one to send (nil: nothing to send); done says the
// client is satisfied with the server (SCRAM: the server's signature
// checked), after which the server's verdict is all that is left.
type ClientExchange interface {
	Step(challenge []byte) (response []byte, done bool, err error)
}

// NewClientExchange starts mechanism's client side as user with password
// (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), with xdg-go/scram for SCRAM.
func NewClientExchange(mechanism, user, password string) (ClientExchange, error) {
	switch mechanism {
	case PLAIN:
		return &plainClient{msg: []byte("\x00" + user + "\x00" + password)}, nil
	case ScramSHA256, ScramSHA512:
		gen := scram.SHA256
		if mechanism == ScramSHA512 {
			gen = scram.SHA512
		}
		cl, err := gen.NewClient(user, password, "")
		if err != nil {
			return nil, fmt.Errorf("scram client: %w", err)
		}
		return &scramClient{conv: cl.NewConversation()}, nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnsupportedMechanism, mechanism)
}

type plainClient struct {
	msg  []byte
	sent bool
}

func (c *plainClient) Step(challenge []byte) ([]byte, bool, error) {
	if c.sent {
		return nil, false, fmt.Errorf("%w: PLAIN: the server sent a challenge", ErrAuthFailed)
	}
	c.sent = true
	return c.msg, true, nil
}

type scramClient struct {
	conv    *scram.ClientConversation
	started bool
}

func (c *scramClient) Step(challenge []byte) ([]byte, bool, error) {
	if c.conv.Done() {
		return nil, false, fmt.Errorf("%w: scram: exchange already over", ErrAuthFailed)
	}
	if !c.started != (challenge == nil) {
		return nil, false, fmt.Errorf("%w: scram: unexpected server message", ErrAuthFailed)
	}
	c.started = true
	out, err := c.conv.Step(string(challenge))
	if err != nil {
		// xdg-go's errors name what failed in the server's messages
		// (its signature), which is the client's to know.
		return nil, false, fmt.Errorf("%w: scram: %v", ErrAuthFailed, err)
	}
	if c.conv.Done() {
		if !c.conv.Valid() {
			return nil, false, fmt.Errorf("%w: scram: the server's signature does not verify", ErrAuthFailed)
		}
		return nil, true, nil
	}
	return []byte(out), false, nil
}

// Users are the user_<name>="<password>" options of a JAAS login, Kafka's
// PlainLoginModule way of listing who may log in to a listener with
// PLAIN, sorted by name.
func (l JAASLogin) Users() []string {
	var out []string
	for k := range l.Options {
		if name, ok := strings.CutPrefix(k, "user_"); ok && name != "" {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// StaticCredentials are SCRAM credentials held in memory, derived at start
// from passwords (a JAAS login's user_ entries): a Credentials for PLAIN
// and SCRAM exchanges that needs no metadata store. Read-only once built.
type StaticCredentials map[string]ScramCredential // key: mechanism + "\x00" + user

// CredentialsFromJAAS derives SCRAM-SHA-256 and SCRAM-SHA-512 credentials
// (a random salt each, DefaultScramIterations) for every user_ entry of l.
// The passwords are not kept.
func CredentialsFromJAAS(l JAASLogin) (StaticCredentials, error) {
	out := StaticCredentials{}
	for _, u := range l.Users() {
		for _, m := range []string{ScramSHA256, ScramSHA512} {
			salt := make([]byte, 16)
			if _, err := rand.Read(salt); err != nil {
				return nil, err
			}
			c, err := Derive(m, []byte(l.Options["user_"+u]), salt, DefaultScramIterations)
			if err != nil {
				return nil, fmt.Errorf("%w: user_%s: %v", ErrJAAS, u, err)
			}
			out[m+"\x00"+u] = c
		}
	}
	return out, nil
}

// ScramCredential implements Credentials.
func (s StaticCredentials) ScramCredential(user, mechanism string) (ScramCredential, bool) {
	c, ok := s[mechanism+"\x00"+user]
	return c, ok
}
