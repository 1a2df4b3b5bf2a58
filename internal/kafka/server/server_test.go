package server

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestFranzGoClient talks to the server with a real franz-go client:
// ApiVersions at v0, v3 (flexible body, v0 header) and v4, the client's own
// first ApiVersions at v5 (above our max, answered with UNSUPPORTED_VERSION),
// and Metadata at a flexible version (response header v1).
func TestFranzGoClient(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	for _, v := range []int16{0, 3, 4} {
		t.Run("api versions v"+strconv.Itoa(int(v)), func(t *testing.T) {
			vs := kversion.Stable()
			vs.SetMaxKeyVersion(apiVersionsKey, v)
			cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr), kgo.MaxVersions(vs))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetVersion() != v || resp.ErrorCode != 0 || len(resp.ApiKeys) != len(testVersions) {
				t.Fatalf("v%d error %d, %d keys", resp.GetVersion(), resp.ErrorCode, len(resp.ApiKeys))
			}
		})
	}

	t.Run("negotiation and metadata", func(t *testing.T) {
		// kmsg knows ApiVersions v5, we serve up to v4: the client's
		// first request gets UNSUPPORTED_VERSION and uses our list.
		cl, err := kgo.NewClient(kgo.SeedBrokers(ts.addr))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		resp, err := kmsg.NewPtrMetadataRequest().RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if resp.GetVersion() != 12 || len(resp.Brokers) != 1 || *resp.ClusterID != "test" {
			t.Fatalf("metadata v%d %+v", resp.GetVersion(), resp.Brokers)
		}
		if err := cl.Ping(ctx); err != nil {
			t.Fatal(err)
		}
	})
	st := ts.Stats()
	if n := st.Requests[apiVersionsKey]; n < 7 {
		t.Errorf("ApiVersions counted %d times", n)
	}
	// kgo retries ApiVersions at v0 after a reset, so only this shows that
	// its v5 request was answered rather than refused.
	if st.ProtocolErrors != 0 {
		t.Errorf("ProtocolErrors = %d", st.ProtocolErrors)
	}
}

// TestPipelinedOrder writes many requests in one write; replies come back in
// request order with their correlation ids although the later ones complete
// first.
func TestPipelinedOrder(t *testing.T) {
	const n = 60
	done := make([]chan struct{}, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	var handled atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok {
			return nil, nil
		}
		handled.Add(1)
		i, _ := strconv.Atoi(hb.Group)
		resp := hb.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ThrottleMillis = int32(i)
		if i%3 == 0 {
			return &Reply{Response: resp}, nil // ready now
		}
		return &Reply{Finish: func(ctx context.Context) kmsg.Response {
			select {
			case <-done[i]:
			case <-ctx.Done():
			}
			return resp
		}}, nil
	}}
	ts := startServer(t, Config{MaxInFlight: n}, h)
	c := dial(t, ts.addr)

	var all []byte
	for i := range n {
		all = append(all, frame(c.f, heartbeat(i), int16(1+i%4), int32(1000+i))...)
	}
	c.write(all)
	eventually(t, "all requests handled", func() bool { return handled.Load() == n })
	for i := n - 1; i >= 0; i-- {
		close(done[i])
	}
	for i := range n {
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.SetVersion(int16(1 + i%4))
		if corr := c.recv(resp); corr != int32(1000+i) || resp.ThrottleMillis != int32(i) {
			t.Fatalf("reply %d: corr %d throttle %d", i, corr, resp.ThrottleMillis)
		}
	}
}

// TestApiVersionsAboveMax: an ApiVersions request at a version we cannot
// parse gets UNSUPPORTED_VERSION in the v0 layout with our ApiVersions
// range, and the connection stays usable.
func TestApiVersionsAboveMax(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	c := dial(t, ts.addr)
	for _, v := range []int16{127, 5} {
		// A header and body we could not know the layout of.
		f := header(apiVersionsKey, v, 77, 0, 3, 'c', 'l', 'i', 0x01, 0x02, 0x03)
		c.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...))
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.SetVersion(0)
		if corr := c.recv(resp); corr != 77 {
			t.Fatalf("v%d: corr %d", v, corr)
		}
		// Only ApiVersions' range (KIP-511, as Kafka answers): the client
		// retries at its max and gets every range and the features.
		if resp.ErrorCode != 35 || len(resp.ApiKeys) != 1 {
			t.Fatalf("v%d: error %d keys %+v", v, resp.ErrorCode, resp.ApiKeys)
		}
		if k := resp.ApiKeys[0]; k.ApiKey != 18 || k.MinVersion != 0 || k.MaxVersion != 4 {
			t.Fatalf("v%d: key %+v, want ApiVersions 0-4", v, k)
		}
	}
	c.roundTrip(1)
	c.send(kmsg.NewPtrApiVersionsRequest(), 3, 78)
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(3)
	if corr := c.recv(resp); corr != 78 || resp.ErrorCode != 0 {
		t.Fatalf("corr %d error %d", corr, resp.ErrorCode)
	}
}

func sized(f []byte) []byte { return append(binary.BigEndian.AppendUint32(nil, uint32(len(f))), f...) }

// TestMalformedFrames: each bad frame closes its connection without a panic
// or a large allocation, while another client keeps working.
func TestMalformedFrames(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	healthy := dial(t, ts.addr)
	healthy.roundTrip(0)
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("x"))
	hb := frame(f, heartbeat(1), 4, 1)

	tests := []struct {
		name    string
		send    []byte
		halfEnd bool // close our write side after sending
	}{
		{"size 2^31-1", append(binary.BigEndian.AppendUint32(nil, 1<<31-1), hb[4:]...), false},
		{"negative size", binary.BigEndian.AppendUint32(nil, 0xfffffff0), false},
		{"size above limit", binary.BigEndian.AppendUint32(nil, uint32(DefaultMaxRequestBytes)+1), false},
		{"truncated request then close", hb[:len(hb)-3], true},
		{"truncated size then close", hb[:2], true},
		{"shorter than a header", sized([]byte{0, 18, 0}), false},
		{"unknown api key", sized(header(999, 0, 1, 0xff, 0xff)), false},
		{"key the handler does not serve", frame(f, kmsg.NewPtrFetchRequest(), 4, 1), false},
		{"unsupported version", sized(header(12, 9, 1, 0xff, 0xff)), false},
		{"version below min", frame(f, kmsg.NewPtrDescribeConfigsRequest(), 0, 1), false},
		{"api versions at -1", sized(header(apiVersionsKey, -1, 1, 0xff, 0xff)), false},
		{"garbage body", sized(header(3, 1, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff)), false},
		{"bad client id", sized(header(12, 0, 1, 0x7f, 0x00, 'a')), false},
		{"forged header tag count", sized(header(12, 4, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f)), false},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := dial(t, ts.addr)
			c.write(tt.send)
			if tt.halfEnd {
				c.conn.(*net.TCPConn).CloseWrite()
			}
			c.expectClosed()
			healthy.roundTrip(i + 1)
		})
	}
	if got := ts.Stats().ProtocolErrors; got < uint64(len(tests)-2) {
		t.Errorf("ProtocolErrors = %d", got)
	}
	if strings.Contains(ts.logs.String(), "panic") {
		t.Errorf("panic logged:\n%s", ts.logs)
	}
}

// TestClaimedSizeNotAllocated keeps connections open that claim frames of
// the maximum size and send a few bytes: the heap must not grow by the
// claimed sizes.
func TestClaimedSizeNotAllocated(t *testing.T) {
	ts := startServer(t, Config{}, nil)
	healthy := dial(t, ts.addr)
	healthy.roundTrip(0)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	in := ts.Stats().BytesIn

	const conns = 8
	var sent uint64
	for range conns {
		c := dial(t, ts.addr)
		b := append(binary.BigEndian.AppendUint32(nil, uint32(DefaultMaxRequestBytes)), header(12, 4, 1, 0, 1)...)
		c.write(b)
		sent += uint64(len(b))
	}
	eventually(t, "server read the claims", func() bool { return ts.Stats().BytesIn-in >= sent })
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	grown := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	if grown > 16<<20 {
		t.Fatalf("heap grew by %d MiB for %d connections claiming %d MiB each", grown>>20, conns, DefaultMaxRequestBytes>>20)
	}
	healthy.roundTrip(1)
}

// TestHandlerPanic: a panic in Handle or Finish closes that connection only,
// after the replies queued before it; the broker keeps serving others.
func TestHandlerPanic(t *testing.T) {
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok {
			return nil, nil
		}
		switch hb.Group {
		case "panic":
			panic("boom in handle")
		case "finish-panic":
			return &Reply{Finish: func(context.Context) kmsg.Response { panic("boom in finish") }}, nil
		}
		return nil, nil
	}}
	ts := startServer(t, Config{}, h)
	other := dial(t, ts.addr)
	other.roundTrip(0)

	for i, group := range []string{"panic", "finish-panic"} {
		c := dial(t, ts.addr)
		bad := heartbeat(0)
		bad.Group = group
		c.write(append(frame(c.f, heartbeat(5), 4, 5), frame(c.f, bad, 4, 6)...))
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.SetVersion(4)
		if corr := c.recv(resp); corr != 5 {
			t.Fatalf("%s: reply before the panic: corr %d", group, corr)
		}
		c.expectClosed()
		other.roundTrip(i + 1)
	}
	if got := ts.Stats().Panics; got != 2 {
		t.Errorf("Panics = %d", got)
	}
	// Each panic is one error record holding the value and the stack of
	// the goroutine at the panic, down to the function that panicked (the
	// handler's closures here), not only where it was recovered.
	logs := strings.Split(ts.logs.String(), "\n")
	for _, want := range []struct{ value, frame string }{
		{"boom in handle", "server.TestHandlerPanic.func1("},
		{"boom in finish", "server.TestHandlerPanic.func1.1("},
	} {
		var line string
		for _, l := range logs {
			if strings.Contains(l, want.value) {
				line = l
			}
		}
		for _, part := range []string{"level=ERROR", "closing connection", "stack=", "runtime/debug.Stack", want.frame} {
			if !strings.Contains(line, part) {
				t.Errorf("log record of %q lacks %q:\n%s", want.value, part, line)
			}
		}
	}
}

// TestNoResponse: acks=0 produce requests write nothing, and the replies
// around them stay in order.
func TestNoResponse(t *testing.T) {
	var finished atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		p, ok := req.Msg.(*kmsg.ProduceRequest)
		switch {
		case !ok:
			return nil, nil
		case p.Acks == 0 && p.TimeoutMillis == 1:
			// NoResponse with a Finish: it runs, nothing is written.
			return &Reply{NoResponse: true, Finish: func(context.Context) kmsg.Response {
				finished.Add(1)
				return p.ResponseKind()
			}}, nil
		case p.Acks == 0:
			return &Reply{NoResponse: true}, nil
		}
		return &Reply{Response: p.ResponseKind()}, nil
	}}
	ts := startServer(t, Config{}, h)
	c := dial(t, ts.addr)

	produce := func(acks int16, timeout int32) kmsg.Request {
		p := kmsg.NewPtrProduceRequest()
		p.Acks, p.TimeoutMillis = acks, timeout
		return p
	}
	var b []byte
	b = append(b, frame(c.f, heartbeat(1), 4, 1)...)
	b = append(b, frame(c.f, produce(0, 0), 7, 2)...)
	b = append(b, frame(c.f, heartbeat(3), 4, 3)...)
	b = append(b, frame(c.f, produce(0, 1), 9, 4)...)
	b = append(b, frame(c.f, produce(1, 0), 9, 5)...)
	b = append(b, frame(c.f, heartbeat(6), 4, 6)...)
	c.write(b)
	for _, want := range []int32{1, 3, 5, 6} {
		var resp kmsg.Response = kmsg.NewPtrHeartbeatResponse()
		resp.SetVersion(4)
		if want == 5 {
			resp = kmsg.NewPtrProduceResponse()
			resp.SetVersion(9)
		}
		if corr := c.recv(resp); corr != want {
			t.Fatalf("corr %d, want %d", corr, want)
		}
	}
	if finished.Load() != 1 {
		t.Fatalf("Finish of the NoResponse reply ran %d times", finished.Load())
	}
	c.roundTrip(7) // nothing else was written in between
}

// TestHandleError: a handler error closes the connection after the replies
// already queued.
func TestHandleError(t *testing.T) {
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		if hb, ok := req.Msg.(*kmsg.HeartbeatRequest); ok && hb.Group == "fail" {
			return nil, errors.New("close it")
		}
		return nil, nil
	}}
	ts := startServer(t, Config{}, h)
	c := dial(t, ts.addr)
	bad := heartbeat(0)
	bad.Group = "fail"
	c.write(append(frame(c.f, heartbeat(1), 4, 1), frame(c.f, bad, 4, 2)...))
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(4)
	if corr := c.recv(resp); corr != 1 {
		t.Fatalf("corr %d", corr)
	}
	c.expectClosed()
}

func TestConnectionLimits(t *testing.T) {
	t.Run("total", func(t *testing.T) {
		ts := startServer(t, Config{MaxConnections: 2}, nil)
		c1, c2 := dial(t, ts.addr), dial(t, ts.addr)
		c1.roundTrip(1)
		c2.roundTrip(2)
		for range 3 {
			dial(t, ts.addr).expectClosed()
		}
		if st := ts.Stats(); st.RefusedConnections != 3 || st.OpenConnections != 2 {
			t.Fatalf("stats %+v", st)
		}
		if n := strings.Count(ts.logs.String(), "refusing connection"); n != 1 {
			t.Errorf("refusal logged %d times, want 1 (rate limited)", n)
		}
		c1.conn.Close()
		eventually(t, "c1 unregistered", func() bool { return ts.Stats().OpenConnections == 1 })
		dial(t, ts.addr).roundTrip(3)
	})
	t.Run("per ip", func(t *testing.T) {
		ts := startServer(t, Config{MaxConnectionsPerIP: 1}, nil)
		dial(t, ts.addr).roundTrip(1)
		dial(t, ts.addr).expectClosed()
		// Another loopback address is another IP.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
		nc, err := d.Dial("tcp", ts.addr)
		if err != nil {
			t.Skipf("no second loopback address: %v", err)
		}
		t.Cleanup(func() { nc.Close() })
		c := &rawClient{t: t, conn: nc, f: kmsg.NewRequestFormatter()}
		c.roundTrip(2)
	})
}

func TestIdleTimeout(t *testing.T) {
	// Long enough that a scheduling hiccup on a loaded machine does not look
	// like idleness of the connection that talks every idle/10.
	const idle = 400 * time.Millisecond
	release := make(chan struct{})
	releaseOnce := sync.OnceFunc(func() { close(release) })
	defer releaseOnce()
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		if hb, ok := req.Msg.(*kmsg.HeartbeatRequest); ok && hb.Group == "slow" {
			resp := hb.ResponseKind()
			return &Reply{Finish: func(ctx context.Context) kmsg.Response {
				select {
				case <-release:
				case <-ctx.Done():
				}
				return resp
			}}, nil
		}
		return nil, nil
	}}
	ts := startServer(t, Config{IdleTimeout: idle}, h)

	silent := dial(t, ts.addr)
	busy := dial(t, ts.addr) // waits in a Finish longer than the timeout
	slow := heartbeat(0)
	slow.Group = "slow"
	busy.send(slow, 4, 1)
	active := dial(t, ts.addr) // keeps talking

	// Talk on active, paced, for several timeouts. The machine may stall
	// for longer than the timeout (a loaded CI box), so a close is only a
	// failure if the connection really had talked within the timeout.
	start := time.Now()
	tick := time.NewTicker(idle / 10)
	defer tick.Stop()
	lastOK := time.Now()
	for i := 0; time.Since(start) < 3*idle; i++ {
		if err := active.tryRoundTrip(i); err != nil {
			if quiet := time.Since(lastOK); quiet < idle {
				t.Fatalf("active connection closed %v after its last reply (timeout %v): %v", quiet, idle, err)
			}
			break
		}
		lastOK = time.Now()
		<-tick.C
	}
	silent.expectClosed()
	releaseOnce()
	resp := kmsg.NewPtrHeartbeatResponse()
	resp.SetVersion(4)
	if corr := busy.recv(resp); corr != 1 {
		t.Fatalf("busy corr %d", corr)
	}
	if got := ts.Stats().IdleClosedConnections; got < 1 {
		t.Fatalf("IdleClosedConnections = %d", got)
	}
	busy.expectClosed() // idle again now
}

// TestRequestReadTimeout: a frame that does not arrive whole within the read
// timeout closes its connection, whether its client stalls or trickles
// bytes (which keeps it from looking idle); a connection between frames is
// left to the idle timeout, and a frame sent in pieces within the timeout is
// answered.
func TestRequestReadTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := startServer(t, Config{RequestReadTimeout: timeout}, nil)
	idle := dial(t, ts.addr)
	idle.roundTrip(0)

	hb := frame(kmsg.NewRequestFormatter(kmsg.FormatterClientID("a-client-id-that-takes-a-while")), heartbeat(1), 4, 1)

	t.Run("stalled", func(t *testing.T) {
		c := dial(t, ts.addr)
		start := time.Now()
		c.write(hb[:7])
		c.expectClosed()
		if d := time.Since(start); d < timeout {
			t.Fatalf("closed after %v, before the timeout", d)
		}
	})
	t.Run("trickle", func(t *testing.T) {
		c := dial(t, ts.addr)
		start := time.Now()
		tick := time.NewTicker(timeout / 15)
		defer tick.Stop()
		var err error
		for i := 0; err == nil && time.Since(start) < 10*time.Second; i = (i + 1) % len(hb) {
			// One byte at a time, repeating the frame: it never ends
			// within the timeout.
			c.conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, err = c.conn.Write(hb[i : i+1])
			<-tick.C
		}
		if err == nil {
			t.Fatal("trickling connection still open after 10s")
		}
		if d := time.Since(start); d < timeout {
			t.Fatalf("closed after %v, before the timeout", d)
		}
	})
	t.Run("pieces within the timeout", func(t *testing.T) {
		c := dial(t, ts.addr)
		c.write(hb[:10])
		time.Sleep(timeout / 3) // the client pausing mid-frame, not a wait for state
		c.write(hb[10:])
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.SetVersion(4)
		if corr := c.recv(resp); corr != 1 {
			t.Fatalf("corr %d", corr)
		}
	})
	idle.roundTrip(2) // idle far longer than the read timeout, still open
	if got := ts.Stats().RequestReadTimeouts; got != 2 {
		t.Fatalf("RequestReadTimeouts = %d, want 2", got)
	}
	if n := strings.Count(ts.logs.String(), "read timeout"); n != 1 {
		t.Errorf("read timeout logged %d times, want 1 (rate limited)", n)
	}
}
