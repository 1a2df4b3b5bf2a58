package server

import (
	"sync"
	"sync/atomic"
	"time"
)

// Stats is a snapshot of the server's counters, for metrics. Counters only
// grow, except OpenConnections.
type Stats struct {
	// OpenConnections is the number of connections being served now.
	OpenConnections int64
	// AcceptedConnections counts every accepted socket, refused or not.
	AcceptedConnections uint64
	// RefusedConnections counts sockets closed at accept because of
	// MaxConnections or MaxConnectionsPerIP.
	RefusedConnections uint64
	// IdleClosedConnections counts connections closed by IdleTimeout.
	IdleClosedConnections uint64
	// ProtocolErrors counts connections closed for a bad frame: size out
	// of range, malformed header or body, unknown key or version.
	ProtocolErrors uint64
	// Panics counts panics recovered in Handle or Finish.
	Panics uint64
	// RequestReadTimeouts counts connections closed because a request
	// frame was not complete within RequestReadTimeout.
	RequestReadTimeouts uint64
	// TLSHandshakeFailures counts connections closed because their TLS
	// handshake failed (no TLS, an unknown CA, an expired certificate).
	TLSHandshakeFailures uint64
	// Unauthenticated counts connections closed for a request other than
	// ApiVersions and SASL before SASL authentication.
	Unauthenticated uint64
	// BytesIn and BytesOut count bytes read from and written to sockets.
	BytesIn, BytesOut uint64
	// QueuedRequestBytes is the request bytes held now across all
	// connections (frames being read or handled), and
	// QueuedRequestBytesLimit its bound, MaxQueuedRequestBytes (0: none).
	// The sum may pass the limit by one frame (see MaxQueuedRequestBytes).
	QueuedRequestBytes, QueuedRequestBytesLimit int64
	// RequestBudgetWaiting is the number of readers waiting for request
	// budget now; RequestBudgetWaits counts every such wait.
	RequestBudgetWaiting int64
	RequestBudgetWaits   uint64
	// Requests counts parsed requests by API key (keys never seen are
	// absent), including ApiVersions requests answered with
	// UNSUPPORTED_VERSION.
	Requests map[int16]uint64
}

// counters are the live values behind Stats.
type counters struct {
	open            atomic.Int64
	accepted        atomic.Uint64
	refused         atomic.Uint64
	idleClosed      atomic.Uint64
	protocol        atomic.Uint64
	panics          atomic.Uint64
	readTimeouts    atomic.Uint64
	tlsFailed       atomic.Uint64
	unauthenticated atomic.Uint64
	bytesIn         atomic.Uint64
	bytesOut        atomic.Uint64
	requests        []atomic.Uint64 // indexed by api key; sized by New
}

func (c *counters) request(key int16) {
	if key >= 0 && int(key) < len(c.requests) {
		c.requests[key].Add(1)
	}
}

// Stats returns the current counters.
func (s *Server) Stats() Stats {
	st := Stats{
		OpenConnections:       s.stats.open.Load(),
		AcceptedConnections:   s.stats.accepted.Load(),
		RefusedConnections:    s.stats.refused.Load(),
		IdleClosedConnections: s.stats.idleClosed.Load(),
		ProtocolErrors:        s.stats.protocol.Load(),
		Panics:                s.stats.panics.Load(),
		RequestReadTimeouts:   s.stats.readTimeouts.Load(),
		TLSHandshakeFailures:  s.stats.tlsFailed.Load(),
		Unauthenticated:       s.stats.unauthenticated.Load(),
		BytesIn:               s.stats.bytesIn.Load(),
		BytesOut:              s.stats.bytesOut.Load(),
		QueuedRequestBytes:    s.budget.used.Load(),
		RequestBudgetWaiting:  s.budget.waiting.Load(),
		RequestBudgetWaits:    s.budget.waits.Load(),
		Requests:              make(map[int16]uint64),
	}
	if s.budget.limit > 0 {
		st.QueuedRequestBytesLimit = s.budget.limit
	}
	for k := range s.stats.requests {
		if n := s.stats.requests[k].Load(); n > 0 {
			st.Requests[int16(k)] = n
		}
	}
	return st
}

// limiter lets one log line through per interval and counts the rest, so
// that a client hammering a limit cannot flood the log.
type limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

const logInterval = 10 * time.Second

// allow reports whether to log now, and how many lines were suppressed
// since the last one.
func (l *limiter) allow(now time.Time) (bool, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < logInterval {
		l.suppressed++
		return false, 0
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	return true, n
}
