package cli

import (
	"strings"
	"testing"
)

// TestUsers: strom user create, list and delete against Strom and kfake
// (any Kafka cluster with KIP-554).
func TestUsers(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		r := runStrom(t, []string{"STROM_BROKERS=" + c.addr, "STROM_USER_PASSWORD=s3cret"}, nil, "user", "create", "alice")
		if r.code != 0 {
			t.Fatalf("create: %d %s", r.code, r.stderr)
		}
		c.ok(t, nil, "user", "create", "bob", "--password", "pw", "--mechanism", "SCRAM-SHA-512", "--iterations", "4096")
		out := c.ok(t, nil, "user", "list", "--output", "json")
		for _, want := range []string{`"user": "alice"`, `"user": "bob"`, `"mechanism": "SCRAM-SHA-256"`, `"iterations": 4096`} {
			if !strings.Contains(out, want) {
				t.Fatalf("list lacks %s:\n%s", want, out)
			}
		}
		if strings.Contains(strings.ToLower(out), "salt") {
			t.Fatalf("list shows a salt:\n%s", out)
		}
		c.ok(t, nil, "user", "delete", "alice")
		out = c.ok(t, nil, "user", "list")
		if strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
			t.Fatalf("after delete:\n%s", out)
		}
		if r := c.run(t, nil, "user", "create", "carol"); r.code == 0 {
			t.Fatal("create without a password succeeded")
		}
	})
}
