package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"sync/atomic"
	"time"
)

// API keys the server treats specially on SASL listeners.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

// DefaultHandshakeTimeout bounds a TLS handshake when the listener does not
// say: a client that opens a TLS port and sends nothing holds no goroutine
// for longer.
const DefaultHandshakeTimeout = 10 * time.Second

// Listener describes how connections accepted on one socket are secured
// (Kafka's listener.security.protocol.map): TLS, SASL, both or neither.
type Listener struct {
	// Name is the listener's name (PLAINTEXT, SASL_SSL, INTERNAL, ...),
	// given to handlers in ConnInfo.Listener.
	Name string
	// TLS, when set, makes every connection a TLS server connection
	// (SSL, SASL_SSL). Its GetConfigForClient may swap certificates.
	TLS *tls.Config
	// SASL makes clients authenticate with SaslHandshake and
	// SaslAuthenticate before any other request but ApiVersions
	// (SASL_PLAINTEXT, SASL_SSL). The handler runs the exchange and calls
	// Session.Authenticated; any other request before that closes the
	// connection.
	SASL bool
	// CertPrincipal maps a verified client certificate to a principal
	// ("User:CN=alice,O=acme" by default rules); nil leaves connections
	// with a certificate as ANONYMOUS. Only used without SASL.
	CertPrincipal func(*x509.Certificate) (string, error)
	// HandshakeTimeout bounds the TLS handshake; zero means
	// DefaultHandshakeTimeout.
	HandshakeTimeout time.Duration
}

// Anonymous is the principal of a connection that proved nothing: a
// PLAINTEXT one, or an SSL one without a client certificate, as in Kafka.
const Anonymous = "User:ANONYMOUS"

// Session is a connection's security state: its listener, and who the
// client proved to be. The server creates one per connection and hands it
// to the handler in every Request (ConnInfo.Session).
//
// Concurrency: Principal may be read from any goroutine. The SASL fields
// (SetExchange, Exchange, ExpectRawToken) are used by Handle alone, on the
// connection's reader goroutine.
type Session struct {
	listener string
	tls      bool
	sasl     bool

	principal     atomic.Pointer[string]
	authenticated atomic.Bool
	byToken       atomic.Bool  // the principal proved a delegation token (KIP-48)
	expiry        atomic.Int64 // unix nanoseconds the SASL session ends; 0: never (KIP-368)

	exchange any
	rawNext  bool // the next frame is a bare SASL token (SaslHandshake v0)
}

func newSession(l *Listener) *Session {
	s := &Session{listener: l.Name, tls: l.TLS != nil, sasl: l.SASL}
	p := Anonymous
	s.principal.Store(&p)
	s.authenticated.Store(!l.SASL)
	return s
}

// Listener is the name of the listener the connection arrived on.
func (s *Session) Listener() string { return s.listener }

// TLS reports whether the connection is encrypted.
func (s *Session) TLS() bool { return s.tls }

// SASL reports whether the listener requires SASL authentication.
func (s *Session) SASL() bool { return s.sasl }

// Principal is who the client is: "User:<name>" from SASL or its
// certificate, else Anonymous.
func (s *Session) Principal() string { return *s.principal.Load() }

// IsAuthenticated reports whether requests other than ApiVersions,
// SaslHandshake and SaslAuthenticate may be served.
func (s *Session) IsAuthenticated() bool { return s.authenticated.Load() }

// Authenticated records a successful SASL exchange: principal serves every
// later request of the connection. Kafka refuses a second exchange on one
// connection without KIP-368 re-authentication, and so does the handler.
func (s *Session) Authenticated(principal string) {
	s.principal.Store(&principal)
	s.authenticated.Store(true)
	s.byToken.Store(false)
	s.exchange = nil
}

// AuthenticatedByToken is Authenticated for an exchange that proved a
// delegation token of principal (KIP-48): such a connection may not
// create, renew or expire tokens.
func (s *Session) AuthenticatedByToken(principal string) {
	s.Authenticated(principal)
	s.byToken.Store(true)
}

// ByToken reports whether the connection authenticated with a delegation
// token.
func (s *Session) ByToken() bool { return s.byToken.Load() }

// SetExpiry ends the SASL session at t (KIP-368's
// connections.max.reauth.ms): from then on, a request other than
// SaslHandshake and SaslAuthenticate closes the connection, unless the
// client re-authenticated before (a later SetExpiry). Zero t: never.
func (s *Session) SetExpiry(t time.Time) {
	if t.IsZero() {
		s.expiry.Store(0)
		return
	}
	s.expiry.Store(t.UnixNano())
}

// expired reports whether the SASL session ended before now.
func (s *Session) expired(now time.Time) bool {
	e := s.expiry.Load()
	return e != 0 && now.UnixNano() > e
}

// SetExchange keeps the handler's SASL exchange (mechanism state) between
// SaslHandshake and SaslAuthenticate requests.
func (s *Session) SetExchange(x any) { s.exchange = x }

// Exchange is what SetExchange kept, or nil.
func (s *Session) Exchange() any { return s.exchange }

// ExpectRawToken tells the server that the next frame is a bare SASL token
// with no Kafka header (after SaslHandshake v0, the flow of old clients).
// The server hands it to Handle as a SaslAuthenticate v0 request with
// Request.Raw set and writes the answer's bytes back bare (size prefix
// only); an empty answer writes nothing.
func (s *Session) ExpectRawToken() { s.rawNext = true }

// handshake runs the TLS handshake of c if its listener has TLS, and sets
// the principal of a client that gave a certificate. It returns false when
// the connection must close; the failure is logged on one line.
func (c *conn) handshake() bool {
	tc, ok := c.nc.(*tls.Conn)
	if !ok {
		return true
	}
	timeout := c.l.HandshakeTimeout
	if timeout <= 0 {
		timeout = DefaultHandshakeTimeout
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		c.s.stats.tlsFailed.Add(1)
		if ok, suppressed := c.s.tlsLog.allow(time.Now()); ok {
			c.s.log.Info("kafka server: TLS handshake failed; closing connection",
				c.logAttrs("listener", c.l.Name, "err", handshakeReason(err), "suppressed_since_last", suppressed)...)
		}
		return false
	}
	c.touch()
	st := tc.ConnectionState()
	if len(st.PeerCertificates) == 0 || c.l.SASL || c.l.CertPrincipal == nil {
		return true
	}
	p, err := c.l.CertPrincipal(st.PeerCertificates[0])
	if err != nil {
		c.s.log.Info("kafka server: no principal for the client certificate; closing connection",
			c.logAttrs("listener", c.l.Name, "subject", st.PeerCertificates[0].Subject.String(), "err", err)...)
		return false
	}
	c.session.principal.Store(&p)
	return true
}

// handshakeReason shortens a handshake error to its cause, without the
// addresses the log line already has.
func handshakeReason(err error) string {
	var re tls.RecordHeaderError
	if errors.As(err, &re) {
		return "client did not speak TLS"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oe.Err.Error()
	}
	return err.Error()
}

// allowedBeforeAuth reports whether key may be served on a SASL listener
// before the client authenticated.
func allowedBeforeAuth(key int16) bool {
	return key == apiVersionsKey || key == saslHandshakeKey || key == saslAuthenticateKey
}
