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
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = DefaultMaxInFlight
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
