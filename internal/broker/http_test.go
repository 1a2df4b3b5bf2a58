package broker

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/metadata"
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
	cfg.DataDir, cfg.KafkaAddr, cfg.HTTPAddr, cfg.Logger = t.TempDir(), "127.0.0.1:0", "127.0.0.1:0", slog.New(slog.DiscardHandler)
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
