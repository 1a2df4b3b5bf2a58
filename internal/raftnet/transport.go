package raftnet

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/bufpool"
)

// Config configures a Transport. NodeID, Listener and Deliver are required.
type Config struct {
	NodeID    int32  // this node's id (node.id; its raft id is NodeID+1)
	ClusterID string // sent in the hello; a peer with another is refused
	Listener  net.Listener
	// Peers maps node ids (not raft ids) to their CONTROLLER address.
	Peers map[int32]string
	// Deliver is called from a connection's reader goroutine, in the order
	// the sender sent, for every message received. It must not keep the
	// message's caller-visible state beyond its own use and must return:
	// Close waits for it, and while it runs that connection reads nothing.
	Deliver func(group uint64, m *raftpb.Message)

	QueueSize    int           // messages queued per peer before drops; default 4096
	MaxFrame     int           // largest frame sent or accepted; default DefaultMaxFrame
	DialTimeout  time.Duration // default 2s
	WriteTimeout time.Duration // deadline of one frame's write; default 5s
	HelloTimeout time.Duration // an accepted connection's hello must arrive within; default 5s
	BackoffMin   time.Duration // first redial wait; default 10ms
	BackoffMax   time.Duration // cap of the doubling redial wait; default 1s
	Logger       *slog.Logger  // default slog.Default()

	// ServerTLS, when set, wraps every accepted connection in crypto/tls.
	// To authenticate peers it must require and verify a client
	// certificate (tls.RequireAndVerifyClientCert), which the broker
	// ensures. ClientTLS wraps every dialled connection (ServerName, when
	// empty, is the peer address's host). Both or neither.
	ServerTLS, ClientTLS *tls.Config
	// SASL, when set, makes every dialler authenticate in the handshake
	// and this node authenticate when it dials.
	SASL *SASL
	// Incarnation identifies this process start in its hellos; 0: New
	// picks a random one.
	Incarnation uint64
	// RefusalLogInterval: a refused peer (by address and claimed node) is
	// logged at most once per interval; default 1 minute.
	RefusalLogInterval time.Duration
	// PingInterval: a writer that sent nothing for this long sends a ping
	// frame; default 1s. DuplicateWait: how long the acceptor watches an
	// older process's connection for a frame before it takes a hello of
	// the same node id from another incarnation as a restart; default 3
	// PingIntervals, at most half of HelloTimeout.
	PingInterval, DuplicateWait time.Duration
	// OnDuplicate is called once (from a writer goroutine) when a peer
	// refused this node because another live process holds its node id;
	// the error (wrapping ErrDuplicateNode) names the other's address.
	// The broker stops on it (Failed). Nil: only logged.
	OnDuplicate func(error)
	// SnapshotSink, when set, takes the snapshot streams peers send
	// (SendSnapshot): it returns where the payload of m, a MsgSnap of
	// group, goes, or why it is refused. Called on the stream's reader
	// goroutine. Nil: every stream is refused.
	SnapshotSink func(group uint64, m *raftpb.Message) (ChunkSink, error)
	// SnapshotTimeout bounds the wait for each frame of a snapshot stream
	// and for the receiver's ack after its last; default
	// DefaultSnapshotTimeout.
	SnapshotTimeout time.Duration
	// MaxSnapshotStreams bounds the snapshot streams this node sends at
	// once (each holds a few chunks in memory); more wait their turn.
	// Default DefaultMaxSnapshotStreams.
	MaxSnapshotStreams int
}

// Stats are counters since New.
type Stats struct {
	Sent      uint64 // messages written to a connection
	Dropped   uint64 // messages dropped: queue full, unknown peer, or lost with a failed write
	Delivered uint64 // messages received and handed to Deliver
	Dials     uint64 // connections established (hello written)
	Refused   uint64 // accepted connections refused in the handshake: TLS, bad hello, authentication, another cluster
	// AuthFailed counts the refused connections whose TLS handshake or
	// SASL exchange failed.
	AuthFailed uint64
	BadFrames  uint64 // accepted connections closed on a frame that did not decode
	// Snapshot streams: sent and acknowledged, sent and failed, received
	// and delivered, received and refused (no sink, or the sink refused).
	SnapshotsSent, SnapshotsFailed, SnapshotsReceived, SnapshotsRefused uint64
	// SnapshotsQueued (now, not a counter): streams waiting for one of
	// the MaxSnapshotStreams slots.
	SnapshotsQueued int64
}

// Transport carries raft messages of many groups between nodes. See the
// package doc for its goroutines and invariants.
type Transport struct {
	cfg    Config
	log    *slog.Logger
	peers  map[int32]*peer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu struct {
		sync.Mutex
		conns  map[net.Conn]struct{}          // accepted connections, closed by Close
		in     map[int32]map[*inConn]struct{} // accepted connections past their handshake, by peer node
		closed bool
	}

	sent, dropped, delivered, dials, refused, authFailed, badFrames atomic.Uint64
	snapSent, snapFailed, snapReceived, snapRefused                 atomic.Uint64

	logMu  sync.Mutex
	logged map[string]time.Time // logLimited's last log per key

	dupOnce sync.Once // OnDuplicate is called once

	probes probes // Probe's waits for their acks

	snapSlots  chan struct{} // a token per snapshot stream being sent
	snapQueued atomic.Int64  // streams waiting for a token
}

type queued struct {
	group uint64
	msg   []byte
}

type peer struct {
	node  int32
	addr  string
	queue chan queued
	ctrl  chan []byte // probe frames (probe.go), written as they are
}

// New starts a Transport: the accept loop on cfg.Listener and one writer
// goroutine per peer. It owns the listener from now on.
func New(cfg Config) (*Transport, error) {
	if cfg.Listener == nil || cfg.Deliver == nil {
		return nil, errors.New("raftnet: Config needs a Listener and Deliver")
	}
	if cfg.NodeID < 0 {
		return nil, fmt.Errorf("raftnet: node id %d < 0", cfg.NodeID)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.MaxFrame <= 0 {
		cfg.MaxFrame = DefaultMaxFrame
	}
	if cfg.MaxSnapshotStreams <= 0 {
		cfg.MaxSnapshotStreams = DefaultMaxSnapshotStreams
	}
	def(&cfg.DialTimeout, 2*time.Second)
	def(&cfg.WriteTimeout, 5*time.Second)
	def(&cfg.HelloTimeout, 5*time.Second)
	def(&cfg.BackoffMin, 10*time.Millisecond)
	def(&cfg.BackoffMax, time.Second)
	def(&cfg.RefusalLogInterval, time.Minute)
	def(&cfg.PingInterval, time.Second)
	def(&cfg.DuplicateWait, 3*cfg.PingInterval)
	def(&cfg.SnapshotTimeout, DefaultSnapshotTimeout)
	cfg.DuplicateWait = min(cfg.DuplicateWait, cfg.HelloTimeout/2)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if (cfg.ServerTLS == nil) != (cfg.ClientTLS == nil) {
		return nil, errors.New("raftnet: Config needs both ServerTLS and ClientTLS, or neither")
	}
	if s := cfg.SASL; s != nil && (s.Mechanism == "" || len(s.Mechanism) > maxMechanism || s.Client == nil || s.Server == nil) {
		return nil, errors.New("raftnet: Config.SASL needs a Mechanism (up to 64 bytes), Client and Server")
	}
	for cfg.Incarnation == 0 {
		cfg.Incarnation = rand.Uint64()
	}
	t := &Transport{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), peers: map[int32]*peer{}, logged: map[string]time.Time{}}
	t.snapSlots = make(chan struct{}, cfg.MaxSnapshotStreams)
	t.mu.conns = map[net.Conn]struct{}{}
	t.mu.in = map[int32]map[*inConn]struct{}{}
	t.probes.wait = map[uint64]chan struct{}{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	for id, addr := range cfg.Peers {
		if id == cfg.NodeID {
			continue
		}
		p := &peer{node: id, addr: addr, queue: make(chan queued, cfg.QueueSize), ctrl: make(chan []byte, ctrlQueue)}
		t.peers[id] = p
		t.wg.Add(1)
		go t.writeLoop(p)
	}
	t.wg.Add(1)
	go t.acceptLoop()
	return t, nil
}

// Send queues m for the node whose raft id is m.To (node id m.To-1) and
// returns at once: the message is dropped (and counted) when that peer's
// queue is full, the peer is unknown, or the transport is closed. m is
// marshalled before Send returns; the caller may reuse it.
func (t *Transport) Send(group uint64, m *raftpb.Message) {
	p := t.peers[int32(m.GetTo()-1)]
	if p == nil || m.GetTo() == 0 || t.ctx.Err() != nil {
		t.dropped.Add(1)
		return
	}
	// Into a pooled buffer: the writer copies it into its frame and
	// gives it back.
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(bufpool.Get(proto.Size(m))[:0], m)
	if err != nil || len(b)+frameHeader+batchMinBody+entryHeader > t.cfg.MaxFrame {
		bufpool.Put(b)
		t.dropped.Add(1)
		return
	}
	select {
	case p.queue <- queued{group: group, msg: b}:
	default:
		bufpool.Put(b)
		t.dropped.Add(1)
	}
}

// Connected reports whether node has a connection to this one open (its
// writer dialled in and sent its hello): a live peer keeps one, and a peer
// whose process died loses it at once (its kernel closes the socket). A
// connection whose peer end the kernel has already seen closed counts as
// lost before its reader gets to the end (peerClosed): a client that saw
// the same kill may ask this node about it within a millisecond. A hung
// peer keeps its connection: the metadata quorum's fencing covers that.
// internal/cluster uses it as a liveness signal for quiesced groups and
// for Metadata during a failover.
func (t *Transport) Connected(node int32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for ic := range t.mu.in[node] {
		if !peerClosed(ic.raw) {
			return true
		}
	}
	return false
}

// Stats returns the counters.
func (t *Transport) Stats() Stats {
	return Stats{Sent: t.sent.Load(), Dropped: t.dropped.Load(), Delivered: t.delivered.Load(),
		Dials: t.dials.Load(), Refused: t.refused.Load(), AuthFailed: t.authFailed.Load(), BadFrames: t.badFrames.Load(),
		SnapshotsSent: t.snapSent.Load(), SnapshotsFailed: t.snapFailed.Load(), SnapshotsReceived: t.snapReceived.Load(), SnapshotsRefused: t.snapRefused.Load(),
		SnapshotsQueued: t.snapQueued.Load()}
}

// Addr is the listener's address.
func (t *Transport) Addr() net.Addr { return t.cfg.Listener.Addr() }

// Close stops every goroutine (accept loop, writers, readers) and waits
// for them; queued messages are dropped. It waits for a running Deliver.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.mu.closed {
		t.mu.Unlock()
		return nil
	}
	t.mu.closed = true
	for c := range t.mu.conns {
		c.Close()
	}
	t.mu.Unlock()
	t.cancel()
	err := t.cfg.Listener.Close()
	t.wg.Wait()
	return err
}

// acceptLoop accepts connections until Close, with a capped back-off on
// temporary errors, and starts a reader per connection.
func (t *Transport) acceptLoop() {
	defer t.wg.Done()
	var wait time.Duration
	for {
		c, err := t.cfg.Listener.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			wait = nextBackoff(wait, t.cfg.BackoffMin, t.cfg.BackoffMax)
			t.log.Warn("raftnet: accept", "err", err, "retry_in", wait)
			if !t.sleep(wait) {
				return
			}
			continue
		}
		wait = 0
		t.mu.Lock()
		if t.mu.closed {
			t.mu.Unlock()
			c.Close()
			return
		}
		t.mu.conns[c] = struct{}{}
		t.wg.Add(1)
		t.mu.Unlock()
		go t.readLoop(c)
	}
}

// readLoop reads the hello, then frames, delivering every message, until
// the connection fails, a frame is bad, or Close.
func (t *Transport) readLoop(c net.Conn) {
	defer t.wg.Done()
	defer func() {
		t.mu.Lock()
		delete(t.mu.conns, c)
		t.mu.Unlock()
		c.Close()
	}()
	raw := c
	if t.cfg.ServerTLS != nil {
		c = tls.Server(c, t.cfg.ServerTLS)
	}
	r := bufio.NewReaderSize(c, 64<<10)
	c.SetDeadline(time.Now().Add(t.cfg.HelloTimeout))
	ic := &inConn{conn: c, raw: raw, frame: make(chan struct{}, 1), done: make(chan struct{})}
	defer t.unregister(ic)
	h, err := t.handshakeIn(c, r, ic)
	if err != nil {
		if !errors.Is(err, errRefusedIn) {
			t.log.Debug("raftnet: handshake", "remote", c.RemoteAddr(), "err", err)
		}
		return
	}
	c.SetDeadline(time.Time{})
	for first := true; ; first = false {
		body, err := readFrame(r, t.cfg.MaxFrame)
		if err != nil {
			if errors.Is(err, ErrBadFrame) {
				t.badFrames.Add(1)
				t.log.Warn("raftnet: closing a connection", "peer_node", h.Node, "err", err)
			}
			return
		}
		ic.active()
		if first && body[0] == kindSnapHeader {
			// A connection dialled for one snapshot stream (snapshot.go).
			t.receiveSnapshot(h.Node, c, r, ic, body)
			bufpool.Put(body)
			return
		}
		ok := t.deliverFrame(h.Node, body)
		// Unmarshal copied what the messages keep: the frame's buffer
		// goes back to the pool.
		bufpool.Put(body)
		if !ok {
			return
		}
	}
}

// deliverFrame decodes a frame's body from node and delivers its
// messages; false when it does not decode (the connection is closed).
func (t *Transport) deliverFrame(node int32, body []byte) bool {
	if len(body) == 1 && body[0] == kindPing {
		return true
	}
	if body[0] == kindProbe || body[0] == kindProbeAck {
		if err := t.probeFrame(node, body); err != nil {
			t.badFrames.Add(1)
			t.log.Warn("raftnet: closing a connection", "peer_node", node, "err", err)
			return false
		}
		return true
	}
	es, err := decodeBatch(body)
	if err != nil {
		t.badFrames.Add(1)
		t.log.Warn("raftnet: closing a connection", "peer_node", node, "err", err)
		return false
	}
	for _, e := range es {
		m := &raftpb.Message{}
		if err := proto.Unmarshal(e.Msg, m); err != nil {
			t.badFrames.Add(1)
			t.log.Warn("raftnet: closing a connection: bad message", "peer_node", node, "group", e.Group, "err", err)
			return false
		}
		t.delivered.Add(1)
		t.cfg.Deliver(e.Group, m)
	}
	return true
}

// writeLoop owns p's outgoing connection: dial with capped back-off, hello,
// then write what is queued, batched into frames, each with a deadline.
func (t *Transport) writeLoop(p *peer) {
	defer t.wg.Done()
	var (
		c    net.Conn
		wait time.Duration
		buf  []byte
		es   []entry
	)
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	// Close interrupts a blocked write by closing the connection.
	var cmu sync.Mutex
	stop := context.AfterFunc(t.ctx, func() {
		cmu.Lock()
		if c != nil {
			c.Close()
		}
		cmu.Unlock()
	})
	defer stop()
	setConn := func(nc net.Conn) {
		cmu.Lock()
		if c != nil {
			c.Close()
		}
		c = nc
		cmu.Unlock()
	}
	ping := time.NewTimer(time.Hour)
	defer ping.Stop()
	// lost is closed when the peer closes c: the peer never writes on
	// it, so a read returns only then. The writer redials at once rather
	// than at its next write, so the peer (restarted, or its accept side
	// reset) sees this node connected again (Connected) even while no
	// raft message is due, as when every group between them is quiesced.
	var lost chan struct{}
	for t.ctx.Err() == nil {
		if c == nil {
			nc, err := t.dial(p)
			if err != nil {
				if t.ctx.Err() != nil {
					return
				}
				wait = nextBackoff(wait, t.cfg.BackoffMin, t.cfg.BackoffMax)
				if errors.Is(err, ErrDuplicateNode) {
					t.log.Error("raftnet: a peer refused this node: another live process runs with this node.id", "peer_node", p.node, "addr", p.addr, "err", err)
					t.dupOnce.Do(func() {
						if t.cfg.OnDuplicate != nil {
							t.cfg.OnDuplicate(err)
						}
					})
				} else if errors.Is(err, errUnreachable) {
					t.log.Debug("raftnet: dial", "peer_node", p.node, "addr", p.addr, "err", err, "retry_in", wait)
				} else {
					// Reached but refused, or TLS/SASL failed: a
					// misconfiguration worth a (rate-limited) warning.
					t.logLimited("out", p.addr, p.node, slog.LevelWarn, "raftnet: cannot connect to a peer", "peer_node", p.node, "addr", p.addr, "err", err)
				}
				if !t.sleep(wait) {
					return
				}
				continue
			}
			wait = 0
			setConn(nc)
			if t.ctx.Err() != nil {
				return
			}
			lost = make(chan struct{})
			t.wg.Add(1)
			go t.watchClose(nc, lost)
		}
		var first queued
		ping.Reset(t.cfg.PingInterval)
		select {
		case <-t.ctx.Done():
			return
		case <-lost:
			t.log.Debug("raftnet: peer closed the connection, redialling", "peer_node", p.node)
			setConn(nil)
			continue
		case <-ping.C:
			// Idle: a ping tells the peer this process is alive.
			c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
			if _, err := c.Write(appendPing(buf[:0])); err != nil {
				setConn(nil)
			}
			continue
		case f := <-p.ctrl:
			// A probe or a probe's answer (probe.go): sent now, on its own.
			c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
			if _, err := c.Write(f); err != nil {
				setConn(nil)
			}
			continue
		case first = <-p.queue:
		}
		// Batch what is queued now, up to one frame.
		es = append(es[:0], entry{Group: first.group, Msg: first.msg})
		size := frameHeader + batchMinBody + entryHeader + len(first.msg)
	drain:
		for {
			select {
			case q := <-p.queue:
				es = append(es, entry{Group: q.group, Msg: q.msg})
				size += entryHeader + len(q.msg)
				if size+entryHeader+4096 > t.cfg.MaxFrame || len(es) >= 4096 {
					break drain
				}
			default:
				break drain
			}
		}
		buf = appendBatch(buf[:0], es)
		for _, e := range es {
			bufpool.Put(e.Msg) // copied into buf
		}
		c.SetWriteDeadline(time.Now().Add(t.cfg.WriteTimeout))
		if _, err := c.Write(buf); err != nil {
			t.dropped.Add(uint64(len(es)))
			if t.ctx.Err() == nil {
				t.log.Warn("raftnet: write failed, redialling", "peer_node", p.node, "err", err, "lost", len(es))
			}
			setConn(nil)
			continue
		}
		t.sent.Add(uint64(len(es)))
		clear(es) // drop references to sent messages
	}
}

// watchClose reads c until it fails (the peer closed it, or the writer or
// Close did), then closes lost. Owner: the writer that dialled c, which
// closes c when it is done with it; Close waits for it.
func (t *Transport) watchClose(c net.Conn, lost chan struct{}) {
	defer t.wg.Done()
	defer close(lost)
	var b [512]byte
	for {
		if _, err := c.Read(b[:]); err != nil {
			return
		}
	}
}

// dial connects to p and runs the handshake (handshakeOut).
func (t *Transport) dial(p *peer) (net.Conn, error) {
	d := net.Dialer{Timeout: t.cfg.DialTimeout}
	raw, err := d.DialContext(t.ctx, "tcp", p.addr)
	if err != nil {
		return nil, fmt.Errorf("%w: node %d at %s: %w", errUnreachable, p.node, p.addr, err)
	}
	// Close interrupts a handshake in progress.
	stop := context.AfterFunc(t.ctx, func() { raw.Close() })
	defer stop()
	c, err := t.handshakeOut(raw, p)
	if err != nil {
		raw.Close()
		return nil, fmt.Errorf("raftnet: handshake with node %d at %s: %w", p.node, p.addr, err)
	}
	t.dials.Add(1)
	return c, nil
}

// errUnreachable marks a dial that did not connect (the peer is down):
// logged at debug level, unlike a handshake that failed.
var errUnreachable = errors.New("raftnet: dial")

// sleep waits d or until Close; false means closed.
func (t *Transport) sleep(d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-t.ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

func nextBackoff(cur, min, max time.Duration) time.Duration {
	if cur < min {
		return min
	}
	if cur*2 > max {
		return max
	}
	return cur * 2
}
