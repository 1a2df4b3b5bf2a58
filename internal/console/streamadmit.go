package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Admission of live streams. A console serves at most MaxStreams at once,
// and one client (a remote IP address) at most MaxStreamsPerClient. Idle
// streams must not lock the others out (issue 23: 64 idle SSE clients
// made every Live tab get 503), so:
//
//   - a stream that has sent nothing for StreamIdleTimeout ends (the
//     writer returns errStreamIdle; a WebSocket closes with 1001 "going
//     away", and browsers' EventSource and the Live tab reconnect);
//   - when a limit is reached, a new stream takes the place of the stream
//     idle longest among those it competes with (the same client's, for
//     the per-client limit; all, for MaxStreams), if that one has been
//     idle at least StreamEvictIdle; otherwise it is refused (429 for the
//     client's limit, 503 for the console's).
//
// An evicted stream leaves the accounting at once and is cancelled; its
// goroutines end on their own and give back the WaitGroup count that
// Close waits for.

// errStreamIdle ends a stream that had nothing to send for too long.
var errStreamIdle = errors.New("stream idle")

// clientOf is the host of the request's remote address.
func clientOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// idleSince is when s last sent something.
func (s *stream) idleSince() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.lastSent
}

// acquireStream admits s, evicting an idle stream if a limit is reached,
// unless the console is closing; Close waits for admitted streams to end.
func (c *Console) acquireStream(s *stream) error {
	c.life.Lock()
	defer c.life.Unlock()
	if c.life.closing {
		return context.Canceled
	}
	if c.life.admitted == nil {
		c.life.admitted = map[*stream]struct{}{}
	}
	mine := 0
	for o := range c.life.admitted {
		if o.client == s.client {
			mine++
		}
	}
	switch {
	case mine >= c.cfg.MaxStreamsPerClient:
		if !c.evictLocked(func(o *stream) bool { return o.client == s.client }) {
			return &apiError{Status: http.StatusTooManyRequests, Code: "too_many_streams",
				Msg: fmt.Sprintf("%d streams are open from %s, the most one client may have; close one and retry", mine, s.client)}
		}
	case len(c.life.admitted) >= c.cfg.MaxStreams:
		if !c.evictLocked(func(*stream) bool { return true }) {
			return &apiError{Status: http.StatusServiceUnavailable, Code: "too_many_streams",
				Msg: fmt.Sprintf("%d streams are open, the most this console serves; close one and retry", c.cfg.MaxStreams)}
		}
	}
	c.life.admitted[s] = struct{}{}
	c.wg.Add(1)
	return nil
}

// evictLocked ends the admitted stream idle longest among those that
// pass among, if it has been idle StreamEvictIdle; life must be held.
func (c *Console) evictLocked(among func(*stream) bool) bool {
	var victim *stream
	var since time.Time
	for o := range c.life.admitted {
		if !among(o) {
			continue
		}
		if t := o.idleSince(); victim == nil || t.Before(since) {
			victim, since = o, t
		}
	}
	if victim == nil || time.Since(since) < c.cfg.StreamEvictIdle {
		return false
	}
	delete(c.life.admitted, victim)
	c.metrics.evicted.Inc()
	victim.evict()
	return true
}

func (c *Console) releaseStream(s *stream) {
	c.life.Lock()
	delete(c.life.admitted, s)
	c.life.Unlock()
	c.wg.Done()
}
