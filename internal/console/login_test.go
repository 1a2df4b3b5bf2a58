package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/console"
	"github.com/stromhq/strom/internal/metadata"
)

// saslBroker starts a broker with only a SASL_PLAINTEXT listener, ACLs on,
// User:admin a super user and users reader and writer; reader may
// describe and read every topic, writer also write. It returns the
// listener's address and an admin client.
func saslBroker(t *testing.T, extra ...map[string]string) (string, *kadm.Client) {
	t.Helper()
	dir := t.TempDir()
	var args []string
	for _, u := range []string{"admin", "reader", "writer"} {
		args = append(args, "SCRAM-SHA-512=[name="+u+",password="+u+"-pw]")
	}
	if _, err := broker.AddScram(dir, args); err != nil {
		t.Fatal(err)
	}
	props := map[string]string{
		"sasl.enabled.mechanisms": "SCRAM-SHA-512",
		"authorizer.class.name":   "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
		"super.users":             "User:admin",
	}
	for _, e := range extra {
		maps.Copy(props, e)
	}
	b, err := broker.Start(broker.Config{DataDir: dir, HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler),
		Props:     props,
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	addr := b.ListenerAddr("SASL_PLAINTEXT").String()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, b := range []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:reader", "User:writer").Topics("*").Operations(kadm.OpDescribe, kadm.OpRead),
		kadm.NewACLs().Allow("User:writer").Topics("*").Operations(kadm.OpWrite),
	} {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatalf("create acl: %v", r.Err)
			}
		}
	}
	return addr, adm
}

// browser is one HTTP client with its own cookies and CSRF token.
type browser struct {
	t      *testing.T
	url    string
	cookie *http.Cookie
	csrf   string
	bearer string
	origin string
}

func (b *browser) do(method, path string, body any) (int, map[string]any, *http.Response) {
	b.t.Helper()
	var rd io.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			b.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, b.url+path, rd)
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if b.cookie != nil {
		req.AddCookie(b.cookie)
	}
	if b.csrf != "" {
		req.Header.Set("X-CSRF-Token", b.csrf)
	}
	if b.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+b.bearer)
	}
	if b.origin != "" {
		req.Header.Set("Origin", b.origin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			b.t.Fatalf("%s %s: status %d, not JSON: %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, out, resp
}

func (b *browser) want(method, path string, body any, status int, code string) map[string]any {
	b.t.Helper()
	got, out, _ := b.do(method, path, body)
	if got != status || (code != "" && out["code"] != code) {
		b.t.Errorf("%s %s: %d %v, want %d %s", method, path, got, out, status, code)
	}
	return out
}

// login logs in and keeps the cookie and the CSRF token.
func (b *browser) login(user, pass string) {
	b.t.Helper()
	st, out, resp := b.do("POST", "/api/v1/login", map[string]string{"user": user, "password": pass})
	if st != http.StatusOK {
		b.t.Fatalf("login %s: %d %v", user, st, out)
	}
	for _, c := range resp.Cookies() {
		if c.Name == "strom_session" {
			b.cookie = &http.Cookie{Name: c.Name, Value: c.Value}
			if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge <= 0 {
				b.t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, expiring", c)
			}
		}
	}
	if b.cookie == nil {
		b.t.Fatalf("login %s: no session cookie", user)
	}
	b.csrf, _ = out["csrf_token"].(string)
	if b.csrf == "" || out["user"] != user {
		b.t.Fatalf("login %s: reply %v", user, out)
	}
}

func loginConsole(t *testing.T, addr string, l console.Login) (*console.Console, string) {
	t.Helper()
	con, err := console.New(console.Config{Brokers: []string{addr}, Logger: slog.New(slog.DiscardHandler), RequestTimeout: 10 * time.Second, Login: &l})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := con.Close(ctx); err != nil {
			t.Errorf("console close: %v", err)
		}
		srv.Close()
	})
	return con, srv.URL
}

// TestLoginACLs: under Login every API call needs a session, a wrong
// password is refused, and each call runs as the logged-in user, so the
// broker's ACLs decide: a read-only user lists topics but cannot delete
// one or produce, an admin can. Logout ends the session.
func TestLoginACLs(t *testing.T) {
	addr, adm := saslBroker(t)
	_, url := loginConsole(t, addr, console.Login{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}

	anon := &browser{t: t, url: url}
	anon.want("GET", "/api/v1/topics", nil, http.StatusUnauthorized, "unauthenticated")
	anon.want("DELETE", "/api/v1/topics/orders", nil, http.StatusUnauthorized, "unauthenticated")
	if out := anon.want("GET", "/api/v1/session", nil, http.StatusOK, ""); out["login_required"] != true || out["user"] != nil {
		t.Errorf("session before login: %v", out)
	}
	anon.want("POST", "/api/v1/login", map[string]string{"user": "reader", "password": "nope"}, http.StatusUnauthorized, "bad_credentials")
	anon.want("POST", "/api/v1/login", map[string]string{"user": "nobody", "password": "nope"}, http.StatusUnauthorized, "bad_credentials")

	reader := &browser{t: t, url: url}
	reader.login("reader", "reader-pw")
	var names []string
	for _, tp := range reader.want("GET", "/api/v1/topics", nil, http.StatusOK, "")["topics"].([]any) {
		names = append(names, tp.(map[string]any)["name"].(string))
	}
	if !strings.Contains(strings.Join(names, ","), "orders") {
		t.Errorf("reader sees topics %v, want orders", names)
	}
	reader.want("DELETE", "/api/v1/topics/orders", nil, http.StatusForbidden, "not_authorized")
	reader.want("POST", "/api/v1/topics/orders/records", map[string]any{"records": []map[string]any{{"value": "x"}}}, http.StatusForbidden, "not_authorized")
	reader.want("POST", "/api/v1/topics", map[string]any{"name": "reader-made", "partitions": 1}, http.StatusForbidden, "not_authorized")
	if td, err := adm.ListTopics(ctx, "orders"); err != nil || !td.Has("orders") {
		t.Fatalf("orders after the reader's delete: %v %v", td, err)
	}
	// The topic page tells the front end what the user may do (the
	// broker's answer, KIP-430), so it can hide the delete button.
	if ops := reader.want("GET", "/api/v1/topics/orders", nil, http.StatusOK, "")["authorized_operations"]; fmt.Sprint(ops) != "[READ DESCRIBE]" {
		t.Errorf("reader's operations on orders: %v, want [READ DESCRIBE]", ops)
	}

	// The cluster, transactions and producers views run as the reader too.
	if st := reader.want("GET", "/api/v1/cluster/status", nil, http.StatusOK, ""); len(st["brokers"].([]any)) != 1 {
		t.Errorf("reader's cluster status: %v", st)
	}
	reader.want("GET", "/api/v1/transactions", nil, http.StatusOK, "")
	reader.want("GET", "/api/v1/topics/orders/producers", nil, http.StatusOK, "")

	admin := &browser{t: t, url: url}
	admin.login("admin", "admin-pw")
	admin.want("POST", "/api/v1/topics", map[string]any{"name": "made-by-admin", "partitions": 1}, http.StatusCreated, "")
	admin.want("DELETE", "/api/v1/topics/made-by-admin", nil, http.StatusOK, "")

	reader.want("POST", "/api/v1/logout", nil, http.StatusNoContent, "")
	reader.want("GET", "/api/v1/topics", nil, http.StatusUnauthorized, "unauthenticated")
	admin.want("GET", "/api/v1/topics", nil, http.StatusOK, "") // another session lives on
}

// TestLoginCSRF: a state-changing call with the session's cookie but
// without its CSRF token, or with another session's, or from another
// origin, is refused before it reaches Kafka.
func TestLoginCSRF(t *testing.T) {
	addr, adm := saslBroker(t)
	_, url := loginConsole(t, addr, console.Login{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "keep"); err != nil {
		t.Fatal(err)
	}
	admin := &browser{t: t, url: url}
	admin.login("admin", "admin-pw")
	other := &browser{t: t, url: url}
	other.login("admin", "admin-pw")

	forged := &browser{t: t, url: url, cookie: admin.cookie}
	forged.want("DELETE", "/api/v1/topics/keep", nil, http.StatusForbidden, "csrf")
	forged.csrf = other.csrf
	forged.want("DELETE", "/api/v1/topics/keep", nil, http.StatusForbidden, "csrf")
	cross := &browser{t: t, url: url, cookie: admin.cookie, csrf: admin.csrf, origin: "https://evil.example"}
	cross.want("DELETE", "/api/v1/topics/keep", nil, http.StatusForbidden, "cross_origin")
	cross.want("POST", "/api/v1/login", map[string]string{"user": "admin", "password": "admin-pw"}, http.StatusForbidden, "cross_origin")
	if td, err := adm.ListTopics(ctx, "keep"); err != nil || !td.Has("keep") {
		t.Fatalf("keep after forged deletes: %v %v", td, err)
	}
	forged.want("GET", "/api/v1/topics/keep", nil, http.StatusOK, "") // reads need no token
}

// TestLoginTokens: a logged-in user creates an API token; a script
// produces with it as that user (the broker's ACLs apply: the reader's
// token cannot produce); a token cannot mint tokens nor serve as a
// cookie; a revoked token is refused.
func TestLoginTokens(t *testing.T) {
	addr, adm := saslBroker(t)
	_, url := loginConsole(t, addr, console.Login{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "readings"); err != nil {
		t.Fatal(err)
	}
	writer := &browser{t: t, url: url}
	writer.login("writer", "writer-pw")
	out := writer.want("POST", "/api/v1/tokens", map[string]any{"name": "sensor-1"}, http.StatusCreated, "")
	tok, _ := out["token"].(string)
	id, _ := out["id"].(string)
	if tok == "" || id == "" {
		t.Fatalf("token reply %v", out)
	}
	if list := writer.want("GET", "/api/v1/tokens", nil, http.StatusOK, "")["tokens"].([]any); len(list) != 1 || list[0].(map[string]any)["token"] != nil {
		t.Errorf("token list %v: want one, without its secret", list)
	}

	script := &browser{t: t, url: url, bearer: tok}
	rec := map[string]any{"records": []map[string]any{{"value": "21.5"}}}
	script.want("POST", "/api/v1/topics/readings/records", rec, http.StatusOK, "")
	script.want("POST", "/api/v1/tokens", map[string]any{"name": "again"}, http.StatusForbidden, "token_not_allowed")
	(&browser{t: t, url: url, cookie: &http.Cookie{Name: "strom_session", Value: tok}}).want("GET", "/api/v1/topics", nil, http.StatusUnauthorized, "unauthenticated")
	(&browser{t: t, url: url, bearer: writer.cookie.Value}).want("GET", "/api/v1/topics", nil, http.StatusUnauthorized, "unauthenticated")

	reader := &browser{t: t, url: url}
	reader.login("reader", "reader-pw")
	rtok := reader.want("POST", "/api/v1/tokens", map[string]any{"name": "ro"}, http.StatusCreated, "")["token"].(string)
	(&browser{t: t, url: url, bearer: rtok}).want("POST", "/api/v1/topics/readings/records", rec, http.StatusForbidden, "not_authorized")
	reader.want("DELETE", "/api/v1/tokens/"+id, nil, http.StatusNotFound, "unknown_token") // not the reader's

	writer.want("DELETE", "/api/v1/tokens/"+id, nil, http.StatusNoContent, "")
	script.want("POST", "/api/v1/topics/readings/records", rec, http.StatusUnauthorized, "unauthenticated")
	// A context of its own: the calls above may take long on a loaded
	// machine (CI once spent 300 s there), which is not what this checks.
	ectx, ecancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ecancel()
	ends, err := adm.ListEndOffsets(ectx, "readings")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("readings", 0); o.Offset != 1 {
		t.Errorf("readings end offset %d, want 1 (the writer's token's record only)", o.Offset)
	}
}

// TestLoginExpiry: a session ends at its TTL; its Kafka client closes.
func TestLoginExpiry(t *testing.T) {
	addr, _ := saslBroker(t)
	con, url := loginConsole(t, addr, console.Login{SessionTTL: 300 * time.Millisecond})
	b := &browser{t: t, url: url}
	b.login("reader", "reader-pw")
	if n := con.Sessions(); n != 1 {
		t.Fatalf("%d sessions, want 1", n)
	}
	// The sweeper ends it without any request asking.
	eventually(t, 10*time.Second, func() error {
		if n := con.Sessions(); n != 0 {
			return fmt.Errorf("%d sessions after the TTL, want 0", n)
		}
		return nil
	})
	eventually(t, 10*time.Second, func() error {
		if st, _, _ := b.do("GET", "/api/v1/topics", nil); st != http.StatusUnauthorized {
			return fmt.Errorf("status %d after the session's TTL, want 401", st)
		}
		return nil
	})
	if n := con.Sessions(); n != 0 {
		t.Errorf("%d sessions after expiry, want 0", n)
	}
}

// TestLoginLimits: a user's sessions beyond MaxSessionsPerUser end the
// oldest; beyond MaxSessions a login is refused.
func TestLoginLimits(t *testing.T) {
	addr, _ := saslBroker(t)
	con, url := loginConsole(t, addr, console.Login{MaxSessions: 3, MaxSessionsPerUser: 2})
	first := &browser{t: t, url: url}
	first.login("reader", "reader-pw")
	(&browser{t: t, url: url}).login("reader", "reader-pw")
	(&browser{t: t, url: url}).login("reader", "reader-pw")
	first.want("GET", "/api/v1/topics", nil, http.StatusUnauthorized, "unauthenticated")
	(&browser{t: t, url: url}).login("writer", "writer-pw")
	(&browser{t: t, url: url}).want("POST", "/api/v1/login", map[string]string{"user": "admin", "password": "admin-pw"}, http.StatusServiceUnavailable, "too_many_sessions")
	if n := con.Sessions(); n != 3 {
		t.Errorf("%d sessions, want 3", n)
	}
}

// TestLoginDurableTokens: with delegation tokens on in the cluster, an API
// token is a Kafka delegation token: it works through another console (a
// restarted one, or another node's) that never saw it made, is listed
// there as durable, and revoked there it stops working on every console
// that has not logged it in before.
func TestLoginDurableTokens(t *testing.T) {
	defer console.SetDTRecheck(200 * time.Millisecond)()
	addr, adm := saslBroker(t, map[string]string{"delegation.token.secret.key": "console-test-key"})
	_, url := loginConsole(t, addr, console.Login{})
	_, url2 := loginConsole(t, addr, console.Login{})
	_, url3 := loginConsole(t, addr, console.Login{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "readings"); err != nil {
		t.Fatal(err)
	}
	writer := &browser{t: t, url: url}
	writer.login("writer", "writer-pw")
	out := writer.want("POST", "/api/v1/tokens", map[string]any{"name": "sensor-1", "ttl_seconds": 3600}, http.StatusCreated, "")
	tok, _ := out["token"].(string)
	id, _ := out["id"].(string)
	if !strings.HasPrefix(tok, "strom_dt_") || id == "" || out["durable"] != true {
		t.Fatalf("token reply %v: want a durable (delegation) token", out)
	}
	rec := map[string]any{"records": []map[string]any{{"value": "21.5"}}}
	(&browser{t: t, url: url, bearer: tok}).want("POST", "/api/v1/topics/readings/records", rec, http.StatusOK, "")
	(&browser{t: t, url: url2, bearer: tok}).want("POST", "/api/v1/topics/readings/records", rec, http.StatusOK, "")
	(&browser{t: t, url: url2, bearer: tok + "x"}).want("POST", "/api/v1/topics/readings/records", rec, http.StatusUnauthorized, "unauthenticated")
	// A device's burst at a console that has not logged the token in:
	// one login, every request served (not only those that got a slot).
	var wg sync.WaitGroup
	statuses := make([]int, 12)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i], _, _ = (&browser{t: t, url: url3, bearer: tok}).do("POST", "/api/v1/topics/readings/records", rec)
		}()
	}
	wg.Wait()
	for i, st := range statuses {
		if st != http.StatusOK {
			t.Fatalf("burst request %d: status %d", i, st)
		}
	}

	w2 := &browser{t: t, url: url2}
	w2.login("writer", "writer-pw")
	list := w2.want("GET", "/api/v1/tokens", nil, http.StatusOK, "")["tokens"].([]any)
	if len(list) != 1 || list[0].(map[string]any)["id"] != id || list[0].(map[string]any)["durable"] != true {
		t.Fatalf("tokens on the other console: %v", list)
	}
	reader := &browser{t: t, url: url2}
	reader.login("reader", "reader-pw")
	reader.want("DELETE", "/api/v1/tokens/"+id, nil, http.StatusNotFound, "unknown_token") // not the reader's
	w2.want("DELETE", "/api/v1/tokens/"+id, nil, http.StatusNoContent, "")
	(&browser{t: t, url: url2, bearer: tok}).want("POST", "/api/v1/topics/readings/records", rec, http.StatusUnauthorized, "unauthenticated")
	// The first console logged the token in before: its check (every
	// 200 ms here, a minute by default) finds it gone.
	eventually(t, 10*time.Second, func() error {
		if st, _, _ := (&browser{t: t, url: url, bearer: tok}).do("POST", "/api/v1/topics/readings/records", rec); st != http.StatusUnauthorized {
			return fmt.Errorf("status %d on the console that cached the revoked token", st)
		}
		return nil
	})
	if list := w2.want("GET", "/api/v1/tokens", nil, http.StatusOK, "")["tokens"].([]any); len(list) != 0 {
		t.Fatalf("tokens after the revocation: %v", list)
	}
	ectx, ecancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer ecancel()
	ends, err := adm.ListEndOffsets(ectx, "readings")
	if err != nil {
		t.Fatal(err)
	}
	// One record through each of the first two consoles and 12 in the
	// burst; the first console's check may have let through a few more
	// before it found the token gone.
	if o, _ := ends.Lookup("readings", 0); o.Offset < 14 {
		t.Errorf("readings end offset %d, want at least 14", o.Offset)
	}
}
