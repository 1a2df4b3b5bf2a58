package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

func TestHostGuard(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		listen string
		names  []string
		host   string
		want   bool
	}{
		{"127.0.0.1:8080", nil, "localhost:8080", true},
		{"127.0.0.1:8080", nil, "LOCALHOST:8080", true},
		{"127.0.0.1:8080", nil, "localhost.:8080", true},
		{"127.0.0.1:8080", nil, "localhost", true},
		{"127.0.0.1:8080", nil, "127.0.0.1:8080", true},
		{"127.0.0.1:8080", nil, "[::1]:8080", true},
		{"127.0.0.1:8080", nil, "[::1]", true},
		{":8080", nil, "10.1.2.3:8080", true}, // an address: no rebinding possible
		{":8080", nil, "[fe80::1%25eth0]:8080", true},
		{"", nil, "", true}, // HTTP/1.0 without Host: not a browser
		// DNS rebinding: the attacker's name, whatever it resolves to.
		{"127.0.0.1:8080", nil, "evil.example:8080", false},
		{"127.0.0.1:8080", nil, "evil.example", false},
		{":8080", nil, "127.0.0.1.nip.io:8080", false},
		{":8080", nil, "localhost.evil.example:8080", false},
		{":8080", nil, "evil.localhost.example", false},
		{":8080", nil, "2130706433:8080", false}, // not an address Go or a browser would send
		// The listen address's name and the configured ones.
		{"strom.internal:8080", nil, "strom.internal:8080", true},
		{"strom.internal:8080", nil, "Strom.Internal.:8080", true},
		{"strom.internal:8080", nil, "other.internal:8080", false},
		{":8080", []string{"strom.internal", " dash.example "}, "dash.example:443", true},
		{":8080", []string{"strom.internal"}, "evil.example", false},
		{":8080", []string{"*"}, "evil.example", true},
	} {
		g := console.NewHostGuard(tc.listen, tc.names)
		if got := g.Allowed(tc.host); got != tc.want {
			t.Errorf("listen %q, names %q: Host %q allowed %v, want %v", tc.listen, tc.names, tc.host, got, tc.want)
		}
	}
}

// TestHostCheckRefusesRebinding: a page on evil.example that re-points its
// name at the console's address sends requests with Host: evil.example.
// They are refused whatever they do, reads included: the page could read
// the answers, since the browser sees them as same-origin. Before the
// check, only state-changing requests whose Origin differed from Host were
// refused, and a rebinding page's Origin and Host agree.
func TestHostCheckRefusesRebinding(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	e.produce(&kgo.Record{Topic: topic, Value: []byte("secret")})
	port := e.url[strings.LastIndexByte(e.url, ':')+1:]

	send := func(method, path, host, origin, body string, hdr ...string) (int, string) {
		t.Helper()
		var rd io.Reader
		if body != "" {
			rd = strings.NewReader(body)
		}
		// A stream wrongly served would never end: bound the request.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, method, e.url+path, rd)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = host
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := e.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden {
			b, _ := io.ReadAll(resp.Body)
			var eb struct{ Error, Code string }
			if err := json.Unmarshal(b, &eb); err != nil || eb.Code == "" || eb.Error == "" {
				t.Errorf("%s %s (Host %s): 403 without a JSON error: %s", method, path, host, b)
			}
			return resp.StatusCode, eb.Code
		}
		return resp.StatusCode, ""
	}

	evil := "evil.example:" + port
	for _, c := range []struct {
		method, path, body string
		hdr                []string
	}{
		{"GET", "/api/v1/topics/" + topic + "/messages?order=oldest", "", nil},
		{"GET", "/api/v1/topics", "", nil},
		{"GET", "/api/v1/groups", "", nil},
		{"GET", "/", "", nil},
		{"GET", "/api/v1/topics/" + topic + "/stream?from=earliest", "", []string{"Accept", "text/event-stream"}},
		{"GET", "/api/v1/topics/" + topic + "/stream?from=earliest", "", []string{
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}},
		{"DELETE", "/api/v1/topics/" + topic, "", nil},
		{"POST", "/api/v1/topics/" + topic + "/records", `{"records":[{"value":"x"}]}`, nil},
	} {
		// The page's own origin: the Origin check alone lets it through.
		if s, code := send(c.method, c.path, evil, "http://"+evil, c.body, c.hdr...); s != http.StatusForbidden || code != "host_not_allowed" {
			t.Errorf("%s %s with Host %s: status %d %q, want 403 host_not_allowed", c.method, c.path, evil, s, code)
		}
	}
	// The topic is still there, with its one record.
	var p struct{ Records []map[string]any }
	if s := e.do("GET", "/api/v1/topics/"+topic+"/messages?order=oldest", nil, &p); s != 200 || len(p.Records) != 1 {
		t.Errorf("after the refused requests: status %d, %d records", s, len(p.Records))
	}

	// The console's own names work, from a browser too.
	for _, host := range []string{"localhost:" + port, "127.0.0.1:" + port, "[::1]:" + port} {
		if s, _ := send("GET", "/api/v1/topics/"+topic+"/messages", host, "", ""); s != 200 {
			t.Errorf("GET with Host %s: status %d", host, s)
		}
		if s, _ := send("POST", "/api/v1/topics/"+topic+"/records", host, "http://"+host, `{"records":[{"value":"y"}]}`); s != 200 {
			t.Errorf("POST with Host %s and its own Origin: status %d", host, s)
		}
	}

	// A configured name is allowed.
	named := newEnv(t, func(c *console.Config) { c.AllowedHosts = []string{"strom.internal"} })
	if s, _ := sendTo(t, named, "GET", "/api/v1/topics", "strom.internal"); s != 200 {
		t.Errorf("configured host: status %d", s)
	}
	if s, _ := sendTo(t, named, "GET", "/api/v1/topics", "evil.example"); s != 403 {
		t.Errorf("other host next to a configured one: status %d", s)
	}
}

// sendTo sends a GET to e with the given Host and returns the status.
func sendTo(t *testing.T, e *testEnv, method, path, host string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, e.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := e.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
