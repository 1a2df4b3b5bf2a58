package console_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/stromhq/strom/internal/console"
)

// idleSSE opens an SSE stream that reads nothing after its ready event;
// ended reports when the server has closed it.
func idleSSE(t *testing.T, e *testEnv, topic string) (ended <-chan struct{}, closeFn func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/topics/"+topic+"/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		cancel()
		t.Fatalf("SSE: %d %s", resp.StatusCode, b)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.Copy(io.Discard, bufio.NewReader(resp.Body))
	}()
	return done, func() { cancel(); resp.Body.Close(); <-done }
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// TestStreamIdleLockout (issue 23): idle streams at the console's limit
// made every Live tab get 503. A new stream now takes the place of the
// stream idle longest (once idle StreamEvictIdle); one client is held to
// its own limit (429) while its streams are busy; and a stream idle for
// StreamIdleTimeout is closed.
func TestStreamIdleLockout(t *testing.T) {
	t.Parallel()
	const evictIdle = 300 * time.Millisecond
	e := newEnv(t, func(c *console.Config) {
		c.MaxStreams = 2
		c.MaxStreamsPerClient = 2
		c.StreamEvictIdle = evictIdle
	})
	topic := e.topic(1)

	ended1, close1 := idleSSE(t, e, topic)
	defer close1()
	time.Sleep(50 * time.Millisecond) // stream 1 is the idler of the two
	ended2, close2 := idleSSE(t, e, topic)
	defer close2()

	// At once, neither has been idle long enough: refused, 429 (this
	// client's limit is reached first).
	req, _ := http.NewRequest("GET", e.url+"/api/v1/topics/"+topic+"/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third stream at once: %d, want 429", resp.StatusCode)
	}

	// Once they are idle, a Live tab (a WebSocket) gets in, in the place
	// of the stream idle longest; the other stays.
	time.Sleep(evictIdle + 100*time.Millisecond)
	next, closeWS := wsStream(t, e, topic, "")
	defer closeWS()
	if m := next(); m.Type != "ready" {
		t.Fatalf("first message %+v, want ready", m)
	}
	eventually(t, 5*time.Second, func() error {
		if !isClosed(ended1) {
			return errors.New("the idlest stream is still open")
		}
		return nil
	})
	if isClosed(ended2) {
		t.Error("the second stream was closed too")
	}
	if n := e.con.StreamsAdmitted(); n != 2 {
		t.Errorf("%d streams admitted, want 2", n)
	}
}

// TestStreamIdleTimeout: a stream with nothing to send for
// StreamIdleTimeout is closed (a WebSocket with 1001, going away, so the
// Live tab reconnects), and its slot is free again.
func TestStreamIdleTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.StreamIdleTimeout = 500 * time.Millisecond })
	topic := e.topic(1)
	ended, closeSSE := idleSSE(t, e, topic)
	defer closeSSE()
	eventually(t, 10*time.Second, func() error {
		if !isClosed(ended) {
			return errors.New("the idle SSE stream is still open")
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(e.url, "http") + "/api/v1/topics/" + topic + "/stream"
	conn, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	var err2 error
	for err2 == nil {
		_, _, err2 = conn.Read(ctx)
	}
	if s := websocket.CloseStatus(err2); s != websocket.StatusGoingAway {
		t.Fatalf("idle WebSocket ended with %v (status %d), want 1001", err2, s)
	}
	eventually(t, 5*time.Second, func() error {
		if n := e.con.StreamsAdmitted(); n != 0 {
			return fmt.Errorf("%d stream slots still held", n)
		}
		return nil
	})
}
