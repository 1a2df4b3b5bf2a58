package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/console"
)

// The tests run the console against a real Strom broker, started once for
// the package on a loopback port; each test uses topics of its own. Group
// tests use kfake (franz-go's fake cluster), which has consumer groups
// whatever the state of Strom's.

var kafkaAddr string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "strom-console-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	b, err := broker.Start(broker.Config{
		DataDir: dir, KafkaAddr: "127.0.0.1:0", AdvertisedAddr: "127.0.0.1:0", HTTPAddr: "-",
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start broker:", err)
		os.Exit(1)
	}
	kafkaAddr = b.KafkaAddr().String()
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	b.Shutdown(ctx)
	cancel()
	os.RemoveAll(dir)
	os.Exit(code)
}

// inCI reports whether we run in CI, where a missing tool is a failure.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// testEnv is a console served by an httptest server.
type testEnv struct {
	t    *testing.T
	con  *console.Console
	url  string
	adm  *kadm.Client
	cl   *kgo.Client
	http *http.Client
}

func newEnv(t *testing.T, mods ...func(*console.Config)) *testEnv {
	return newEnvAt(t, kafkaAddr, mods...)
}

func newEnvAt(t *testing.T, addr string, mods ...func(*console.Config)) *testEnv {
	t.Helper()
	cfg := console.Config{Brokers: []string{addr}, Logger: slog.New(slog.DiscardHandler), RequestTimeout: 10 * time.Second}
	for _, m := range mods {
		m(&cfg)
	}
	con, err := console.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(con.Handler())
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, con: con, url: srv.URL, adm: kadm.NewClient(cl), cl: cl, http: srv.Client()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := con.Close(ctx); err != nil {
			t.Errorf("console close: %v", err)
		}
		srv.Close()
		cl.Close()
	})
	return e
}

var topicSeq atomic.Int64

// topic creates a fresh topic with n partitions.
func (e *testEnv) topic(n int32) string {
	e.t.Helper()
	name := fmt.Sprintf("t-%s-%d", strings.ToLower(strings.NewReplacer("/", "-", "_", "-").Replace(e.t.Name())), topicSeq.Add(1))
	if len(name) > 200 {
		name = name[:200]
	}
	resp, err := e.adm.CreateTopic(context.Background(), n, 1, nil, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		e.t.Fatalf("create topic %s: %v", name, err)
	}
	return name
}

// produce writes records synchronously and returns them with offsets.
func (e *testEnv) produce(recs ...*kgo.Record) []*kgo.Record {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := e.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		e.t.Fatalf("produce: %v", err)
	}
	return recs
}

// do sends a request and decodes the JSON reply into out (if not nil).
func (e *testEnv) do(method, path string, body any, out any) int {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(path, "/api/") && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "text/html") {
		e.t.Errorf("%s %s: Content-Type %q, want JSON", method, path, ct)
	}
	if resp.StatusCode >= 400 {
		// Every error is JSON that says what is wrong.
		var eb struct{ Error, Code, Message string }
		if err := json.Unmarshal(raw, &eb); err != nil || (eb.Error == "" && eb.Message == "") || eb.Code == "" {
			e.t.Errorf("%s %s: status %d with a body that is not a JSON error: %s", method, path, resp.StatusCode, raw)
		}
		if resp.StatusCode == http.StatusInternalServerError {
			e.t.Errorf("%s %s: status %d: %s", method, path, resp.StatusCode, raw)
		}
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: status %d, reply %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

// wantStatus checks a request's status and, for errors, its code.
func (e *testEnv) wantStatus(method, path string, body any, status int, code string) map[string]any {
	e.t.Helper()
	var out map[string]any
	got := e.do(method, path, body, &out)
	if got != status {
		e.t.Errorf("%s %s: status %d, want %d (reply %v)", method, path, got, status, out)
	}
	if code != "" && out["code"] != code {
		e.t.Errorf("%s %s: code %v, want %s (reply %v)", method, path, out["code"], code, out)
	}
	return out
}

// eventually retries f until it returns nil or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// localListen makes kfake listen on loopback only.
func localListen(network, _ string) (net.Listener, error) { return net.Listen(network, "127.0.0.1:0") }
