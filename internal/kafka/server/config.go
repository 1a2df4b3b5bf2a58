package server

import (
	"log/slog"
	"time"
)

// Defaults applied by New to zero Config fields.
const (
	// DefaultMaxRequestBytes is Kafka's socket.request.max.bytes default.
	DefaultMaxRequestBytes int32 = 100 << 20
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms default.
	DefaultIdleTimeout = 10 * time.Minute
	// DefaultMaxInFlight is the number of replies queued per connection
	// before its reader stops reading.
	DefaultMaxInFlight = 100
	// DefaultMaxQueuedRequestBytes bounds the request bytes held across
	// all connections. Kafka's queued.max.request.bytes defaults to no
	// limit; ours is one maximum-size request's worth, so a broker's
	// request buffers stay within a few hundred MiB whatever its clients
	// do (see the budget type for the exact bound).
	DefaultMaxQueuedRequestBytes int64 = 100 << 20
	// DefaultRequestReadTimeout is the time a request may take to arrive
	// once its first byte has: Kafka clients give up on a request after
	// request.timeout.ms, 30s by default, sending included, so a frame
	// still incomplete by then has no client waiting for its answer.
	DefaultRequestReadTimeout = 30 * time.Second
)

// Config holds the listener's limits. The zero value is usable: New fills
// zero fields with the defaults above.
type Config struct {
	// MaxRequestBytes is the largest request frame accepted (the size
	// prefix excluded). A larger or negative size closes the connection
	// before any of the frame is read. Zero means DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// MaxConnections caps open connections on the server; one more is
	// closed as soon as it is accepted. Zero or negative means no limit
	// (Kafka's max.connections default).
	MaxConnections int
	// MaxConnectionsPerIP caps open connections from one remote IP, with
	// the same refusal. Zero or negative means no limit.
	MaxConnectionsPerIP int
	// IdleTimeout closes a connection that has read and written nothing
	// for this long while no Reply.Finish is running. Zero means
	// DefaultIdleTimeout; negative disables idle closing.
	IdleTimeout time.Duration
	// MaxInFlight is how many replies a connection queues for its writer
	// before the reader blocks (back-pressure on a client that pipelines
	// faster than its replies complete or than it reads them). Zero or
	// negative means DefaultMaxInFlight.
	MaxInFlight int
	// MaxQueuedRequestBytes bounds the bytes of request frames held at once
	// across all connections, from the allocation of a frame's buffer
	// until its request is handled (Kafka's queued.max.request.bytes).
	// When it is spent, readers stop reading their sockets until
	// requests complete. It is raised to MaxRequestBytes if below, so
	// that a request of the maximum size fits. Zero means
	// DefaultMaxQueuedRequestBytes; negative means no limit.
	MaxQueuedRequestBytes int64
	// RequestReadTimeout closes a connection whose request frame is not
	// complete this long after its first byte arrived (time spent waiting
	// for MaxQueuedRequestBytes excluded), so a client that trickles bytes
	// cannot hold its connection, and the frame's share of the budget,
	// forever: bytes arriving keep IdleTimeout from firing. Zero means
	// DefaultRequestReadTimeout; negative disables it.
	RequestReadTimeout time.Duration
	// Logger receives connection events. Nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxConnections < 0 {
		c.MaxConnections = 0
	}
	if c.MaxConnectionsPerIP < 0 {
		c.MaxConnectionsPerIP = 0
	}
	switch {
	case c.IdleTimeout == 0:
		c.IdleTimeout = DefaultIdleTimeout
	case c.IdleTimeout < 0:
		c.IdleTimeout = 0
	}
	switch {
	case c.MaxQueuedRequestBytes == 0:
		c.MaxQueuedRequestBytes = max(DefaultMaxQueuedRequestBytes, int64(c.MaxRequestBytes))
	case c.MaxQueuedRequestBytes > 0:
		c.MaxQueuedRequestBytes = max(c.MaxQueuedRequestBytes, int64(c.MaxRequestBytes))
	}
	switch {
	case c.RequestReadTimeout == 0:
		c.RequestReadTimeout = DefaultRequestReadTimeout
	case c.RequestReadTimeout < 0:
		c.RequestReadTimeout = 0
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
