package auth

import (
	"errors"
	"testing"
)

// TestMappingRules: Kafka's documented forms map as Kafka's
// SslPrincipalMapper does.
func TestMappingRules(t *testing.T) {
	for _, tc := range []struct {
		rules, dn, want string
		err             error
	}{
		{"DEFAULT", "CN=alice,OU=eng,O=acme", "CN=alice,OU=eng,O=acme", nil},
		{"", "CN=alice", "CN=alice", nil},
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=svc,OU=ServiceUsers,O=acme", "svc", nil},
		{"RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,DEFAULT", "CN=bob,OU=People", "CN=bob,OU=People", nil},
		{"RULE:^CN=(.*?),OU=(.*?)$/$1@$2/L", "CN=Bob,OU=ENG", "bob@eng", nil},
		{"RULE:^CN=(.*?),OU=(.*?)$/$1@$2/U", "CN=Bob,OU=eng", "BOB@ENG", nil},
		{"RULE:^CN=(.*)$/$1x/", "CN=a", "ax", nil},
		{"RULE:^CN=a\\/b$/slash/", "CN=a/b", "slash", nil},
		{"RULE:CN=(.*)/$1/", "X,CN=a", "", ErrNoRuleMatched}, // must match the whole name
		{"RULE:^CN=(.*)$/$1/, DEFAULT", "O=x", "O=x", nil},
	} {
		m, err := ParseMappingRules(tc.rules)
		if err != nil {
			t.Fatalf("%q: %v", tc.rules, err)
		}
		got, err := m.Name(tc.dn)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("%q on %q: %q %v, want %q %v", tc.rules, tc.dn, got, err, tc.want, tc.err)
		}
	}
	for _, bad := range []string{"RULE:abc", "RULE:a/b", "NOPE", "RULE:([/x/", "DEFAULT DEFAULT"} {
		if _, err := ParseMappingRules(bad); !errors.Is(err, ErrBadRule) {
			t.Errorf("%q: %v, want ErrBadRule", bad, err)
		}
	}
}
