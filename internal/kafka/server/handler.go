package server

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Request is one decoded Kafka request read from a connection.
type Request struct {
	// Key and Version are the API key and version from the request header.
	Key     int16
	Version int16
	// CorrelationID is echoed in the response header.
	CorrelationID int32
	// ClientID is the header's client id ("" when null).
	ClientID string
	// Msg is the decoded request body (Msg.Key() == Key, Msg.GetVersion() == Version).
	// Its byte-slice fields (records, member metadata) alias the frame
	// buffer. The frame counts against Config.MaxQueuedRequestBytes only
	// until Handle returns: a handler that keeps such a slice longer (in a
	// Finish, in its own state) must copy it, or it keeps the whole frame
	// alive outside the budget; and a Produce frame is then read into
	// again (see Handler).
	Msg kmsg.Request
	// Conn describes the connection the request arrived on.
	Conn ConnInfo
	// Raw marks a bare SASL token read after SaslHandshake v0, given as a
	// SaslAuthenticate v0 request (CorrelationID is meaningless): its
	// answer's SASLAuthBytes are written bare.
	Raw bool
}

// ConnInfo identifies a client connection.
type ConnInfo struct {
	ID         uint64
	RemoteAddr net.Addr
	LocalAddr  net.Addr
	// RemoteIP is the client's address without port (the host of ACLs).
	RemoteIP string
	// Listener is the name of the listener the connection arrived on.
	Listener string
	// Session is the connection's security state (never nil for a
	// connection the server accepted).
	Session *Session
}

// Reply is a handler's answer to one request. Exactly one of the forms is used:
//
//   - Response set, Finish nil: the response is ready now.
//   - Finish set: the writer goroutine calls Finish (in request order, after all
//     earlier replies of the connection were written) and writes what it
//     returns. Finish may block (acks=all waiting for fsync, a fetch long poll)
//     and must return promptly once ctx is done.
//   - NoResponse: nothing is written (Produce with acks=0). If Finish is also
//     set it still runs, and its result is dropped.
//
// Finish is called exactly once for every reply that has one, even when the
// connection has failed meanwhile: then ctx is already done and the result is
// dropped, so Finish can always release what it holds. ctx is done when the
// connection closes or when the server's Shutdown deadline passes; a graceful
// Shutdown does not cancel it. The server sets the response's version to the
// request's, so handlers need not.
type Reply struct {
	Response   kmsg.Response
	Finish     func(ctx context.Context) kmsg.Response
	NoResponse bool
	// CloseAfter stops reading: this reply (and the ones before it) are
	// written, then the connection closes (a failed SASL authentication).
	CloseAfter bool
}

// Handler processes requests. Handle is called on the connection's reader
// goroutine, one request at a time in the order they arrived, so any side
// effect it performs synchronously (an append to a partition) happens in
// request order. It must not block for long: work that waits belongs in
// Reply.Finish. ctx is the connection's (see Reply). A non-nil error closes
// the connection (after the replies already queued are written) and the
// Reply returned with it is ignored; a panic does the same and is logged
// with its stack.
//
// The bytes of a Produce request (its records, and every []byte the decoded
// request holds) are reused for another frame as soon as Handle returns
// (internal/bufpool, for frames of 64 KiB and more): a handler must write or
// copy what it needs before then, and neither its Reply nor its Finish may
// refer to them. Race-detector builds overwrite the frame at that moment, so
// tests catch a use after Handle (handler's TestProduceFromRecycledFrames).
type Handler interface {
	Handle(ctx context.Context, req *Request) (Reply, error)
	// APIVersions returns the version range supported for every API key,
	// used by the server to reject requests with unsupported versions and to
	// answer ApiVersions requests at versions it cannot parse. New calls it
	// once; the ranges are fixed for the server's life.
	APIVersions() []kmsg.ApiVersionsResponseApiKey
}
