package server

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/bufpool"
)

const (
	readBufSize  = 16 << 10
	writeBufSize = 16 << 10
	// maxKeptEncodeBuf bounds the encode buffer a connection keeps
	// between responses, so one large fetch does not pin its size.
	maxKeptEncodeBuf = 1 << 20
)

// conn is one client connection. Its reader goroutine (serve) owns it: it
// starts the writer, and when it stops reading it closes replies, waits for
// the writer to drain them, and closes the socket.
type conn struct {
	s    *Server
	nc   net.Conn
	ip   string
	info ConnInfo

	// ctx is given to Handle and Finish; it is cancelled by abort, which
	// also runs when the server force-closes.
	ctx       context.Context
	cancel    context.CancelFunc
	abortOnce sync.Once

	// replies carries replies from the reader to the writer in request
	// order. Only the reader sends and closes.
	replies chan queued

	// lastActive is when bytes last moved or a Finish returned (Server.now
	// clock); inFinish is set while Finish runs. Both feed idle().
	lastActive atomic.Int64
	inFinish   atomic.Bool
}

// queued is a reply waiting for the writer, with what it needs from the
// request header.
type queued struct {
	corr    int32
	key     int16
	version int16 // the response version: the request's version
	reply   Reply
}

func newConn(s *Server, nc net.Conn, ip string) *conn {
	c := &conn{
		s:  s,
		nc: nc,
		ip: ip,
		info: ConnInfo{
			ID:         s.nextID.Add(1),
			RemoteAddr: nc.RemoteAddr(),
			LocalAddr:  nc.LocalAddr(),
		},
		replies: make(chan queued, s.cfg.MaxInFlight),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	c.lastActive.Store(s.now())
	return c
}

// serve runs the connection on its own goroutine until the reader stops and
// the writer has drained every queued reply.
func (c *conn) serve() {
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.readLoop()
	close(c.replies)
	<-writerDone
	c.abort()
	c.s.unregister(c)
	c.s.connWG.Done()
}

// abort closes the socket and cancels the connection's context, which
// unblocks both goroutines. Safe to call more than once and from any
// goroutine.
func (c *conn) abort() {
	c.abortOnce.Do(func() {
		c.cancel()
		c.nc.Close()
	})
}

// stopReading makes a blocked or future read fail at once, so the reader
// stops at the next frame boundary during Shutdown while the writer goes on.
func (c *conn) stopReading() {
	c.nc.SetReadDeadline(time.Now())
}

func (c *conn) touch() { c.lastActive.Store(c.s.now()) }

func (c *conn) idle(now int64) bool {
	return !c.inFinish.Load() && now-c.lastActive.Load() >= int64(c.s.cfg.IdleTimeout)
}

func (c *conn) logAttrs(extra ...any) []any {
	return append([]any{"conn", c.info.ID, "remote", c.info.RemoteAddr}, extra...)
}

// logPanic records a recovered panic; the caller closes the connection.
func (c *conn) logPanic(where string, v any) {
	c.s.stats.panics.Add(1)
	c.s.log.Error("kafka server: panic in "+where+"; closing connection",
		c.logAttrs("panic", fmt.Sprint(v), "stack", string(debug.Stack()))...)
}

// readLoop reads, parses and handles requests in order until the client
// goes away, a frame is bad, the handler fails or panics, or the server
// drains. It returns without closing the socket: the writer still has
// replies to write.
func (c *conn) readLoop() {
	defer func() {
		if v := recover(); v != nil {
			c.logPanic("Handle", v)
		}
	}()
	s := c.s
	br := bufio.NewReaderSize(activityReader{c}, readBufSize)
	var sizeBuf [4]byte
	for !s.draining.Load() {
		frame, err := readFrame(br, &sizeBuf, s.cfg.MaxRequestBytes, true)
		if err != nil {
			c.readFailed(err)
			return
		}
		req, err := ParseRequest(frame, s.versions)
		if err != nil {
			if q, ok := c.apiVersionsFallback(req, err); ok {
				s.stats.request(apiVersionsKey)
				c.replies <- q
				continue
			}
			s.stats.protocol.Add(1)
			s.log.Debug("kafka server: bad request; closing connection", c.logAttrs("err", err)...)
			return
		}
		req.Conn = c.info
		s.stats.request(req.Key)

		reply, err := s.h.Handle(c.ctx, req)
		if req.Key == produceKey {
			bufpool.Put(frame) // dead once Handle returns (see Handler)
		}
		if err != nil {
			s.log.Debug("kafka server: handler closed connection", c.logAttrs("key", req.Key, "err", err)...)
			return
		}
		if reply.Response == nil && reply.Finish == nil && !reply.NoResponse {
			s.log.Error("kafka server: handler returned an empty reply; closing connection",
				c.logAttrs("key", req.Key, "version", req.Version)...)
			return
		}
		// Blocks when MaxInFlight replies are queued: back-pressure.
		// The writer always drains, even after a failure, so this
		// cannot block forever.
		c.replies <- queued{corr: req.CorrelationID, key: req.Key, version: req.Version, reply: reply}
	}
}

// apiVersionsFallback turns an ApiVersions request at a version above ours
// into an UNSUPPORTED_VERSION answer in the v0 layout; the connection stays
// open so the client can retry at a version we list (a reset here broke
// clients of Azure Event Hubs).
func (c *conn) apiVersionsFallback(req *Request, err error) (queued, bool) {
	var ve *VersionError
	if req == nil || req.Key != apiVersionsKey || !errors.As(err, &ve) || ve.Version <= ve.Max {
		return queued{}, false
	}
	return queued{
		corr:    req.CorrelationID,
		key:     apiVersionsKey,
		version: 0,
		reply:   Reply{Response: unsupportedApiVersions(c.s.apiKeys)},
	}, true
}

// readFailed handles the end of reading. A bad size prefix or a read cut by
// Shutdown ends the connection gracefully, writing what is queued; anything
// else means the client is gone or the socket broke, so the connection is
// aborted at once, cancelling the context of pending Finish calls (Kafka
// clients never half-close).
func (c *conn) readFailed(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, ErrFrameSize):
		c.s.stats.protocol.Add(1)
		if ok, suppressed := c.s.oversize.allow(time.Now()); ok {
			c.s.log.Warn("kafka server: request size out of range; closing connection",
				c.logAttrs("err", err, "suppressed_since_last", suppressed)...)
		}
		return
	case errors.As(err, &ne) && ne.Timeout() && c.s.draining.Load():
		return // Shutdown interrupted the read.
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
		// The client closed, or we did.
	default:
		c.s.log.Debug("kafka server: read failed; closing connection", c.logAttrs("err", err)...)
	}
	c.abort()
}

// writeLoop writes replies in request order until the reader closes
// replies. After a write failure or a broken reply it stops writing but keeps
// draining, calling every remaining Finish with the (then cancelled) context,
// so that Finish runs exactly once per reply and the reader never blocks.
func (c *conn) writeLoop() {
	bw := bufio.NewWriterSize(activityWriter{c}, writeBufSize)
	var buf []byte
	var splice splicer
	broken := false
	fail := func(err error, msg string, level slog.Level) {
		if !broken {
			broken = true
			c.s.log.Log(context.Background(), level, "kafka server: "+msg+"; closing connection", c.logAttrs("err", err)...)
			c.abort()
		}
	}
	flush := func() {
		if !broken && bw.Buffered() > 0 {
			if err := bw.Flush(); err != nil {
				fail(err, "write failed", slog.LevelDebug)
			}
		}
	}

	for {
		var q queued
		var ok bool
		select {
		case q, ok = <-c.replies:
		default:
			// Nothing else is ready: send what is buffered, so that
			// pipelined replies share a syscall but none waits.
			flush()
			q, ok = <-c.replies
		}
		if !ok {
			flush()
			return
		}

		resp := q.reply.Response
		if q.reply.Finish != nil {
			flush() // earlier replies must not wait behind a slow Finish
			var panicked bool
			if resp, panicked = c.finish(q.reply.Finish); panicked {
				fail(errors.New("panic in Finish"), "finish failed", slog.LevelDebug)
			}
		}
		if broken || q.reply.NoResponse {
			continue
		}
		switch {
		case resp == nil && c.ctx.Err() != nil:
			fail(c.ctx.Err(), "finish returned no response", slog.LevelDebug)
			continue
		case resp == nil:
			fail(fmt.Errorf("key %d", q.key), "handler returned a nil response", slog.LevelError)
			continue
		case resp.Key() != q.key:
			fail(fmt.Errorf("response key %d for request key %d", resp.Key(), q.key), "handler returned a mismatched response", slog.LevelError)
			continue
		}
		resp.SetVersion(q.version)
		if bufs := splice.encode(q.corr, resp); bufs != nil {
			// A fetch with large records: they go to the socket from
			// the buffers the log read them into, in one writev.
			flush()
			if !broken {
				if err := c.writeBuffers(bufs); err != nil {
					fail(err, "write failed", slog.LevelDebug)
				}
			}
			splice.release()
			continue
		}
		if h := sizeHint(resp); h > cap(buf) {
			// Encode a large response into a buffer of its size at once:
			// growing by doubling copied a fetch's records about twice.
			buf = make([]byte, 0, h)
		}
		buf = appendResponse(buf[:0], q.corr, resp)
		if _, err := bw.Write(buf); err != nil {
			fail(err, "write failed", slog.LevelDebug)
			continue
		}
		if cap(buf) > maxKeptEncodeBuf {
			buf = nil
		}
	}
}

// finish runs one Finish with the connection's context, recovering a panic.
func (c *conn) finish(f func(context.Context) kmsg.Response) (resp kmsg.Response, panicked bool) {
	c.inFinish.Store(true)
	defer func() {
		c.inFinish.Store(false)
		c.touch()
		if v := recover(); v != nil {
			c.logPanic("Finish", v)
			resp, panicked = nil, true
		}
	}()
	return f(c.ctx), false
}

// activityReader counts bytes read and marks the connection active.
type activityReader struct{ c *conn }

func (r activityReader) Read(p []byte) (int, error) {
	n, err := r.c.nc.Read(p)
	if n > 0 {
		r.c.s.stats.bytesIn.Add(uint64(n))
		r.c.touch()
	}
	return n, err
}

// writeBuffers writes bufs with one vectored write where the connection
// supports it, counting the bytes and marking the connection active.
func (c *conn) writeBuffers(bufs net.Buffers) error {
	n, err := bufs.WriteTo(c.nc)
	if n > 0 {
		c.s.stats.bytesOut.Add(uint64(n))
		c.touch()
	}
	return err
}

// activityWriter counts bytes written and marks the connection active.
type activityWriter struct{ c *conn }

func (w activityWriter) Write(p []byte) (int, error) {
	n, err := w.c.nc.Write(p)
	if n > 0 {
		w.c.s.stats.bytesOut.Add(uint64(n))
		w.c.touch()
	}
	return n, err
}
