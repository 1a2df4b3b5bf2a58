package raftnet

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"
)

// Frame kinds of the handshake (see the package doc's byte layout).
const (
	// kindHelloV1 is the hello of Strom before version 2: no version
	// byte, no authentication. It is refused with a message that says so.
	kindHelloV1 byte = 1
	// kindHello is a versioned hello (helloVersion).
	kindHello   byte = 3
	kindAuth    byte = 4
	kindVerdict byte = 5
	// kindPing is an empty frame a writer sends when it has sent nothing
	// for PingInterval, so that the acceptor can tell a live peer process
	// from a dead one's half-open connection (duplicate node ids).
	kindPing byte = 6
)

// helloVersion is the hello's layout and the handshake it starts. A hello
// of another version is refused (and said so in the log of both sides).
const helloVersion byte = 2

const (
	helloFixed = 1 + 1 + 4 + 8 + 1 // kind, version, node, incarnation, mechanism length
	// handshakeMaxFrame bounds the frames read before a peer is
	// authenticated: nobody makes this node allocate DefaultMaxFrame
	// without credentials.
	handshakeMaxFrame = 64 << 10
	maxMechanism      = 64
	maxReason         = 1024
)

// Verdict codes: the accepting side's answer to a handshake.
const (
	verdictAccepted byte = 0
	// verdictRefused: authentication failed, or the peer is not one of
	// this cluster. The reason is generic until the dialler has
	// authenticated: it never tells which part was wrong.
	verdictRefused byte = 1
	// verdictDuplicate: another process with the dialler's node id holds
	// a live connection to this node (node.id given to two hosts).
	verdictDuplicate byte = 2
)

// hello is the first frame on every connection.
type hello struct {
	Node int32
	// Incarnation is random per process start: two processes claiming one
	// node id tell apart by it.
	Incarnation uint64
	// Mechanism is the SASL mechanism the dialler authenticates with next
	// ("" for none).
	Mechanism string
	Cluster   string
}

// verdict ends the handshake, from the accepting side.
type verdict struct {
	Code   byte
	Reason string
}

// appendHello appends the frame of h to dst.
func appendHello(dst []byte, h hello) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindHello, helloVersion)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Node))
	dst = binary.BigEndian.AppendUint64(dst, h.Incarnation)
	dst = append(dst, byte(len(h.Mechanism)))
	dst = append(dst, h.Mechanism...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(h.Cluster)))
	dst = append(dst, h.Cluster...)
	return sealFrame(dst, start)
}

// errOldHello is a hello without a version: a node of an older Strom.
var errOldHello = errors.New("raftnet: the peer speaks the hello of an older Strom (version 1, unauthenticated); every node of a cluster must run a Strom with the same transport version")

// decodeHello decodes a hello frame's body.
func decodeHello(body []byte) (hello, error) {
	if len(body) >= 1 && body[0] == kindHelloV1 {
		return hello{}, errOldHello
	}
	if len(body) < 2 || body[0] != kindHello {
		return hello{}, fmt.Errorf("%w: not a hello", ErrBadFrame)
	}
	if body[1] != helloVersion {
		return hello{}, fmt.Errorf("%w: hello version %d, this node speaks %d", ErrBadFrame, body[1], helloVersion)
	}
	if len(body) < helloFixed {
		return hello{}, fmt.Errorf("%w: hello of %d bytes", ErrBadFrame, len(body))
	}
	h := hello{Node: int32(binary.BigEndian.Uint32(body[2:6])), Incarnation: binary.BigEndian.Uint64(body[6:14])}
	m := int(body[14])
	rest := body[helloFixed:]
	if m > maxMechanism || len(rest) < m+2 {
		return hello{}, fmt.Errorf("%w: hello names a mechanism of %d bytes in %d", ErrBadFrame, m, len(rest))
	}
	h.Mechanism = string(rest[:m])
	rest = rest[m:]
	n := int(binary.BigEndian.Uint16(rest[0:2]))
	if len(rest) != 2+n {
		return hello{}, fmt.Errorf("%w: hello names a cluster id of %d bytes in %d", ErrBadFrame, n, len(rest)-2)
	}
	h.Cluster = string(rest[2:])
	if h.Node < 0 {
		return hello{}, fmt.Errorf("%w: hello names node %d", ErrBadFrame, h.Node)
	}
	return h, nil
}

// appendAuth appends a frame carrying one SASL token.
func appendAuth(dst []byte, token []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindAuth)
	dst = append(dst, token...)
	return sealFrame(dst, start)
}

// decodeAuth returns an auth frame's token (aliasing body).
func decodeAuth(body []byte) ([]byte, error) {
	if len(body) < 1 || body[0] != kindAuth {
		return nil, fmt.Errorf("%w: not an auth frame", ErrBadFrame)
	}
	return body[1:], nil
}

// appendVerdict appends a verdict frame.
func appendVerdict(dst []byte, v verdict) []byte {
	if len(v.Reason) > maxReason {
		v.Reason = v.Reason[:maxReason]
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindVerdict, v.Code)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(v.Reason)))
	dst = append(dst, v.Reason...)
	return sealFrame(dst, start)
}

// decodeVerdict decodes a verdict frame's body.
func decodeVerdict(body []byte) (verdict, error) {
	if len(body) < 4 || body[0] != kindVerdict {
		return verdict{}, fmt.Errorf("%w: not a verdict", ErrBadFrame)
	}
	n := int(binary.BigEndian.Uint16(body[2:4]))
	if n > maxReason || len(body) != 4+n {
		return verdict{}, fmt.Errorf("%w: verdict of %d bytes names a reason of %d", ErrBadFrame, len(body), n)
	}
	switch body[1] {
	case verdictAccepted, verdictRefused, verdictDuplicate:
	default:
		return verdict{}, fmt.Errorf("%w: verdict code %d", ErrBadFrame, body[1])
	}
	return verdict{Code: body[1], Reason: string(body[4:])}, nil
}

// SASL authenticates the dialling side of every connection in the
// handshake, before any raft message is read from it. The broker gives
// it over package auth (PLAIN, SCRAM-SHA-256/512); raftnet only carries
// the tokens.
type SASL struct {
	// Mechanism is what this node logs in with when it dials.
	Mechanism string
	// Client starts this node's side as a dialler.
	Client func() (ClientExchange, error)
	// Server starts the accepting side for the mechanism a dialler's
	// hello names; an error (a mechanism not enabled) refuses it.
	Server func(mechanism string) (ServerExchange, error)
}

// ClientExchange is a dialler's side of a SASL exchange: Step takes the
// server's token (nil to start) and returns the next one to send (nil:
// none); done says the client is satisfied with the server (SCRAM: its
// signature checked). auth.ClientExchange is one.
type ClientExchange interface {
	Step(challenge []byte) (response []byte, done bool, err error)
}

// ServerExchange is the accepting side of a SASL exchange: Step takes the
// dialler's token and returns the answer; done says the dialler
// authenticated; an error refuses it. auth.Exchange is one.
type ServerExchange interface {
	Step(response []byte) (challenge []byte, done bool, err error)
}

// ErrRefused is a connection the peer refused in its handshake (its
// verdict); the error's text carries the peer's reason.
var ErrRefused = errors.New("raftnet: refused by the peer")

// errRefusedIn marks an accepted connection this node refused: already
// counted and logged by handshakeIn.
var errRefusedIn = errors.New("raftnet: refused")

// genericRefusal is the reason given to a dialler that has not
// authenticated: nothing about which part was wrong.
const genericRefusal = "authentication failed"

// handshakeIn runs the accepting side's handshake on c (already wrapped in
// TLS when the listener is): the TLS handshake, the hello, the SASL
// exchange when configured, the cluster check; it answers a verdict and
// returns the peer's hello once accepted. r reads c. c's deadline bounds
// the whole of it. A refusal is counted, logged (at most once per peer
// address per RefusalLogInterval) and returned as errRefusedIn.
func (t *Transport) handshakeIn(c net.Conn, r io.Reader, ic *inConn) (hello, error) {
	host := remoteHost(c)
	if tc, ok := c.(*tls.Conn); ok {
		if err := tc.Handshake(); err != nil {
			t.authFailed.Add(1)
			return hello{}, t.refuseIn(c, host, -1, false, "raftnet: refused a connection: TLS handshake failed", err)
		}
	}
	body, err := readFrame(r, handshakeMaxFrame)
	if err != nil {
		return hello{}, t.refuseIn(c, host, -1, false, "raftnet: connection closed before a hello", err)
	}
	h, err := decodeHello(body)
	if err != nil {
		return hello{}, t.refuseIn(c, host, -1, !errors.Is(err, errOldHello), "raftnet: refused a connection: bad hello", err)
	}
	switch {
	case t.cfg.SASL != nil:
		if err := t.authenticateIn(c, r, h); err != nil {
			t.authFailed.Add(1)
			return hello{}, t.refuseIn(c, host, h.Node, true, "raftnet: refused a connection: SASL authentication failed", err)
		}
	case h.Mechanism != "":
		// The peers disagree on the controller listener's protocol.
		return hello{}, t.refuseIn(c, host, h.Node, true, "raftnet: refused a connection: the peer authenticates with SASL but this node's controller listener does not use SASL",
			fmt.Errorf("mechanism %s", h.Mechanism))
	}
	// The dialler is authenticated (or nothing is required): from here the
	// verdict may say why.
	if h.Cluster != t.cfg.ClusterID {
		t.refused.Add(1)
		t.logLimited("in", host, h.Node, slog.LevelError, "raftnet: refused a peer of another cluster",
			"remote", c.RemoteAddr(), "peer_node", h.Node, "peer_cluster", h.Cluster, "cluster", t.cfg.ClusterID)
		t.writeVerdict(c, verdict{Code: verdictRefused, Reason: "another cluster id or controller.quorum.voters than this node's"})
		return hello{}, errRefusedIn
	}
	ic.node, ic.incarnation = h.Node, h.Incarnation
	if old := t.admit(ic); old != nil {
		t.refused.Add(1)
		reason := fmt.Sprintf("node.id %d is in use by another process (incarnation %016x) connected to node %d from %s; this one (incarnation %016x) dialled from %s",
			h.Node, old.incarnation, t.cfg.NodeID, old.conn.RemoteAddr(), h.Incarnation, c.RemoteAddr())
		t.logLimited("dup", host, h.Node, slog.LevelError, "raftnet: refused a second process with one node.id: two raft members with one id break raft's safety (double votes)",
			"peer_node", h.Node, "remote", c.RemoteAddr(), "incarnation", fmt.Sprintf("%016x", h.Incarnation),
			"other_remote", old.conn.RemoteAddr(), "other_incarnation", fmt.Sprintf("%016x", old.incarnation))
		t.writeVerdict(c, verdict{Code: verdictDuplicate, Reason: reason})
		return hello{}, errRefusedIn
	}
	if err := t.writeVerdict(c, verdict{Code: verdictAccepted}); err != nil {
		return hello{}, fmt.Errorf("raftnet: verdict to node %d: %w", h.Node, err)
	}
	return h, nil
}

// authenticateIn runs the server side of h's SASL exchange.
func (t *Transport) authenticateIn(c net.Conn, r io.Reader, h hello) error {
	if h.Mechanism == "" {
		return errors.New("the peer did not authenticate (its controller listener is not configured for SASL?)")
	}
	ex, err := t.cfg.SASL.Server(h.Mechanism)
	if err != nil {
		return err
	}
	for {
		body, err := readFrame(r, handshakeMaxFrame)
		if err != nil {
			return err
		}
		tok, err := decodeAuth(body)
		if err != nil {
			return err
		}
		ans, done, err := ex.Step(tok)
		if err != nil {
			return err
		}
		if len(ans) > 0 || !done {
			if _, err := c.Write(appendAuth(nil, ans)); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}

// refuseIn counts and logs a refused accepted connection and, when answer,
// tells the dialler with the generic reason.
func (t *Transport) refuseIn(c net.Conn, host string, node int32, answer bool, msg string, err error) error {
	t.refused.Add(1)
	level := slog.LevelWarn
	if errors.Is(err, errOldHello) {
		level = slog.LevelError
	}
	t.logLimited("in", host, node, level, msg, "remote", c.RemoteAddr(), "claimed_node", node, "err", err)
	if answer {
		t.writeVerdict(c, verdict{Code: verdictRefused, Reason: genericRefusal})
	}
	return errRefusedIn
}

func (t *Transport) writeVerdict(c net.Conn, v verdict) error {
	_, err := c.Write(appendVerdict(nil, v))
	return err
}

// handshakeOut runs the dialling side's handshake on a new connection to
// p: TLS, the hello, the SASL exchange, and the peer's verdict. It returns
// the connection to write raft messages on.
func (t *Transport) handshakeOut(raw net.Conn, p *peer) (net.Conn, error) {
	c := raw
	c.SetDeadline(time.Now().Add(t.cfg.HelloTimeout))
	if t.cfg.ClientTLS != nil {
		cfg := t.cfg.ClientTLS
		if cfg.ServerName == "" {
			cfg = cfg.Clone()
			host, _, err := net.SplitHostPort(p.addr)
			if err != nil {
				host = p.addr
			}
			cfg.ServerName = host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.Handshake(); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		c = tc
	}
	h := hello{Node: t.cfg.NodeID, Incarnation: t.cfg.Incarnation, Cluster: t.cfg.ClusterID}
	var ex ClientExchange
	done := true
	var first []byte
	if s := t.cfg.SASL; s != nil {
		var err error
		if ex, err = s.Client(); err != nil {
			return nil, fmt.Errorf("SASL %s: %w", s.Mechanism, err)
		}
		h.Mechanism = s.Mechanism
		if first, done, err = ex.Step(nil); err != nil {
			return nil, fmt.Errorf("SASL %s: %w", s.Mechanism, err)
		}
	}
	out := appendHello(nil, h)
	if ex != nil {
		out = appendAuth(out, first)
	}
	if _, err := c.Write(out); err != nil {
		return nil, fmt.Errorf("hello: %w", err)
	}
	for {
		body, err := readFrame(c, handshakeMaxFrame)
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = fmt.Errorf("%w: closed during the handshake (a TLS or protocol mismatch, or a node of an older Strom)", ErrRefused)
			}
			return nil, err
		}
		switch body[0] {
		case kindAuth:
			tok, _ := decodeAuth(body)
			if ex == nil || done {
				return nil, fmt.Errorf("%w: an unexpected SASL token", ErrBadFrame)
			}
			var resp []byte
			if resp, done, err = ex.Step(tok); err != nil {
				return nil, fmt.Errorf("SASL %s: %w", h.Mechanism, err)
			}
			if resp != nil {
				if _, err := c.Write(appendAuth(nil, resp)); err != nil {
					return nil, err
				}
			}
		case kindVerdict:
			v, err := decodeVerdict(body)
			if err != nil {
				return nil, err
			}
			if v.Code != verdictAccepted {
				return nil, refusal(v)
			}
			if !done {
				return nil, fmt.Errorf("SASL %s: the peer accepted before proving it knows the credentials", h.Mechanism)
			}
			c.SetDeadline(time.Time{})
			return c, nil
		default:
			return nil, fmt.Errorf("%w: frame kind %d in the handshake", ErrBadFrame, body[0])
		}
	}
}

// refusal is the error of a verdict that refused this node.
func refusal(v verdict) error {
	if v.Code == verdictDuplicate {
		return fmt.Errorf("%w: %w: %s", ErrRefused, ErrDuplicateNode, v.Reason)
	}
	return fmt.Errorf("%w: %s", ErrRefused, v.Reason)
}

// ErrDuplicateNode: a peer holds a live connection from another process
// with this node's id (node.id given twice). See Config.OnDuplicate.
var ErrDuplicateNode = errors.New("raftnet: another process runs with this node.id")

func remoteHost(c net.Conn) string {
	a := c.RemoteAddr().String()
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return a
}

// logLimited logs at most once per (direction, peer host, node) per
// RefusalLogInterval, so a peer that keeps redialling with the wrong
// credentials, or a scanner, does not flood the log; what is not logged
// is still counted in Stats.
func (t *Transport) logLimited(dir, host string, node int32, level slog.Level, msg string, args ...any) {
	key := fmt.Sprintf("%s|%s|%d", dir, host, node)
	now := time.Now()
	t.logMu.Lock()
	last, seen := t.logged[key]
	if seen && now.Sub(last) < t.cfg.RefusalLogInterval {
		t.logMu.Unlock()
		return
	}
	if len(t.logged) >= 1024 { // many scanners: forget the stale entries
		for k, at := range t.logged {
			if now.Sub(at) >= t.cfg.RefusalLogInterval {
				delete(t.logged, k)
			}
		}
	}
	t.logged[key] = now
	t.logMu.Unlock()
	t.log.Log(context.Background(), level, msg, args...)
}

// appendPing appends a ping frame.
func appendPing(dst []byte) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindPing)
	return sealFrame(dst, start)
}

// inConn is an accepted connection once its handshake got as far as the
// duplicate check. Owner: its reader (readLoop), which unregisters it.
type inConn struct {
	conn        net.Conn
	raw         net.Conn // conn's TCP connection under any TLS (peerClosed)
	node        int32
	incarnation uint64
	frame       chan struct{} // signalled (never blocking) at every frame read
	done        chan struct{} // closed when the reader stops
	registered  bool          // guarded by Transport.mu
}

// active records a frame read.
func (ic *inConn) active() {
	select {
	case ic.frame <- struct{}{}:
	default:
	}
}

// admit registers ic as a live connection from its node, unless another
// process with that node id (another incarnation) holds one that is still
// alive and active: that one is returned, ic is not registered. An
// accepted connection of another incarnation that stays silent for
// DuplicateWait, or closes, is a process gone without its kernel closing
// the socket (a power cut): it is closed and ic admitted. A restarted
// process's old connection, closed by its kernel, is gone or goes within
// the wait: a restart is never refused.
func (t *Transport) admit(ic *inConn) *inConn {
	for {
		t.mu.Lock()
		var old *inConn
		for o := range t.mu.in[ic.node] {
			if o.incarnation != ic.incarnation {
				old = o
				break
			}
		}
		if old == nil {
			if t.mu.in[ic.node] == nil {
				t.mu.in[ic.node] = map[*inConn]struct{}{}
			}
			t.mu.in[ic.node][ic] = struct{}{}
			ic.registered = true
			t.mu.Unlock()
			return nil
		}
		t.mu.Unlock()
		if t.stillActive(old) {
			return old
		}
		old.conn.Close()
		t.unregister(old)
		t.log.Warn("raftnet: a peer's previous process left a silent connection; closed it for the new one",
			"peer_node", ic.node, "old_remote", old.conn.RemoteAddr(), "remote", ic.conn.RemoteAddr())
	}
}

// stillActive reports whether old's process lives: its connection stays
// open for DuplicateWait from now and reads a frame (raft's, or the ping
// of an idle writer) at least PingInterval from now. Frames read sooner
// may be what a dead process left in the socket buffers, read late by a
// reader that was busy in Deliver; its close follows them.
func (t *Transport) stillActive(old *inConn) bool {
	start := time.Now()
	tm := time.NewTimer(t.cfg.DuplicateWait)
	defer tm.Stop()
	late := false
	for {
		select {
		case <-old.frame:
			if time.Since(start) >= t.cfg.PingInterval {
				late = true
			}
		case <-old.done:
			return false
		case <-t.ctx.Done():
			return false
		case <-tm.C:
			return late
		}
	}
}

// unregister removes ic from the live connections (idempotent) and marks
// it done.
func (t *Transport) unregister(ic *inConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if ic.registered {
		ic.registered = false
		delete(t.mu.in[ic.node], ic)
		if len(t.mu.in[ic.node]) == 0 {
			delete(t.mu.in, ic.node)
		}
	}
	select {
	case <-ic.done:
	default:
		close(ic.done)
	}
}
