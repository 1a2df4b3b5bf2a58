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
	s       *Server
	nc      net.Conn // a *tls.Conn on TLS listeners
	ip      string
	info    ConnInfo
	l       *Listener
	session *Session

	// ctx is given to Handle and Finish; it is cancelled by abort, which
	// also runs when the server force-closes.
	ctx       context.Context
	cancel    context.CancelFunc
	abortOnce sync.Once

	// replies carries replies from the reader to the writer in request
	// order. Only the reader sends and closes.
	replies chan queued

	// lastActive is when bytes last moved or a Finish returned (Server.now
	// clock); inFinish is set while Finish runs, inBudgetWait while the
	// reader waits for request budget. They feed idle().
	lastActive   atomic.Int64
	inFinish     atomic.Bool
	inBudgetWait atomic.Bool

	// charge is the request budget held by the frame being read or
	// handled; the reader gives it back once Handle returns.
	charge charge
	// readStop is closed when reading must stop (Shutdown, abort), so a
	// reader waiting for budget gives up.
	readStop     chan struct{}
	readStopOnce sync.Once
	// dl serialises changes of the socket's read deadline between the
	// reader (a frame's deadline) and Shutdown (a deadline in the past,
	// which must win).
	dl struct {
		sync.Mutex
		stopped bool
	}
	// frameDeadline is when the frame being read must be complete (zero
	// between frames, or with no RequestReadTimeout); deadlineSet says
	// the socket has it. The reader goroutine alone uses them.
	frameDeadline time.Time
	deadlineSet   bool
}

// queued is a reply waiting for the writer, with what it needs from the
// request header.
type queued struct {
	corr    int32
	key     int16
	version int16 // the response version: the request's version
	raw     bool  // a bare SASL token answer: size prefix and bytes only
	reply   Reply
}

func newConn(s *Server, nc net.Conn, ip string, l *Listener) *conn {
	session := newSession(l)
	c := &conn{
		s:       s,
		nc:      nc,
		ip:      ip,
		l:       l,
		session: session,
		info: ConnInfo{
			ID:         s.nextID.Add(1),
			RemoteAddr: nc.RemoteAddr(),
			LocalAddr:  nc.LocalAddr(),
			RemoteIP:   ip,
			Listener:   l.Name,
			Session:    session,
		},
		replies:  make(chan queued, s.cfg.MaxInFlight),
		readStop: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(s.hardCtx)
	c.lastActive.Store(s.now())
	return c
}

// serve runs the connection on its own goroutine until the reader stops and
// the writer has drained every queued reply.
func (c *conn) serve() {
	if !c.handshake() {
		c.abort()
		c.s.unregister(c)
		c.s.connWG.Done()
		return
	}
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
		c.setReadDeadline(time.Now()) // ends watchWhileDraining
	}()
	c.readLoop()
	close(c.replies)
	c.watchWhileDraining()
	<-writerDone
	c.abort()
	c.s.unregister(c)
	c.s.connWG.Done()
}

// watchWhileDraining reads and discards what the client still sends while
// the writer drains the replies of a connection that stopped reading, so
// that a client leaving meanwhile is noticed: abort then cancels the Finish
// calls still waiting for it. Without this, a JoinGroup queued before a bad
// frame waited out its rebalance timeout (a client may ask for weeks) with
// nobody at the other end, holding the connection. It returns when the
// writer is done (which sets a read deadline in the past), at Shutdown's
// deadline, or when the socket fails.
func (c *conn) watchWhileDraining() {
	var discard [512]byte
	r := activityReader{c}
	for {
		_, err := r.Read(discard[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			c.abort() // EOF, reset, or already closed
		}
		return
	}
}

// abort closes the socket and cancels the connection's context, which
// unblocks both goroutines. Safe to call more than once and from any
// goroutine.
func (c *conn) abort() {
	c.abortOnce.Do(func() {
		c.cancel()
		c.nc.Close()
		c.readStopOnce.Do(func() { close(c.readStop) })
	})
}

// stopReading makes a blocked or future read fail at once, and a wait for
// request budget end, so the reader stops at the next frame boundary during
// Shutdown while the writer goes on.
func (c *conn) stopReading() {
	c.dl.Lock()
	c.dl.stopped = true
	c.nc.SetReadDeadline(time.Now())
	c.dl.Unlock()
	c.readStopOnce.Do(func() { close(c.readStop) })
}

// setReadDeadline sets the socket's read deadline unless stopReading was
// called, whose deadline in the past then stays.
func (c *conn) setReadDeadline(t time.Time) {
	c.dl.Lock()
	defer c.dl.Unlock()
	if !c.dl.stopped {
		c.nc.SetReadDeadline(t)
	}
}

func (c *conn) touch() { c.lastActive.Store(c.s.now()) }

func (c *conn) idle(now int64) bool {
	return !c.inFinish.Load() && !c.inBudgetWait.Load() && now-c.lastActive.Load() >= int64(c.s.cfg.IdleTimeout)
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
	s := c.s
	defer func() {
		s.budget.release(&c.charge)
		if v := recover(); v != nil {
			c.logPanic("Handle", v)
		}
	}()
	br := bufio.NewReaderSize(activityReader{c}, readBufSize)
	var sizeBuf [4]byte
	for !s.draining.Load() {
		frame, err := c.readRequest(br, &sizeBuf)
		if err != nil {
			c.readFailed(err)
			return
		}
		if c.session.rawNext {
			// After SaslHandshake v0 the client sends its token bare.
			c.session.rawNext = false
			if !c.handleRawToken(frame) {
				return
			}
			continue
		}
		req, err := ParseRequest(frame, s.versions)
		if err != nil {
			frame = nil
			s.budget.release(&c.charge)
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
		if !allowedBeforeAuth(req.Key) && (!c.session.IsAuthenticated() || c.session.expired(time.Now())) {
			// Kafka closes such a connection: nothing is served, not
			// even an error naming a topic, before authentication.
			s.budget.release(&c.charge)
			s.stats.unauthenticated.Add(1)
			if ok, suppressed := s.unauthLog.allow(time.Now()); ok {
				s.log.Info("kafka server: request before SASL authentication, or after its session expired; closing connection",
					c.logAttrs("listener", c.l.Name, "key", req.Key, "suppressed_since_last", suppressed)...)
			}
			return
		}

		reply, err := s.h.Handle(c.ctx, req)
		// The server is done with the frame: a produce's records are
		// appended, and handlers copy the bytes they keep (Request.Msg).
		// Holding the budget until the reply is written instead would let
		// replies that wait for other requests (a fetch long poll waiting
		// for a produce, a JoinGroup for the other members) hold the
		// budget those requests need.
		s.budget.release(&c.charge)
		if req.Key == produceKey {
			// Handlers write or copy a produce's bytes before
			// returning (see Handler), so the frame can hold the
			// next one; race builds poison it here to prove that.
			bufpool.Put(frame)
		}
		q := queued{corr: req.CorrelationID, key: req.Key, version: req.Version, reply: reply}
		// Nothing of the frame stays reachable from this goroutine
		// while it waits below: it is in bufpool or garbage.
		frame, req = nil, nil
		if err != nil {
			releaseResponse(reply.Response) // ignored with the error
			s.log.Debug("kafka server: handler closed connection", c.logAttrs("key", q.key, "err", err)...)
			return
		}
		if reply.Response == nil && reply.Finish == nil && !reply.NoResponse {
			s.log.Error("kafka server: handler returned an empty reply; closing connection",
				c.logAttrs("key", q.key, "version", q.version)...)
			return
		}
		// Blocks when MaxInFlight replies are queued: back-pressure.
		// The writer always drains, even after a failure, so this
		// cannot block forever.
		c.replies <- q
		if q.reply.CloseAfter {
			return
		}
	}
}

// handleRawToken hands a bare SASL token (the frame after SaslHandshake v0)
// to the handler as a SaslAuthenticate v0 request and queues its answer,
// to be written bare. It reports whether reading goes on.
func (c *conn) handleRawToken(frame []byte) bool {
	s := c.s
	msg := kmsg.NewPtrSASLAuthenticateRequest()
	msg.SASLAuthBytes = append([]byte(nil), frame...)
	s.budget.release(&c.charge)
	req := &Request{Key: saslAuthenticateKey, Version: 0, Msg: msg, Conn: c.info, Raw: true}
	s.stats.request(req.Key)
	reply, err := s.h.Handle(c.ctx, req)
	if err != nil {
		s.log.Debug("kafka server: handler closed connection", c.logAttrs("key", req.Key, "err", err)...)
		return false
	}
	c.replies <- queued{key: saslAuthenticateKey, raw: true, reply: reply}
	return !reply.CloseAfter
}

// readRequest reads one request frame. Waiting for a frame's first byte is
// idleness, left to IdleTimeout; from that byte on, the frame must be
// complete within RequestReadTimeout. The frame's buffer is charged to the
// server's request budget as it grows.
func (c *conn) readRequest(br *bufio.Reader, sizeBuf *[4]byte) ([]byte, error) {
	if _, err := br.Peek(1); err != nil {
		return nil, err
	}
	if t := c.s.cfg.RequestReadTimeout; t > 0 {
		// activityReader puts it on the socket if the frame needs
		// another read: a frame already buffered costs no syscall.
		c.frameDeadline = time.Now().Add(t)
	}
	defer func() {
		if c.deadlineSet {
			c.setReadDeadline(time.Time{})
			c.deadlineSet = false
		}
		c.frameDeadline = time.Time{}
	}()
	return readFrame(br, sizeBuf, c.s.cfg.MaxRequestBytes, c.reserve, true)
}

// reserve charges n more bytes of the current frame to the request budget,
// waiting while it is spent. The wait does not count against the frame's
// read timeout: the client was not slow, the server was full.
func (c *conn) reserve(n int) error {
	c.inBudgetWait.Store(true)
	waited, err := c.s.budget.acquire(&c.charge, int64(n), c.readStop)
	c.inBudgetWait.Store(false)
	if waited > 0 {
		c.touch()
		if !c.frameDeadline.IsZero() {
			c.frameDeadline = c.frameDeadline.Add(waited)
			if c.deadlineSet {
				c.setReadDeadline(c.frameDeadline)
			}
		}
	}
	return err
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
// else means the client is gone, too slow to send a frame
// (RequestReadTimeout) or the socket broke, so the connection is aborted at
// once, cancelling the context of pending Finish calls (Kafka clients never
// half-close).
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
	case (errors.Is(err, errReadStopped) || errors.As(err, &ne) && ne.Timeout()) && c.s.draining.Load():
		return // Shutdown interrupted the read.
	case errors.Is(err, errReadStopped):
		// The connection was aborted while waiting for budget.
	case errors.As(err, &ne) && ne.Timeout():
		c.s.stats.readTimeouts.Add(1)
		if ok, suppressed := c.s.readTimeoutLog.allow(time.Now()); ok {
			c.s.log.Warn("kafka server: request not received within the read timeout; closing connection",
				c.logAttrs("timeout", c.s.cfg.RequestReadTimeout, "suppressed_since_last", suppressed)...)
		}
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
			releaseResponse(resp)
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
			releaseResponse(resp)
			fail(fmt.Errorf("response key %d for request key %d", resp.Key(), q.key), "handler returned a mismatched response", slog.LevelError)
			continue
		}
		resp.SetVersion(q.version)
		if q.raw {
			buf = appendRawToken(buf[:0], resp)
			if _, err := bw.Write(buf); err != nil {
				fail(err, "write failed", slog.LevelDebug)
			}
			continue
		}
		if bufs := splice.encode(q.corr, resp); bufs != nil {
			// A fetch with large records: they go to the socket from
			// the buffers the log read them into, in one writev, or
			// from their files (sendfile).
			flush()
			if !broken {
				if err := splice.write(c); err != nil {
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
	if c := r.c; !c.frameDeadline.IsZero() && !c.deadlineSet {
		c.setReadDeadline(c.frameDeadline)
		c.deadlineSet = true
	}
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
