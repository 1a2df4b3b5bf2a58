package auth

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// tokens is a user "alice" (oneUser) plus one delegation token "tok-1",
// owned by User:carol, whose password is "hmac-of-tok-1".
type tokens struct {
	oneUser
	c map[string]ScramCredential
}

func (o tokens) TokenScramCredential(id, mech string) (ScramCredential, string, bool) {
	if id != "tok-1" {
		return ScramCredential{}, "", false
	}
	c, ok := o.c[mech]
	return c, "User:carol", ok
}

// scramLogin runs franz-go's SCRAM client (a real client's messages,
// tokenauth=true extension included when token) against an exchange.
func scramLogin(t *testing.T, mech string, creds Credentials, a scram.Auth) (Exchange, error) {
	t.Helper()
	m := a.AsSha256Mechanism()
	if mech == ScramSHA512 {
		m = a.AsSha512Mechanism()
	}
	sess, msg, err := m.Authenticate(context.Background(), "broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	x, err := NewExchange(mech, creds, nil)
	if err != nil {
		t.Fatal(err)
	}
	for {
		out, done, err := x.Step(msg)
		if err != nil {
			return x, err
		}
		cdone, next, cerr := sess.Challenge(out)
		if cerr != nil {
			t.Fatalf("client: %v", cerr)
		}
		if done {
			if !cdone {
				t.Fatal("the server is done, the client is not")
			}
			return x, nil
		}
		msg = next
	}
}

// TestTokenScram: SCRAM with tokenauth=true proves a delegation token's
// HMAC and authenticates as the token's owner, marked token-authenticated;
// the same id without the extension is an unknown user, the user's
// password with the extension is an unknown token, a wrong HMAC fails, and
// credentials that serve no tokens refuse every token.
func TestTokenScram(t *testing.T) {
	o := tokens{oneUser: creds(t), c: map[string]ScramCredential{}}
	for _, m := range []string{ScramSHA256, ScramSHA512} {
		c, err := Derive(m, []byte("hmac-of-tok-1"), []byte("fedcba9876543210"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		o.c[m] = c
	}
	for _, mech := range []string{ScramSHA256, ScramSHA512} {
		x, err := scramLogin(t, mech, o, scram.Auth{User: "tok-1", Pass: "hmac-of-tok-1", IsToken: true})
		if err != nil {
			t.Fatalf("%s token: %v", mech, err)
		}
		if p := x.Principal(); p != "User:carol" {
			t.Fatalf("%s token: principal %q, want the owner", mech, p)
		}
		if ta, ok := x.(interface{ TokenAuthenticated() bool }); !ok || !ta.TokenAuthenticated() {
			t.Fatalf("%s token: not marked token-authenticated", mech)
		}
		x, err = scramLogin(t, mech, o, scram.Auth{User: "alice", Pass: "secret"})
		if err != nil || x.Principal() != "User:alice" || x.(interface{ TokenAuthenticated() bool }).TokenAuthenticated() {
			t.Fatalf("%s user: %v %q", mech, err, x.Principal())
		}
	}
	for name, a := range map[string]scram.Auth{
		"token id as a user":   {User: "tok-1", Pass: "hmac-of-tok-1"},
		"user as a token":      {User: "alice", Pass: "secret", IsToken: true},
		"wrong hmac":           {User: "tok-1", Pass: "hmac-of-tok-2", IsToken: true},
		"authzid with a token": {User: "tok-1", Pass: "hmac-of-tok-1", IsToken: true, Zid: "carol"},
	} {
		if _, err := scramLogin(t, ScramSHA256, o, a); err == nil {
			t.Errorf("%s: authenticated", name)
		}
	}
	if _, err := scramLogin(t, ScramSHA256, o.oneUser, scram.Auth{User: "tok-1", Pass: "hmac-of-tok-1", IsToken: true}); err == nil {
		t.Error("a token against credentials that serve none: authenticated")
	}
}
