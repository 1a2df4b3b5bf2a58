package handler

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/auth"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// SaslHandshake: the client names its SASL mechanism; SaslAuthenticate
// carries the exchange (36_sasl_authenticate.go).
//
// Behavior:
//   - On a listener without SASL, or once the connection authenticated (or
//     began an exchange), ILLEGAL_SASL_STATE, and the connection closes;
//     except KIP-368's re-authentication: with connections.max.reauth.ms
//     set, an authenticated connection may run a new exchange (v1), which
//     must prove the same principal.
//   - A mechanism the listener does not offer (sasl.enabled.mechanisms, of
//     PLAIN, SCRAM-SHA-256, SCRAM-SHA-512): UNSUPPORTED_SASL_MECHANISM with
//     the offered list, and the connection closes, as Kafka's authenticator.
//   - The exchange is checked against the SCRAM credentials in the metadata
//     store as they are when the handshake arrives; PLAIN first against the
//     users of the listener's PLAIN JAAS login (Config.PlainUsers), if any,
//     and SCRAM with tokenauth=true against delegation tokens (tokens.go).
//
// Version notes: v0 is followed by the bare tokens of the old flow (no
// Kafka header: the server reads the next frame as a token); v1 by
// SaslAuthenticate requests.
func init() { register(17, 0, 1, handleSASLHandshake) }

func handleSASLHandshake(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.SASLHandshakeRequest)
	resp := r.ResponseKind().(*kmsg.SASLHandshakeResponse)
	offered := h.cfg.SASLMechanisms[req.Conn.Listener]
	resp.SupportedMechanisms = offered
	sess := req.Conn.Session
	reauth := sess != nil && sess.IsAuthenticated() && h.cfg.Reauth > 0 && req.Version >= 1
	if sess == nil || !sess.SASL() || sess.IsAuthenticated() && !reauth || sess.Exchange() != nil {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return server.Reply{Response: resp, CloseAfter: true}, nil
	}
	if !slices.Contains(offered, r.Mechanism) {
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return server.Reply{Response: resp, CloseAfter: true}, nil
	}
	var creds auth.Credentials = scramCredentials{s: h.c.Security(), h: h}
	if jaas := h.cfg.PlainUsers[req.Conn.Listener]; jaas != nil && r.Mechanism == auth.PLAIN {
		creds = layeredCredentials{jaas, creds}
	}
	x, err := auth.NewExchange(r.Mechanism, creds, h.cfg.OAuth)
	if err != nil { // a mechanism offered but not built: a bug
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		return server.Reply{Response: resp, CloseAfter: true}, nil
	}
	sess.SetExchange(saslExchange{Exchange: x, mechanism: r.Mechanism, reauth: reauth})
	if req.Version == 0 {
		sess.ExpectRawToken()
	}
	return now(resp)
}

// saslExchange is the exchange a connection runs, with its mechanism's name
// for logs.
type saslExchange struct {
	auth.Exchange
	mechanism string
	reauth    bool // KIP-368: the connection is authenticated already
}

// scramCredentials shows the metadata snapshot's credentials to package
// auth.
type scramCredentials struct {
	s *metadata.Security
	h *Handler // for delegation tokens (tokens.go); nil serves none
}

func (c scramCredentials) ScramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	m, ok := c.s.ScramCredential(user, mechanism)
	if !ok {
		return auth.ScramCredential{}, false
	}
	return auth.ScramCredential{Salt: m.Salt, StoredKey: m.StoredKey, ServerKey: m.ServerKey, Iterations: m.Iterations}, true
}

// layeredCredentials looks a user up in first (a listener's PLAIN JAAS
// users), then in rest (the metadata's SCRAM credentials).
type layeredCredentials struct{ first, rest auth.Credentials }

func (l layeredCredentials) ScramCredential(user, mechanism string) (auth.ScramCredential, bool) {
	if c, ok := l.first.ScramCredential(user, mechanism); ok {
		return c, true
	}
	return l.rest.ScramCredential(user, mechanism)
}
