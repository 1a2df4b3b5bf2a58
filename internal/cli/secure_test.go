package cli

import (
	"context"
	"crypto/x509/pkix"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// TestCLIOverSASLSSL: the README's secured setup as an operator runs it:
// the admin formatted with --add-scram creates a user and an ACL over
// SASL_SSL with the STROM_* variables, and the user then produces and
// consumes the topic it was given and is refused another.
func TestCLIOverSASLSSL(t *testing.T) {
	dir := t.TempDir()
	ca := testutil.NewCA(t, "cli CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	data := t.TempDir()
	if _, err := broker.AddScram(data, []string{"SCRAM-SHA-512=[name=admin,password=admin-secret]"}); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{DataDir: data, HTTPAddr: "-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Props: map[string]string{
			"ssl.keystore.location":   testutil.WriteFile(t, dir, "server.pem", leaf.CertPEM, leaf.KeyPEM),
			"sasl.enabled.mechanisms": "SCRAM-SHA-512,PLAIN",
			"authorizer.class.name":   "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":             "User:admin",
		},
		Listeners: []metadata.Listener{{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	env := func(user, pass, mech string, extra ...string) []string {
		return append([]string{"STROM_BROKERS=" + b.KafkaAddr().String(), "STROM_TLS_CA=" + testutil.WriteFile(t, dir, "ca.pem", ca.PEM),
			"STROM_SASL_MECHANISM=" + mech, "STROM_SASL_USER=" + user, "STROM_SASL_PASSWORD=" + pass}, extra...)
	}
	ok := func(e []string, in string, args ...string) string {
		t.Helper()
		r := runStrom(t, e, strings.NewReader(in), args...)
		if r.code != 0 {
			t.Fatalf("strom %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	admin := env("admin", "admin-secret", "SCRAM-SHA-512")
	ok(admin, "", "topic", "create", "orders")
	ok(admin, "", "topic", "create", "payroll")
	ok(env("admin", "admin-secret", "SCRAM-SHA-512", "STROM_USER_PASSWORD=alice-secret"), "", "user", "create", "alice")
	ok(admin, "", "acl", "add", "--allow-principal", "User:alice", "--operation", "Read", "--operation", "Write", "--topic", "orders")
	alice := env("alice", "alice-secret", "PLAIN")
	ok(alice, "hello\n", "produce", "orders")
	if out := ok(alice, "", "consume", "orders", "--from-beginning", "--count", "1"); !strings.Contains(out, "hello") {
		t.Fatalf("alice read %q", out)
	}
	if r := runStrom(t, alice, strings.NewReader("x\n"), "produce", "payroll"); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "authoriz") {
		t.Fatalf("alice produced to payroll: exit %d\n%s", r.code, r.stderr)
	}
	if out := ok(alice, "", "topic", "list"); strings.Contains(out, "payroll") || !strings.Contains(out, "orders") {
		t.Fatalf("alice's topic list:\n%s", out)
	}
}
