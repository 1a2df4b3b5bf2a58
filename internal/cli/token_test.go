package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// TestCLITokens: kafka-delegation-tokens.sh's flow with strom token:
// alice creates a token (JSON with its id and HMAC), a job logs in with
// it (--sasl-token through STROM_SASL_TOKEN) and produces as alice but
// cannot create a token; list shows it; renew moves its expiry; expire
// revokes it and the job's next login fails with a readable error.
func TestCLITokens(t *testing.T) {
	data := t.TempDir()
	if _, err := broker.AddScram(data, []string{"SCRAM-SHA-512=[name=admin,password=admin-secret]", "SCRAM-SHA-512=[name=alice,password=alice-secret]"}); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{DataDir: data, HTTPAddr: "-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Props: map[string]string{
			"sasl.enabled.mechanisms":     "SCRAM-SHA-512",
			"authorizer.class.name":       "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
			"super.users":                 "User:admin",
			"delegation.token.secret.key": "cli-test-key",
		},
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	env := func(user, pass string, extra ...string) []string {
		return append([]string{"STROM_BROKERS=" + b.KafkaAddr().String(), "STROM_SASL_MECHANISM=SCRAM-SHA-512",
			"STROM_SASL_USER=" + user, "STROM_SASL_PASSWORD=" + pass}, extra...)
	}
	ok := func(e []string, in string, args ...string) string {
		t.Helper()
		r := runStrom(t, e, strings.NewReader(in), args...)
		if r.code != 0 {
			t.Fatalf("strom %s: exit %d\n%s", strings.Join(args, " "), r.code, r.stderr)
		}
		return r.stdout
	}
	admin, alice := env("admin", "admin-secret"), env("alice", "alice-secret")
	ok(admin, "", "topic", "create", "orders")
	ok(admin, "", "acl", "add", "--allow-principal", "User:alice", "--operation", "Write", "--operation", "Describe", "--topic", "orders")

	var made []tokenInfo
	if err := json.Unmarshal([]byte(ok(alice, "", "token", "create", "--renewer", "User:admin", "--output", "json")), &made); err != nil || len(made) != 1 {
		t.Fatalf("token create -o json: %v %+v", err, made)
	}
	tok := made[0]
	if tok.Owner != "User:alice" || tok.ID == "" || tok.HMAC == "" || len(tok.Renewers) != 1 {
		t.Fatalf("token %+v", tok)
	}
	job := env(tok.ID, tok.HMAC, "STROM_SASL_TOKEN=true")
	ok(job, "from the job\n", "produce", "orders")
	if r := runStrom(t, job, nil, "token", "create"); r.code == 0 || !strings.Contains(r.stderr, "not allowed") {
		t.Fatalf("a token creating a token: exit %d\n%s", r.code, r.stderr)
	}
	if out := ok(alice, "", "token", "list"); !strings.Contains(out, tok.ID) || !strings.Contains(out, "User:admin") {
		t.Fatalf("token list:\n%s", out)
	}
	if out := ok(admin, "", "token", "renew", tok.HMAC, "--period", "2h"); !strings.Contains(out, "token expires") {
		t.Fatalf("renew by the renewer: %s", out)
	}
	if out := ok(alice, "", "token", "expire", tok.HMAC); !strings.Contains(out, "token expired") {
		t.Fatalf("expire: %s", out)
	}
	if r := runStrom(t, job, strings.NewReader("x\n"), "produce", "orders"); r.code == 0 || !strings.Contains(strings.ToLower(r.stderr), "authentication") {
		t.Fatalf("the job after the expiry: exit %d\n%s", r.code, r.stderr)
	}
	if r := runStrom(t, alice, nil, "token", "renew", "not base64!"); r.code == 0 || !strings.Contains(r.stderr, "not a token HMAC") {
		t.Fatalf("a bad hmac: exit %d\n%s", r.code, r.stderr)
	}
}

// TestConsoleLogin: `strom console --login` for a SASL cluster: the API
// needs a login, users log in with their own Kafka credentials (a wrong
// password is refused), and --login with --sasl-* is a usage error.
func TestConsoleLogin(t *testing.T) {
	data := t.TempDir()
	if _, err := broker.AddScram(data, []string{"SCRAM-SHA-512=[name=alice,password=alice-secret]"}); err != nil {
		t.Fatal(err)
	}
	b, err := broker.Start(broker.Config{DataDir: data, HTTPAddr: "-", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Props:     map[string]string{"sasl.enabled.mechanisms": "SCRAM-SHA-512"},
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	if r := runStrom(t, nil, nil, "console", "--brokers", b.KafkaAddr().String(), "--login", "--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice"); r.code == 0 || !strings.Contains(r.stderr, "--login") {
		t.Fatalf("--login with --sasl-*: exit %d\n%s", r.code, r.stderr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, strom(t), "console", "--brokers", b.KafkaAddr().String(), "--login", "--http-addr", "127.0.0.1:0")
	cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0")
	var stderr testutil.SyncBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Signal(os.Interrupt); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("console's first line: %v\n%s", err, stderr.String())
	}
	i := strings.Index(line, "http://")
	if i < 0 {
		t.Fatalf("console's first line %q", line)
	}
	base := strings.Fields(line[i:])[0]
	do := func(method, path, body string, cookies []*http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for _, c := range cookies {
			req.AddCookie(c)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if r := do("GET", "/api/v1/topics", "", nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("topics before a login: %d", r.StatusCode)
	}
	if r := do("POST", "/api/v1/login", `{"user":"alice","password":"nope"}`, nil); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("a wrong password: %d", r.StatusCode)
	}
	r := do("POST", "/api/v1/login", `{"user":"alice","password":"alice-secret"}`, nil)
	if r.StatusCode != http.StatusOK || len(r.Cookies()) == 0 {
		t.Fatalf("login: %d %v", r.StatusCode, r.Cookies())
	}
	if r := do("GET", "/api/v1/topics", "", r.Cookies()); r.StatusCode != http.StatusOK {
		t.Fatalf("topics after the login: %d", r.StatusCode)
	}
}
