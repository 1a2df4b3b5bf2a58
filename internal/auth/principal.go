package auth

import (
	"crypto/x509"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrBadRule marks an ssl.principal.mapping.rules value that does not parse.
var ErrBadRule = errors.New("bad ssl.principal.mapping.rules")

// UserPrincipal is the principal of a user name, as Kafka writes it.
func UserPrincipal(name string) string { return "User:" + name }

// PrincipalMapper turns a client certificate's subject into a principal
// name with Kafka's ssl.principal.mapping.rules: the rules are tried in
// order; the first whose pattern matches the whole distinguished name
// gives the name (its replacement, optionally lower- or upper-cased);
// DEFAULT gives the distinguished name itself. No rule matching is an
// error (Kafka refuses the connection too).
type PrincipalMapper struct {
	rules []mappingRule
}

type mappingRule struct {
	def     bool
	re      *regexp.Regexp
	repl    string
	toLower bool
	toUpper bool
}

// ParseMappingRules parses rules such as
// "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/L,DEFAULT". Patterns are Go
// regular expressions (RE2): the usual Java patterns of Kafka's docs work;
// back-references and look-arounds do not.
func ParseMappingRules(s string) (*PrincipalMapper, error) {
	m := &PrincipalMapper{}
	rest := strings.TrimSpace(s)
	if rest == "" {
		rest = "DEFAULT"
	}
	for rest != "" {
		switch {
		case strings.HasPrefix(rest, "DEFAULT"):
			m.rules = append(m.rules, mappingRule{def: true})
			rest = rest[len("DEFAULT"):]
		case strings.HasPrefix(rest, "RULE:"):
			rest = rest[len("RULE:"):]
			pattern, after, ok := cutUnescaped(rest, '/')
			if !ok {
				return nil, fmt.Errorf("%w: %q: want RULE:pattern/replacement/[LU]", ErrBadRule, s)
			}
			repl, after, ok := cutUnescaped(after, '/')
			if !ok {
				return nil, fmt.Errorf("%w: %q: want RULE:pattern/replacement/[LU]", ErrBadRule, s)
			}
			r := mappingRule{repl: javaReplacement(repl)}
			if strings.HasPrefix(after, "L") {
				r.toLower, after = true, after[1:]
			} else if strings.HasPrefix(after, "U") {
				r.toUpper, after = true, after[1:]
			}
			re, err := regexp.Compile(pattern)
			if err != nil {
				return nil, fmt.Errorf("%w: pattern %q: %v", ErrBadRule, pattern, err)
			}
			r.re = re
			m.rules = append(m.rules, r)
			rest = after
		default:
			return nil, fmt.Errorf("%w: %q: each rule is DEFAULT or RULE:pattern/replacement/[LU]", ErrBadRule, s)
		}
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != ',' && rest[0] != '\n' {
			return nil, fmt.Errorf("%w: %q: rules are separated by commas", ErrBadRule, s)
		}
		rest = strings.TrimSpace(rest[1:])
	}
	return m, nil
}

// cutUnescaped splits s at the first sep not preceded by a backslash,
// unescaping "\/" in the part before it.
func cutUnescaped(s string, sep byte) (before, after string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '\\' && i+1 < len(s) && s[i+1] == sep:
			b.WriteByte(sep)
			i++
		case s[i] == sep:
			return b.String(), s[i+1:], true
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", false
}

// javaReplacement turns Java's $1 group references into Go's ${1}, so
// that "$1x" keeps meaning group 1 followed by x.
func javaReplacement(r string) string {
	var b strings.Builder
	for i := 0; i < len(r); i++ {
		if r[i] == '$' && i+1 < len(r) && r[i+1] >= '0' && r[i+1] <= '9' {
			j := i + 1
			for j < len(r) && r[j] >= '0' && r[j] <= '9' {
				j++
			}
			b.WriteString("${" + r[i+1:j] + "}")
			i = j - 1
			continue
		}
		b.WriteByte(r[i])
	}
	return b.String()
}

// ErrNoRuleMatched is returned when no mapping rule applies to a name.
var ErrNoRuleMatched = errors.New("no ssl.principal.mapping.rules rule matches")

// Name maps a distinguished name (RFC 2253 form, "CN=alice,OU=x,O=y").
func (m *PrincipalMapper) Name(dn string) (string, error) {
	for _, r := range m.rules {
		if r.def {
			return dn, nil
		}
		loc := r.re.FindStringSubmatchIndex(dn)
		if loc == nil || loc[0] != 0 || loc[1] != len(dn) {
			continue // Kafka's Matcher.matches(): the whole name
		}
		out := string(r.re.ExpandString(nil, r.repl, dn, loc))
		switch {
		case r.toLower:
			out = strings.ToLower(out)
		case r.toUpper:
			out = strings.ToUpper(out)
		}
		if out == "" {
			continue
		}
		return out, nil
	}
	return "", fmt.Errorf("%w %q", ErrNoRuleMatched, dn)
}

// CertPrincipal is the principal of a client certificate: User: and the
// mapped name of its subject.
func (m *PrincipalMapper) CertPrincipal(cert *x509.Certificate) (string, error) {
	name, err := m.Name(cert.Subject.String())
	if err != nil {
		return "", err
	}
	return UserPrincipal(name), nil
}
