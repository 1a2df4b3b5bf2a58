package auth

import (
	"errors"
	"fmt"
	"strings"
)

// ErrJAAS marks a sasl.jaas.config value that does not parse or does not
// fit the mechanism it is for. Its messages never contain a password.
var ErrJAAS = errors.New("jaas config")

// JAASLogin is one login module entry of a JAAS configuration, as Kafka's
// sasl.jaas.config holds it:
//
//	org.apache.kafka.common.security.scram.ScramLoginModule required
//	    username="broker" password="secret";
type JAASLogin struct {
	Module  string            // the login module's class name
	Flag    string            // required, requisite, sufficient or optional
	Options map[string]string // key=value pairs, values unquoted
}

// jaasModules are the login modules whose credentials Strom's inter-broker
// client can use, by SASL mechanism.
var jaasModules = map[string]string{
	PLAIN:       "org.apache.kafka.common.security.plain.PlainLoginModule",
	ScramSHA256: "org.apache.kafka.common.security.scram.ScramLoginModule",
	ScramSHA512: "org.apache.kafka.common.security.scram.ScramLoginModule",
}

// ParseJAAS parses a sasl.jaas.config value: exactly one login module
// entry, `<module> <flag> key=value ... ;`. A value is a bare token (no
// spaces, '=', ';' or quotes) or a double-quoted string in which \" and \\
// stand for " and \. The trailing ';' is required, as in Kafka.
func ParseJAAS(s string) (JAASLogin, error) {
	p := jaasParser{s: s}
	var l JAASLogin
	var ok bool
	if l.Module, ok = p.word(); !ok {
		return l, fmt.Errorf("%w: want `<LoginModule class> required key=\"value\" ...;`, got no login module", ErrJAAS)
	}
	if l.Flag, ok = p.word(); !ok {
		return l, fmt.Errorf("%w: login module %s: want a control flag (required, requisite, sufficient, optional)", ErrJAAS, l.Module)
	}
	switch l.Flag {
	case "required", "requisite", "sufficient", "optional":
	default:
		return l, fmt.Errorf("%w: login module %s: control flag %q: want required, requisite, sufficient or optional", ErrJAAS, l.Module, l.Flag)
	}
	l.Options = map[string]string{}
	for {
		p.space()
		if p.done() {
			return l, fmt.Errorf("%w: login module %s: missing ';' at the end", ErrJAAS, l.Module)
		}
		if p.s[p.i] == ';' {
			p.i++
			p.space()
			if !p.done() {
				return l, fmt.Errorf("%w: text after the ';' ending login module %s (Strom reads one login module)", ErrJAAS, l.Module)
			}
			return l, nil
		}
		key, ok := p.word()
		if !ok {
			return l, fmt.Errorf("%w: login module %s: want key=value at offset %d", ErrJAAS, l.Module, p.i)
		}
		if p.done() || p.s[p.i] != '=' {
			return l, fmt.Errorf("%w: login module %s: option %q has no '=value'", ErrJAAS, l.Module, key)
		}
		p.i++
		val, err := p.value()
		if err != nil {
			// Never the value itself: it may be a password.
			return l, fmt.Errorf("%w: login module %s: option %q: %v", ErrJAAS, l.Module, key, err)
		}
		if _, dup := l.Options[key]; dup {
			return l, fmt.Errorf("%w: login module %s: option %q given twice", ErrJAAS, l.Module, key)
		}
		l.Options[key] = val
	}
}

// Credentials returns the username and password of a login for a SASL
// mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): the module must be that
// mechanism's and both options must be there.
func (l JAASLogin) Credentials(mechanism string) (user, password string, err error) {
	want, ok := jaasModules[mechanism]
	if !ok {
		return "", "", fmt.Errorf("%w: no login module for mechanism %s (want one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512)", ErrJAAS, mechanism)
	}
	if l.Module != want {
		return "", "", fmt.Errorf("%w: login module %s does not serve %s (want %s)", ErrJAAS, l.Module, mechanism, want)
	}
	user, password = l.Options["username"], l.Options["password"]
	switch {
	case user == "":
		return "", "", fmt.Errorf("%w: login module %s: no username", ErrJAAS, l.Module)
	case password == "":
		return "", "", fmt.Errorf("%w: login module %s: no password", ErrJAAS, l.Module)
	}
	return user, password, nil
}

type jaasParser struct {
	s string
	i int
}

func (p *jaasParser) done() bool { return p.i >= len(p.s) }

func (p *jaasParser) space() {
	for !p.done() && strings.IndexByte(" \t\r\n", p.s[p.i]) >= 0 {
		p.i++
	}
}

// word reads a bare token after spaces: up to a space, '=', ';' or quote.
func (p *jaasParser) word() (string, bool) {
	p.space()
	start := p.i
	for !p.done() && strings.IndexByte(" \t\r\n=;\"", p.s[p.i]) < 0 {
		p.i++
	}
	return p.s[start:p.i], p.i > start
}

// value reads a quoted string or a bare token right after '='.
func (p *jaasParser) value() (string, error) {
	if p.done() {
		return "", errors.New("no value")
	}
	if p.s[p.i] != '"' {
		if strings.IndexByte(" \t\r\n;", p.s[p.i]) >= 0 {
			return "", errors.New("empty value (quote it: \"\")")
		}
		v, ok := p.word()
		if !ok {
			return "", errors.New("empty value (quote it: \"\")")
		}
		return v, nil
	}
	p.i++
	var b strings.Builder
	for !p.done() {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.done() {
				return "", errors.New("unterminated quoted value")
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated quoted value")
}
