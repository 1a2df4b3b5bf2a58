package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// manualServer starts a server the test shuts down itself.
func manualServer(t *testing.T, cfg Config, h *fakeHandler) (*Server, net.Listener, chan error) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	h.addr = func() string { return addr }
	s := New(cfg, h)
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	eventually(t, "Serve tracking its listener", func() bool { return s.Addr() != nil })
	return s, ln, served
}

// checkGoroutines waits for the goroutine count to come back to base.
func checkGoroutines(t *testing.T, base int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines, baseline %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestShutdownDrains: Shutdown stops accepting, lets the Finish calls of the
// requests already read complete and writes their replies, then closes;
// Serve returns ErrServerClosed and no goroutine is left.
func TestShutdownDrains(t *testing.T) {
	base := runtime.NumGoroutine()
	release := make(chan struct{})
	var handled, finishing atomic.Int32
	var ctxErr atomic.Value
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok || hb.Group == "0" {
			return nil, nil // answered now
		}
		handled.Add(1)
		n, _ := strconv.Atoi(hb.Group)
		return &Reply{Finish: func(ctx context.Context) kmsg.Response {
			finishing.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
				ctxErr.Store(ctx.Err())
			}
			resp := hb.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ThrottleMillis = int32(n)
			return resp
		}}, nil
	}}
	s, ln, served := manualServer(t, Config{}, h)
	addr := ln.Addr().String()

	busy := dial(t, addr)
	idle := dial(t, addr)
	idle.roundTrip(0)
	for i := 1; i <= 3; i++ {
		busy.send(heartbeat(i), 4, int32(i))
	}
	eventually(t, "requests handled and the first Finish running", func() bool {
		return handled.Load() == 3 && finishing.Load() == 1
	})

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	if s.Addr() != nil {
		t.Fatal("server still lists a listener after Shutdown")
	}
	if err := ln.(*net.TCPListener).SetDeadline(time.Now()); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("listener not closed: %v", err)
	}
	idle.expectClosed() // nothing in flight: closed at once
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned %v with Finish calls running", err)
	default:
	}

	close(release)
	for i := 1; i <= 3; i++ {
		resp := kmsg.NewPtrHeartbeatResponse()
		resp.SetVersion(4)
		if corr := busy.recv(resp); corr != int32(i) || resp.ThrottleMillis != int32(i) {
			t.Fatalf("reply %d: corr %d throttle %d", i, corr, resp.ThrottleMillis)
		}
	}
	busy.expectClosed()
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := ctxErr.Load(); err != nil {
		t.Fatalf("Finish context cancelled during a graceful shutdown: %v", err)
	}
	if err := s.Serve(mustListen(t)); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve after Shutdown: %v", err)
	}
	busy.conn.Close()
	idle.conn.Close()
	checkGoroutines(t, base)
}

func mustListen(t *testing.T) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// TestShutdownForce: at the context deadline, Shutdown cancels the Finish
// context, closes connections and returns the context's error; the
// goroutines still exit.
func TestShutdownForce(t *testing.T) {
	base := runtime.NumGoroutine()
	var handled, finishing atomic.Int32
	cancelled := make(chan error, 1)
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok {
			return nil, nil
		}
		handled.Add(1)
		return &Reply{Finish: func(ctx context.Context) kmsg.Response {
			finishing.Add(1)
			<-ctx.Done()
			select {
			case cancelled <- ctx.Err():
			default:
			}
			return hb.ResponseKind()
		}}, nil
	}}
	s, ln, served := manualServer(t, Config{}, h)
	c := dial(t, ln.Addr().String())
	// More than fit in the queue: the reader is blocked by back-pressure
	// too when Shutdown comes.
	for i := range DefaultMaxInFlight + 10 {
		c.send(heartbeat(i), 4, int32(i))
	}
	// One reply in Finish, MaxInFlight queued, one blocked on the queue.
	eventually(t, "reader blocked by back-pressure", func() bool {
		return finishing.Load() == 1 && handled.Load() == DefaultMaxInFlight+2
	})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Fatalf("Finish ctx: %v", err)
	}
	c.expectClosed()
	if err := <-served; !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Serve returned %v", err)
	}
	c.conn.Close()
	checkGoroutines(t, base)
	// Every handled request had its Finish called, once.
	if f, h := finishing.Load(), handled.Load(); f != h {
		t.Fatalf("Finish ran %d times for %d requests handled", f, h)
	}
}

// TestFinishCalledAfterClientLeaves: when the client goes away, the
// connection's context is cancelled and every queued Finish still runs once.
func TestFinishCalledAfterClientLeaves(t *testing.T) {
	const n = 5
	var handled, calls, cancelled atomic.Int32
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok {
			return nil, nil
		}
		handled.Add(1)
		return &Reply{Finish: func(ctx context.Context) kmsg.Response {
			calls.Add(1)
			<-ctx.Done() // a long poll that only the client leaving ends
			cancelled.Add(1)
			return hb.ResponseKind()
		}}, nil
	}}
	ts := startServer(t, Config{}, h)
	c := dial(t, ts.addr)
	for i := range n {
		c.send(heartbeat(i), 4, int32(i))
	}
	eventually(t, "requests handled", func() bool { return handled.Load() == n })
	c.conn.Close()
	eventually(t, "every Finish called, cancelled", func() bool { return cancelled.Load() == n })
	eventually(t, "connection gone", func() bool { return ts.Stats().OpenConnections == 0 })
	if calls.Load() != n {
		t.Fatalf("Finish called %d times for %d replies", calls.Load(), n)
	}
}

// TestClientLeavesWhileClosingGracefully: after a bad frame the connection
// stops reading and writes the replies already queued; if the client leaves
// meanwhile, a Finish still waiting for it is cancelled and the connection
// goes, instead of waiting for as long as the Finish would.
func TestClientLeavesWhileClosingGracefully(t *testing.T) {
	waiting := make(chan struct{})
	h := &fakeHandler{handle: func(ctx context.Context, req *Request) (*Reply, error) {
		hb, ok := req.Msg.(*kmsg.HeartbeatRequest)
		if !ok {
			return nil, nil
		}
		return &Reply{Finish: func(ctx context.Context) kmsg.Response {
			close(waiting)
			<-ctx.Done() // a JoinGroup waiting out a long rebalance timeout
			return hb.ResponseKind()
		}}, nil
	}}
	ts := startServer(t, Config{}, h)
	c := dial(t, ts.addr)
	c.write(append(frame(c.f, heartbeat(1), 4, 1), sized(header(999, 0, 2))...)) // then an unknown key
	<-waiting
	eventually(t, "bad frame seen", func() bool { return ts.Stats().ProtocolErrors == 1 })
	c.write([]byte("more bytes from a client that has not read the news"))
	c.conn.Close()
	eventually(t, "connection gone", func() bool { return ts.Stats().OpenConnections == 0 })
}
