package broker

import (
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/testutil"
)

// get sends a GET to the broker's HTTP listener with the given Host
// header ("" for the listener's own address) and returns the status and
// the start of the body.
func get(t *testing.T, b *Broker, path, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", "http://"+b.HTTPAddr().String()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	return resp.StatusCode, string(body)
}

func startHTTP(t *testing.T, cfg Config) *Broker {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.KafkaAddr, cfg.HTTPAddr, cfg.Logger = "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler)
	b, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stop(t, b) })
	return b
}

// TestPprofOffByDefault: Go's profiler (goroutine stacks, heap and CPU
// profiles) was served with the console on every interface; it is now
// off unless --pprof (Config.Pprof) or http.pprof.enable turns it on.
func TestPprofOffByDefault(t *testing.T) {
	b := startHTTP(t, Config{})
	if s, body := get(t, b, "/debug/pprof/", ""); s != http.StatusNotFound || !strings.Contains(body, "--pprof") {
		t.Errorf("GET /debug/pprof/ by default: %d %q, want 404 naming --pprof", s, body)
	}
	if s, _ := get(t, b, "/debug/pprof/goroutine?debug=1", ""); s != http.StatusNotFound {
		t.Errorf("GET /debug/pprof/goroutine by default: %d, want 404", s)
	}

	for name, cfg := range map[string]Config{
		"flag": {Pprof: true},
		"prop": {Props: map[string]string{"http.pprof.enable": "true"}},
	} {
		b := startHTTP(t, cfg)
		if s, body := get(t, b, "/debug/pprof/", ""); s != http.StatusOK || !strings.Contains(body, "goroutine") {
			t.Errorf("%s: GET /debug/pprof/: %d %.100q, want 200 with the profile index", name, s, body)
		}
		if s, _ := get(t, b, "/debug/pprof/goroutine?debug=1", ""); s != http.StatusOK {
			t.Errorf("%s: GET /debug/pprof/goroutine: %d, want 200", name, s)
		}
		// Still behind the Host guard: a rebinding page reads no heap.
		if s, _ := get(t, b, "/debug/pprof/heap", "evil.example"); s != http.StatusForbidden {
			t.Errorf("%s: GET /debug/pprof/heap with Host evil.example: %d, want 403", name, s)
		}
	}
}

// TestHTTPHostGuard: /metrics (group lag, topic names) and the console
// answer only to the broker's own names; /healthz to anyone, so probes
// that dial by any name keep working.
func TestHTTPHostGuard(t *testing.T) {
	b := startHTTP(t, Config{HTTPAllowedHosts: []string{"flag.internal"}, Props: map[string]string{"http.allowed.hosts": "prop.internal, other.internal"}})
	port := b.HTTPAddr().String()[strings.LastIndexByte(b.HTTPAddr().String(), ':')+1:]
	for _, c := range []struct {
		path, host string
		want       int
	}{
		{"/healthz", "evil.example", 200},
		{"/metrics", "evil.example:" + port, 403},
		{"/api/v1/cluster", "evil.example:" + port, 403},
		{"/", "evil.example:" + port, 403},
		{"/metrics", "", 200}, // 127.0.0.1:port
		{"/metrics", "localhost:" + port, 200},
		{"/metrics", "flag.internal:" + port, 200},
		{"/metrics", "prop.internal", 200},
		{"/api/v1/cluster", "other.internal:" + port, 200},
		{"/api/v1/cluster", "localhost:" + port, 200},
	} {
		if s, body := get(t, b, c.path, c.host); s != c.want {
			t.Errorf("GET %s with Host %q: %d, want %d (%.200s)", c.path, c.host, s, c.want, body)
		}
	}
}

// The produce budget must hold one body of the maximum size; -1 lifts it.
func TestHTTPProduceBudgetConfig(t *testing.T) {
	if _, err := Start(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		Props: map[string]string{"http.produce.max.inflight.bytes": "1000"}, Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Fatalf("Start with a produce budget below the body limit: %v", err)
	}
	if b := startHTTP(t, Config{Props: map[string]string{"http.produce.max.inflight.bytes": "-1"}}); b.console == nil {
		t.Fatal("no console with http.produce.max.inflight.bytes=-1")
	}
}

// TestConsoleLoginWithSASL: a broker with a SASL_PLAINTEXT listener (and
// no PLAINTEXT one) serves its console with a login through that
// listener, where it used to disable the console; a broker with only
// PLAINTEXT keeps it open.
func TestConsoleLoginWithSASL(t *testing.T) {
	open := startHTTP(t, Config{})
	if st, body := get(t, open, "/api/v1/session", ""); st != http.StatusOK || !strings.Contains(body, `"login_required":false`) {
		t.Errorf("PLAINTEXT only: session %d %s, want an open console", st, body)
	}
	if st, _ := get(t, open, "/api/v1/topics", ""); st != http.StatusOK {
		t.Errorf("PLAINTEXT only: topics %d, want 200 without login", st)
	}

	dir := t.TempDir()
	if _, err := AddScram(dir, []string{"SCRAM-SHA-256=[name=alice,password=alice-pw]"}); err != nil {
		t.Fatal(err)
	}
	b := startHTTP(t, Config{DataDir: dir,
		Props:     map[string]string{"sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256"},
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
	})
	if b.console == nil {
		t.Fatal("no console with a SASL_PLAINTEXT listener")
	}
	if st, body := get(t, b, "/api/v1/session", ""); st != http.StatusOK || !strings.Contains(body, `"login_required":true`) {
		t.Errorf("SASL: session %d %s, want login required", st, body)
	}
	if st, _ := get(t, b, "/api/v1/topics", ""); st != http.StatusUnauthorized {
		t.Errorf("SASL: topics without login %d, want 401", st)
	}
	for pw, want := range map[string]int{"wrong": http.StatusUnauthorized, "alice-pw": http.StatusOK} {
		resp, err := http.Post("http://"+b.HTTPAddr().String()+"/api/v1/login", "application/json",
			strings.NewReader(`{"user":"alice","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login with password %q: %d, want %d", pw, resp.StatusCode, want)
		}
	}
}

// TestConsoleLoginOverSASLSSL: with only a SASL_SSL listener, whose
// certificate names another host than the loopback address the console
// dials, the console logs users in through it (pinned to the listener's
// own certificate), where it used to be disabled.
func TestConsoleLoginOverSASLSSL(t *testing.T) {
	dir, certs := t.TempDir(), t.TempDir()
	ca := testutil.NewCA(t, "console CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "kafka.example.com"}, Server: true})
	if _, err := AddScram(dir, []string{"SCRAM-SHA-512=[name=alice,password=alice-pw]"}); err != nil {
		t.Fatal(err)
	}
	b := startHTTP(t, Config{DataDir: dir,
		Props: map[string]string{
			"sasl.enabled.mechanisms": "SCRAM-SHA-512",
			"ssl.keystore.location":   testutil.WriteFile(t, certs, "server.pem", leaf.CertPEM, leaf.KeyPEM),
		},
		Listeners: []metadata.Listener{{Name: "SASL_SSL", Protocol: "SASL_SSL", Addr: "127.0.0.1:0"}},
	})
	if b.console == nil {
		t.Fatal("no console with a SASL_SSL listener")
	}
	for pw, want := range map[string]int{"wrong": http.StatusUnauthorized, "alice-pw": http.StatusOK} {
		resp, err := http.Post("http://"+b.HTTPAddr().String()+"/api/v1/login", "application/json",
			strings.NewReader(`{"user":"alice","password":"`+pw+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("login over SASL_SSL with password %q: %d, want %d", pw, resp.StatusCode, want)
		}
	}
}
