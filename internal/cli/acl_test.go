package cli

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
)

// TestACLs: strom acl add, list and remove against Strom with its
// authorizer on. (The commands are plain CreateAcls/DescribeAcls/DeleteAcls
// through kadm; kfake serves ACLs only with SASL, not run here.)
func TestACLs(t *testing.T) {
	strom := func(t *testing.T) *cluster {
		b, err := broker.Start(broker.Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
			// ANONYMOUS is the super user on this PLAINTEXT listener, so
			// the CLI may manage ACLs without logging in.
			Props: map[string]string{"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
				"super.users": "User:ANONYMOUS"},
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			b.Shutdown(ctx)
		})
		return &cluster{name: "strom", addr: b.KafkaAddr().String()}
	}
	for name, start := range map[string]func(*testing.T) *cluster{"strom": strom} {
		t.Run(name, func(t *testing.T) {
			c := start(t)
			out := c.ok(t, nil, "acl", "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Describe", "--topic", "orders")
			if !strings.Contains(out, "allow User:alice read on topic literal:orders from *") {
				t.Fatalf("add: %s", out)
			}
			c.ok(t, nil, "acl", "add", "--deny-principal", "User:bob", "--operation", "All", "--group", "app-", "--resource-pattern-type", "prefixed")
			out = c.ok(t, nil, "acl", "list", "--output", "json")
			for _, want := range []string{`"principal": "User:alice"`, `"operation": "describe"`, `"resource": "app-"`, `"pattern": "prefixed"`, `"permission": "deny"`} {
				if !strings.Contains(out, want) {
					t.Fatalf("list lacks %s:\n%s", want, out)
				}
			}
			if out := c.ok(t, nil, "acl", "list", "--topic", "orders"); strings.Contains(out, "app-") || !strings.Contains(out, "alice") {
				t.Fatalf("list --topic orders:\n%s", out)
			}
			if out := c.ok(t, nil, "acl", "remove", "--allow-principal", "User:alice", "--topic", "orders"); !strings.Contains(out, "removed 2 ACLs") {
				t.Fatalf("remove: %s", out)
			}
			if out := c.ok(t, nil, "acl", "list"); strings.Contains(out, "alice") || !strings.Contains(out, "bob") {
				t.Fatalf("after remove:\n%s", out)
			}
			if r := c.run(t, nil, "acl", "remove"); r.code == 0 {
				t.Fatal("remove with no filter succeeded")
			}
		})
	}
}
