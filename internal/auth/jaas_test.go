package auth

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJAAS(t *testing.T) {
	const plain = "org.apache.kafka.common.security.plain.PlainLoginModule"
	const scram = "org.apache.kafka.common.security.scram.ScramLoginModule"
	ok := []struct {
		in         string
		module     string
		user, pass string
		opts       map[string]string
	}{
		{plain + ` required username="broker" password="broker-secret";`, plain, "broker", "broker-secret", nil},
		{"  " + scram + "\n required\n\tusername=broker\n password=\"p;a=s s\" ;  ", scram, "broker", "p;a=s s", nil},
		{scram + ` required username="br\"o\\ker" password="x\"y";`, scram, `br"o\ker`, `x"y`, nil},
		{scram + ` optional username="u" password="p" tokenauth=false;`, scram, "u", "p", map[string]string{"tokenauth": "false"}},
		{plain + ` required username="u" password="p" user_admin="admin-secret";`, plain, "u", "p", map[string]string{"user_admin": "admin-secret"}},
	}
	for _, c := range ok {
		l, err := ParseJAAS(c.in)
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		if l.Module != c.module || l.Options["username"] != c.user || l.Options["password"] != c.pass {
			t.Fatalf("%q: got %+v", c.in, l)
		}
		for k, v := range c.opts {
			if l.Options[k] != v {
				t.Fatalf("%q: option %s=%q, want %q", c.in, k, l.Options[k], v)
			}
		}
	}

	const secret = "s3cr3t-value"
	bad := []struct{ in, want string }{
		{"", "no login module"},
		{plain, "control flag"},
		{plain + " mandatory username=u;", `control flag "mandatory"`},
		{plain + ` required username="u" password="` + secret + `"`, "missing ';'"},
		{plain + ` required username="u" password="` + secret, "unterminated quoted value"},
		{plain + ` required username="u" password="` + secret + `\`, "unterminated quoted value"},
		{plain + ` required username password="` + secret + `";`, `option "username" has no '=value'`},
		{plain + ` required username= password="` + secret + `";`, `option "username": empty value`},
		{plain + ` required username="u" username="v" password="` + secret + `";`, `"username" given twice`},
		{plain + ` required username="u" password="` + secret + `"; ` + scram + ` required;`, "text after the ';'"},
		{plain + ` required ="u" password="` + secret + `";`, "want key=value"},
	}
	for _, c := range bad {
		_, err := ParseJAAS(c.in)
		if err == nil || !errors.Is(err, ErrJAAS) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: got %v, want an ErrJAAS containing %q", c.in, err, c.want)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("%q: the error shows the password: %v", c.in, err)
		}
	}
}

func TestJAASCredentials(t *testing.T) {
	parse := func(s string) JAASLogin {
		l, err := ParseJAAS(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	plain := parse(`org.apache.kafka.common.security.plain.PlainLoginModule required username="b" password="pw";`)
	scram := parse(`org.apache.kafka.common.security.scram.ScramLoginModule required username="b" password="pw";`)
	noPass := parse(`org.apache.kafka.common.security.scram.ScramLoginModule required username="b";`)
	noUser := parse(`org.apache.kafka.common.security.scram.ScramLoginModule required password="pw";`)
	cases := []struct {
		l    JAASLogin
		mech string
		want string // "" ok
	}{
		{plain, PLAIN, ""},
		{scram, ScramSHA256, ""},
		{scram, ScramSHA512, ""},
		{plain, ScramSHA256, "does not serve SCRAM-SHA-256"},
		{scram, PLAIN, "does not serve PLAIN"},
		{scram, "GSSAPI", "no login module for mechanism GSSAPI"},
		{scram, OAUTHBEARER, "no login module for mechanism OAUTHBEARER"},
		{noPass, ScramSHA256, "no password"},
		{noUser, ScramSHA256, "no username"},
	}
	for _, c := range cases {
		u, p, err := c.l.Credentials(c.mech)
		if c.want == "" {
			if err != nil || u != "b" || p != "pw" {
				t.Fatalf("%s %s: %q %q %v", c.l.Module, c.mech, u, p, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, ErrJAAS) || !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%s %s: got %v, want %q", c.l.Module, c.mech, err, c.want)
		}
	}
}
