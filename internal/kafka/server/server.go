package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrServerClosed is returned by Serve after Shutdown began.
var ErrServerClosed = errors.New("kafka server closed")

// Accept back-off after a temporary error, as net/http does.
const (
	minAcceptDelay = 5 * time.Millisecond
	maxAcceptDelay = time.Second
)

// versionRange is one key's supported versions; ok is false for keys not
// served.
type versionRange struct {
	min, max int16
	ok       bool
}

// Server accepts Kafka connections and runs them against a Handler. Create
// it with New; it is safe for concurrent use.
type Server struct {
	cfg      Config
	h        Handler
	log      *slog.Logger
	epoch    time.Time // origin of the monotonic clock behind idle checks
	ranges   []versionRange
	apiKeys  []kmsg.ApiVersionsResponseApiKey
	versions func(key int16) (min, max int16, ok bool)

	// hardCtx is the parent of every connection's context; it is
	// cancelled when Shutdown's context expires.
	hardCtx    context.Context
	hardCancel context.CancelFunc
	// closing is closed when Shutdown starts; it stops accept back-off
	// waits and the idle sweeper.
	closing   chan struct{}
	closeOnce sync.Once
	// draining mirrors mu.draining for the per-request check in readers.
	draining atomic.Bool

	mu struct {
		sync.Mutex
		listeners []net.Listener
		conns     map[*conn]struct{}
		perIP     map[string]int
		draining  bool // no new listener or connection is admitted
		sweeping  bool // the idle sweeper was started
	}

	// connWG counts connections: Add in accept (under mu, before
	// draining can be set), Done when the connection's goroutines exited.
	connWG sync.WaitGroup
	// bgWG counts the idle sweeper.
	bgWG sync.WaitGroup

	// budget bounds the request bytes held across connections.
	budget *budget

	nextID         atomic.Uint64
	stats          counters
	refusedLog     limiter
	oversize       limiter
	readTimeoutLog limiter
	tlsLog         limiter
	unauthLog      limiter
}

// New returns a server that passes requests to h. It reads h.APIVersions
// once: the ranges decide which requests are parsed and are listed in the
// answer to an ApiVersions request at a version above ours.
func New(cfg Config, h Handler) *Server {
	cfg = cfg.withDefaults()
	s := &Server{
		cfg:     cfg,
		h:       h,
		log:     cfg.Logger,
		epoch:   time.Now(),
		closing: make(chan struct{}),
		budget:  newBudget(cfg.MaxQueuedRequestBytes),
	}
	s.hardCtx, s.hardCancel = context.WithCancel(context.Background())
	s.mu.conns = make(map[*conn]struct{})
	s.mu.perIP = make(map[string]int)

	s.apiKeys = h.APIVersions()
	var maxKey int16 = -1
	for _, k := range s.apiKeys {
		maxKey = max(maxKey, k.ApiKey)
	}
	s.ranges = make([]versionRange, int(maxKey)+1)
	for _, k := range s.apiKeys {
		msg := kmsg.RequestForKey(k.ApiKey)
		switch {
		case msg == nil || k.MinVersion < 0 || k.MinVersion > k.MaxVersion:
			s.log.Warn("kafka server: ignoring api key range", "key", k.ApiKey, "min", k.MinVersion, "max", k.MaxVersion)
			continue
		case k.MaxVersion > msg.MaxVersion():
			// ParseRequest clamps; the handler advertises more than
			// can be decoded, and clients will be disconnected.
			s.log.Warn("kafka server: handler advertises versions the codec cannot decode",
				"key", k.ApiKey, "max", k.MaxVersion, "codec_max", msg.MaxVersion())
		}
		s.ranges[k.ApiKey] = versionRange{min: k.MinVersion, max: k.MaxVersion, ok: true}
	}
	s.versions = s.versionRange
	s.stats.requests = make([]atomic.Uint64, len(s.ranges))
	return s
}

func (s *Server) versionRange(key int16) (lo, hi int16, ok bool) {
	if key < 0 || int(key) >= len(s.ranges) {
		return 0, 0, false
	}
	r := s.ranges[key]
	return r.min, r.max, r.ok
}

// now is a monotonic clock in nanoseconds, cheap to store atomically.
func (s *Server) now() int64 { return int64(time.Since(s.epoch)) }

// Addr returns the address of the first listener being served, or nil.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.mu.listeners) == 0 {
		return nil
	}
	return s.mu.listeners[0].Addr()
}

// Serve accepts PLAINTEXT connections on ln: ServeListener with a listener
// named PLAINTEXT, neither TLS nor SASL.
func (s *Server) Serve(ln net.Listener) error {
	return s.ServeListener(ln, Listener{Name: "PLAINTEXT"})
}

// ServeListener accepts connections on ln until Shutdown, secured as l
// says, then returns ErrServerClosed; any other accept error that is not
// temporary is returned as is. Temporary errors (out of file descriptors,
// an aborted handshake) are retried after a back-off that doubles from 5ms
// to 1s. It closes ln when it returns. It may be called for several
// listeners at once, each with its own l. A TLS handshake runs on the
// connection's own goroutine, never in the accept loop.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	if !s.trackListener(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrackListener(ln)

	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.draining.Load() {
				return ErrServerClosed
			}
			if !temporary(err) {
				return fmt.Errorf("kafka server: accept: %w", err)
			}
			delay = min(max(2*delay, minAcceptDelay), maxAcceptDelay)
			s.log.Warn("kafka server: accept failed; retrying", "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.closing:
				t.Stop()
				return ErrServerClosed
			}
			continue
		}
		delay = 0
		s.accept(nc, &l)
	}
}

// temporary reports accept errors worth retrying: running out of descriptors
// or buffers, and connections that died before they were accepted.
func temporary(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS,
		syscall.ENOMEM, syscall.ECONNABORTED, syscall.ECONNRESET, syscall.EINTR, syscall.EAGAIN} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

func (s *Server) trackListener(ln net.Listener) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.draining {
		return false
	}
	s.mu.listeners = append(s.mu.listeners, ln)
	if !s.mu.sweeping && s.cfg.IdleTimeout > 0 {
		s.mu.sweeping = true
		s.bgWG.Add(1)
		go s.sweepIdle()
	}
	return true
}

func (s *Server) untrackListener(ln net.Listener) {
	s.mu.Lock()
	for i, l := range s.mu.listeners {
		if l == ln {
			s.mu.listeners = append(s.mu.listeners[:i], s.mu.listeners[i+1:]...)
			break
		}
	}
	s.mu.Unlock()
	ln.Close()
}

// accept admits nc or refuses it by closing it at once.
func (s *Server) accept(nc net.Conn, l *Listener) {
	s.stats.accepted.Add(1)
	ip := remoteIP(nc.RemoteAddr())

	s.mu.Lock()
	if s.mu.draining {
		s.mu.Unlock()
		nc.Close()
		return
	}
	var limit string
	switch {
	case s.cfg.MaxConnections > 0 && len(s.mu.conns) >= s.cfg.MaxConnections:
		limit = "max connections"
	case s.cfg.MaxConnectionsPerIP > 0 && s.mu.perIP[ip] >= s.cfg.MaxConnectionsPerIP:
		limit = "max connections per ip"
	}
	if limit != "" {
		s.mu.Unlock()
		s.stats.refused.Add(1) // before Close, so a client that saw the close sees the count
		nc.Close()
		if ok, suppressed := s.refusedLog.allow(time.Now()); ok {
			s.log.Warn("kafka server: refusing connection", "limit", limit, "remote", nc.RemoteAddr(),
				"suppressed_since_last", suppressed)
		}
		return
	}
	if l.TLS != nil {
		// No I/O yet: the handshake runs on the connection's goroutine.
		nc = tls.Server(nc, l.TLS)
	}
	c := newConn(s, nc, ip, l)
	s.mu.conns[c] = struct{}{}
	s.mu.perIP[ip]++
	s.connWG.Add(1)
	s.mu.Unlock()

	s.stats.open.Add(1)
	go c.serve()
}

// unregister forgets c; called last by the connection's own goroutine.
func (s *Server) unregister(c *conn) {
	s.mu.Lock()
	delete(s.mu.conns, c)
	if s.mu.perIP[c.ip]--; s.mu.perIP[c.ip] <= 0 {
		delete(s.mu.perIP, c.ip)
	}
	s.mu.Unlock()
	s.stats.open.Add(-1)
}

func remoteIP(a net.Addr) string {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.String()
	case nil:
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}

// Shutdown stops the server gracefully: it closes the listeners, lets every
// connection finish the requests it has already read (their Finish calls run
// and their replies are written), then closes the connections and waits for
// all of the server's goroutines. If ctx ends first, Shutdown cancels the
// context given to handlers, closes every connection at once and returns
// ctx.Err() without waiting further; the connection goroutines then exit as
// soon as their Handle and Finish calls return. Shutdown may be called more
// than once.
func (s *Server) Shutdown(ctx context.Context) error {
	s.closeOnce.Do(func() { close(s.closing) })
	s.mu.Lock()
	s.mu.draining = true
	s.draining.Store(true)
	lns := s.mu.listeners
	s.mu.listeners = nil
	conns := s.connsLocked()
	s.mu.Unlock()

	var err error
	for _, ln := range lns {
		if cerr := ln.Close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) && err == nil {
			err = fmt.Errorf("kafka server: close listener: %w", cerr)
		}
	}
	for _, c := range conns {
		c.stopReading()
	}

	done := make(chan struct{})
	go func() {
		s.connWG.Wait()
		s.bgWG.Wait()
		close(done)
	}()
	select {
	case <-done:
		return err
	case <-ctx.Done():
		s.hardCancel()
		s.mu.Lock()
		conns = s.connsLocked()
		s.mu.Unlock()
		for _, c := range conns {
			c.abort()
		}
		return ctx.Err()
	}
}

// connsLocked returns the open connections. s.mu must be held.
func (s *Server) connsLocked() []*conn {
	out := make([]*conn, 0, len(s.mu.conns))
	for c := range s.mu.conns {
		out = append(out, c)
	}
	return out
}

// sweepIdle closes connections idle for longer than IdleTimeout, checking ten
// times per timeout (at most every 30s), as Kafka's selector does. It stops
// when Shutdown starts.
func (s *Server) sweepIdle() {
	defer s.bgWG.Done()
	every := min(max(s.cfg.IdleTimeout/10, time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	var idle []*conn
	for {
		select {
		case <-s.closing:
			return
		case <-t.C:
		}
		now := s.now()
		s.mu.Lock()
		for c := range s.mu.conns {
			if c.idle(now) {
				idle = append(idle, c)
			}
		}
		s.mu.Unlock()
		for i, c := range idle {
			s.stats.idleClosed.Add(1)
			s.log.Debug("kafka server: closing idle connection", "conn", c.info.ID, "remote", c.info.RemoteAddr)
			c.abort()
			idle[i] = nil
		}
		idle = idle[:0]
	}
}
