package auth

import (
	"errors"
	"strings"
	"testing"
)

type oneUser struct{ c map[string]ScramCredential }

func (o oneUser) ScramCredential(user, mech string) (ScramCredential, bool) {
	if user != "alice" {
		return ScramCredential{}, false
	}
	c, ok := o.c[mech]
	return c, ok
}

func creds(t testing.TB) oneUser {
	o := oneUser{c: map[string]ScramCredential{}}
	for _, m := range []string{ScramSHA256, ScramSHA512} {
		c, err := Derive(m, []byte("secret"), []byte("0123456789abcdef"), 4096)
		if err != nil {
			t.Fatal(err)
		}
		o.c[m] = c
	}
	return o
}

// FuzzParsePlain: any PLAIN message is split or refused, never a panic;
// an accepted one has a user and a password without NUL.
func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("alice\x00alice\x00secret"))
	f.Add([]byte("\x00\x00"))
	f.Add([]byte("a\x00b\x00c\x00d"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		_, user, pass, err := ParsePlain(msg)
		if err != nil {
			return
		}
		if user == "" || pass == "" || strings.ContainsRune(user, 0) || strings.ContainsRune(pass, 0) {
			t.Fatalf("accepted %q: user %q pass %q", msg, user, pass)
		}
	})
}

// FuzzScramServer feeds arbitrary client messages to a SCRAM exchange (the
// client-first and client-final parsers of xdg-go/scram behind ours): it
// never panics and never succeeds without the password.
func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abcdef"), []byte("c=biws,r=abcdef,p=AAAA"), false)
	f.Add([]byte("n,a=bob,n=alice,r=x"), []byte("c=biws,r=x,p="), true)
	f.Add([]byte("y,,n=alice,r=r"), []byte(""), false)
	f.Add([]byte("p=tls-unique,,n=alice,r=r"), []byte("c=,r=,p=,e=x"), true)
	f.Add([]byte("n,,n=tok-1,r=abcdef,tokenauth=true"), []byte("c=biws,r=abcdef,p=AAAA"), false)
	o := creds(f)
	f.Fuzz(func(t *testing.T, first, final []byte, sha512 bool) {
		mech := ScramSHA256
		if sha512 {
			mech = ScramSHA512
		}
		x, err := NewExchange(mech, o, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, done, err := x.Step(first)
		if err != nil || done {
			if done {
				t.Fatalf("done after the first message %q", first)
			}
			return
		}
		if _, done, err = x.Step(final); done && err == nil {
			t.Fatalf("authenticated without the password: %q %q", first, final)
		}
	})
}

// TestPlainAndScram: the right password passes, a wrong one and an unknown
// user fail the same way, and PLAIN finds the SCRAM credential.
func TestPlainAndScram(t *testing.T) {
	o := creds(t)
	for _, tc := range []struct {
		msg string
		ok  bool
	}{{"\x00alice\x00secret", true}, {"alice\x00alice\x00secret", true}, {"\x00alice\x00nope", false},
		{"\x00bob\x00secret", false}, {"bob\x00alice\x00secret", false}} {
		x, _ := NewExchange(PLAIN, o, nil)
		_, done, err := x.Step([]byte(tc.msg))
		if done != tc.ok || (err == nil) != tc.ok {
			t.Errorf("%q: done %v err %v", tc.msg, done, err)
		}
		if tc.ok && x.Principal() != "User:alice" {
			t.Errorf("principal %q", x.Principal())
		}
	}
	if _, err := NewExchange("GSSAPI", o, nil); err == nil {
		t.Fatal("GSSAPI accepted")
	}
}

// TestParseScramArg: Kafka's --add-scram forms parse; a credential made
// from a password logs in with that password.
func TestParseScramArg(t *testing.T) {
	user, mech, c, err := ParseScramArg(`SCRAM-SHA-512=[name=alice,password="alice-secret",iterations=8192]`)
	if err != nil || user != "alice" || mech != ScramSHA512 || c.Iterations != 8192 || len(c.Salt) != 24 {
		t.Fatalf("%q %q %+v %v", user, mech, c, err)
	}
	x, _ := NewExchange(PLAIN, oneUser{c: map[string]ScramCredential{ScramSHA512: c}}, nil)
	if _, done, err := x.Step([]byte("\x00alice\x00alice-secret")); !done || err != nil {
		t.Fatalf("login with the --add-scram password: %v", err)
	}
	if _, _, c, err := ParseScramArg(`SCRAM-SHA-256=[name=bob,salt="c2FsdA==",saltedpassword="c2FsdGVk"]`); err != nil || c.Iterations != 4096 || string(c.Salt) != "salt" {
		t.Fatalf("salted form: %+v %v", c, err)
	}
	for _, bad := range []string{"", "SCRAM-SHA-256", "SCRAM-SHA-1=[name=a,password=b]", "SCRAM-SHA-256=[password=b]",
		"SCRAM-SHA-256=[name=a]", "SCRAM-SHA-256=[name=a,password=b,iterations=10]", "SCRAM-SHA-256=[name=a,password=b,salt=c2FsdA==,saltedpassword=eA==]",
		"SCRAM-SHA-256=[name=a,name=b,password=c]"} {
		if _, _, _, err := ParseScramArg(bad); !errors.Is(err, ErrBadScramArg) {
			t.Errorf("%q: %v, want ErrBadScramArg", bad, err)
		}
	}
}

// FuzzParseOAuthBearer: any OAUTHBEARER client message is split or
// refused, never a panic; a token is returned only from auth=Bearer.
func FuzzParseOAuthBearer(f *testing.F) {
	f.Add([]byte("n,,\x01auth=Bearer abc.def.ghi\x01\x01"))
	f.Add([]byte("n,a=user,\x01host=x\x01auth=bearer t\x01\x01"))
	f.Add([]byte("y,,\x01\x01"))
	f.Add([]byte("n,,\x01auth=Basic x\x01\x01"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		tok, err := ParseOAuthBearer(msg)
		if err == nil && (tok == "" || !strings.Contains(string(msg), tok)) {
			t.Fatalf("%q gave token %q", msg, tok)
		}
	})
}
