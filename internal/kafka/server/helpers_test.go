package server

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/testutil"
)

// testVersions is what the fake handler serves.
var testVersions = []kmsg.ApiVersionsResponseApiKey{
	{ApiKey: 0, MinVersion: 0, MaxVersion: 11},  // Produce
	{ApiKey: 3, MinVersion: 0, MaxVersion: 12},  // Metadata
	{ApiKey: 12, MinVersion: 0, MaxVersion: 4},  // Heartbeat
	{ApiKey: 17, MinVersion: 0, MaxVersion: 1},  // SaslHandshake
	{ApiKey: 18, MinVersion: 0, MaxVersion: 4},  // ApiVersions
	{ApiKey: 32, MinVersion: 1, MaxVersion: 4},  // DescribeConfigs, min above 0
	{ApiKey: 60, MinVersion: 0, MaxVersion: 99}, // DescribeCluster, max above the codec's
}

// fakeHandler asks handle first, if set, then answers ApiVersions and
// Metadata minimally. Heartbeat is echoed by default: the group id is a
// number n, answered with ThrottleMillis n.
type fakeHandler struct {
	addr   func() string                                           // the server's address, for Metadata
	handle func(ctx context.Context, req *Request) (*Reply, error) // nil, nil: default
}

func (h *fakeHandler) APIVersions() []kmsg.ApiVersionsResponseApiKey { return testVersions }

func (h *fakeHandler) Handle(ctx context.Context, req *Request) (Reply, error) {
	if h.handle != nil {
		if r, err := h.handle(ctx, req); err != nil {
			return Reply{}, err
		} else if r != nil {
			return *r, nil
		}
	}
	switch m := req.Msg.(type) {
	case *kmsg.ApiVersionsRequest:
		resp := m.ResponseKind().(*kmsg.ApiVersionsResponse)
		resp.ApiKeys = append(resp.ApiKeys, testVersions...)
		return Reply{Response: resp}, nil
	case *kmsg.MetadataRequest:
		resp := m.ResponseKind().(*kmsg.MetadataResponse)
		host, port, _ := net.SplitHostPort(h.addr())
		p, _ := strconv.Atoi(port)
		resp.Brokers = []kmsg.MetadataResponseBroker{{NodeID: 0, Host: host, Port: int32(p)}}
		resp.ControllerID = 0
		resp.ClusterID = kmsg.StringPtr("test")
		return Reply{Response: resp}, nil
	case *kmsg.HeartbeatRequest:
		n, _ := strconv.Atoi(m.Group)
		resp := m.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ThrottleMillis = int32(n)
		return Reply{Response: resp}, nil
	}
	return Reply{}, errors.New("fake handler: unexpected request")
}

type testServer struct {
	*Server
	addr    string
	served  chan error // Serve's result
	handler *fakeHandler
	logs    *testutil.SyncBuffer
}

// startServer serves h on 127.0.0.1:0 and shuts the server down at the end
// of the test, checking that Serve returned ErrServerClosed.
func startServer(t testing.TB, cfg Config, h *fakeHandler) *testServer {
	t.Helper()
	if h == nil {
		h = &fakeHandler{}
	}
	logs := &testutil.SyncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: New(cfg, h), addr: ln.Addr().String(), served: make(chan error, 1), handler: h, logs: logs}
	h.addr = func() string { return ts.addr }
	go func() { ts.served <- ts.Serve(ln) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", logs)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := ts.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-ts.served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	})
	return ts
}

// rawClient speaks the wire protocol by hand on one connection.
type rawClient struct {
	t    testing.TB
	conn net.Conn
	f    *kmsg.RequestFormatter
}

func dial(t testing.TB, addr string) *rawClient {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw"))}
}

// frame encodes req at version v with correlation id corr.
func frame(f *kmsg.RequestFormatter, req kmsg.Request, v int16, corr int32) []byte {
	req.SetVersion(v)
	return f.AppendRequest(nil, req, corr)
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *rawClient) send(req kmsg.Request, v int16, corr int32) {
	c.t.Helper()
	c.write(frame(c.f, req, v, corr))
}

// readFrame reads one response frame: its correlation id and what follows.
// It fails after 5 s.
func (c *rawClient) readFrame() (int32, []byte, error) {
	return c.readFrameWithin(5 * time.Second)
}

// readFrameWithin is readFrame with a deadline of its own.
func (c *rawClient) readFrameWithin(d time.Duration) (int32, []byte, error) {
	c.conn.SetReadDeadline(time.Now().Add(d))
	var size [4]byte
	if _, err := io.ReadFull(c.conn, size[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 4 || n > 64<<20 {
		return 0, nil, errors.New("bad response size " + strconv.Itoa(int(n)))
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(c.conn, b); err != nil {
		return 0, nil, err
	}
	return int32(binary.BigEndian.Uint32(b)), b[4:], nil
}

// recv reads one response into resp (whose version must be set), skipping
// the response header's tags when the header is flexible.
func (c *rawClient) recv(resp kmsg.Response) int32 {
	c.t.Helper()
	corr, body, err := c.readFrame()
	if err != nil {
		c.t.Fatalf("read response: %v", err)
	}
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		if len(body) == 0 || body[0] != 0 {
			c.t.Fatalf("flexible response header without empty tags: % x", body[:min(len(body), 8)])
		}
		body = body[1:]
	}
	if err := resp.ReadFrom(body); err != nil {
		c.t.Fatalf("decode %T v%d: %v", resp, resp.GetVersion(), err)
	}
	return corr
}

// expectClosed waits for the server to close the connection, discarding any
// replies still sent before.
func (c *rawClient) expectClosed() {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.Copy(io.Discard, c.conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatal("connection still open after 5s")
	}
}

// heartbeat is a request the fake handler echoes: ThrottleMillis = n.
func heartbeat(n int) *kmsg.HeartbeatRequest {
	r := kmsg.NewPtrHeartbeatRequest()
	r.Group = strconv.Itoa(n)
	r.MemberID = "m"
	return r
}

// roundTrip checks that c still gets answers.
func (c *rawClient) roundTrip(n int) {
	c.t.Helper()
	c.send(heartbeat(n), 4, int32(n))
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(4)
	if corr := c.recv(resp); corr != int32(n) || resp.ThrottleMillis != int32(n) {
		c.t.Fatalf("heartbeat %d: corr %d throttle %d", n, corr, resp.ThrottleMillis)
	}
}

// tryRoundTrip is roundTrip returning what goes wrong instead of failing.
func (c *rawClient) tryRoundTrip(n int) error {
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write(frame(c.f, heartbeat(n), 4, int32(n))); err != nil {
		return err
	}
	corr, body, err := c.readFrame()
	if err != nil {
		return err
	}
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(4)
	if len(body) == 0 || resp.ReadFrom(body[1:]) != nil || corr != int32(n) || resp.ThrottleMillis != int32(n) {
		return errors.New("bad heartbeat reply")
	}
	return nil
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
