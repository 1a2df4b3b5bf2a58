package handler

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// SaslAuthenticate: one step of the SASL exchange SaslHandshake began.
//
// Behavior:
//   - Success: the connection's principal becomes User:<name> and every
//     API is served from then on.
//   - Failure (unknown user, wrong password, a malformed message): after
//     connection.failed.authentication.delay.ms, SASL_AUTHENTICATION_FAILED
//     with a message that does not say which part was wrong, then the
//     connection closes; the broker logs one line (listener, remote
//     address, mechanism), never the password.
//   - Without a handshake first, or after success: ILLEGAL_SASL_STATE, and
//     the connection closes.
//
// Version notes: v1 SessionLifetimeMillis: connections.max.reauth.ms (0:
// none); the session then ends at that deadline unless the client
// re-authenticates (KIP-368; the server closes a connection whose session
// ended at its next other request); v2 flexible. The bare
// token of SaslHandshake v0 arrives here as a v0 request with Raw set: its
// answer is written bare, and a failure closes the connection without one
// (as Kafka does).
func init() { register(36, 0, 2, handleSASLAuthenticate) }

func handleSASLAuthenticate(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.SASLAuthenticateRequest)
	resp := r.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	sess := req.Conn.Session
	var x saslExchange
	ok := false
	if sess != nil {
		x, ok = sess.Exchange().(saslExchange)
		ok = ok && (!sess.IsAuthenticated() || x.reauth)
	}
	if !ok {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate before SaslHandshake, or after authentication")
		return server.Reply{Response: resp, CloseAfter: true}, nil
	}
	answer, done, err := x.Step(r.SASLAuthBytes)
	if err == nil && done && x.reauth && x.Principal() != sess.Principal() {
		err = errors.New("re-authentication as another principal") // KIP-368 forbids it
	}
	if err != nil {
		sess.SetExchange(nil)
		h.log.Info("sasl: authentication failed; closing connection", "listener", req.Conn.Listener,
			"remote", req.Conn.RemoteAddr, "mechanism", x.mechanism)
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr("Authentication failed during authentication due to invalid credentials with SASL mechanism " + x.mechanism)
		delay := h.cfg.FailedAuthDelay
		return server.Reply{
			NoResponse: req.Raw,
			CloseAfter: true,
			Finish: func(ctx context.Context) kmsg.Response {
				// Slows a password guesser down; a shutdown does
				// not wait for it.
				t := time.NewTimer(delay)
				defer t.Stop()
				select {
				case <-t.C:
				case <-ctx.Done():
				case <-h.stopping:
				}
				return resp
			},
		}, nil
	}
	resp.SASLAuthBytes = answer
	if req.Raw && !done {
		sess.ExpectRawToken() // the old flow goes on bare
	}
	if done {
		if t, ok := x.Exchange.(interface{ TokenAuthenticated() bool }); ok && t.TokenAuthenticated() {
			sess.AuthenticatedByToken(x.Principal())
		} else {
			sess.Authenticated(x.Principal())
		}
		if h.cfg.Reauth > 0 {
			// The session ends at connections.max.reauth.ms, or when
			// an OAUTHBEARER token expires if sooner (as Kafka).
			lifetime := h.cfg.Reauth
			if e, ok := x.Exchange.(interface{ Expiry() time.Time }); ok && !e.Expiry().IsZero() {
				lifetime = min(lifetime, max(time.Until(e.Expiry()), time.Millisecond))
			}
			sess.SetExpiry(time.Now().Add(lifetime))
			if req.Version >= 1 {
				resp.SessionLifetimeMillis = lifetime.Milliseconds()
			}
		}
		h.log.Debug("sasl: authenticated", "listener", req.Conn.Listener, "remote", req.Conn.RemoteAddr,
			"mechanism", x.mechanism, "principal", x.Principal())
	}
	return now(resp)
}
