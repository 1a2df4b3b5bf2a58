package raftnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/testutil"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// noLeak fails the test if goroutines started during it are still running
// once its cleanups (which close the transports) have run. Register it
// first: cleanups run last-in first-out.
func noLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	})
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func listen(t *testing.T, addr string) net.Listener {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	var err error
	waitFor(t, "listen on "+addr, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln
}

// inbox records what a node received: per (sender raft id, group) the
// message indexes in delivery order.
type inbox struct {
	mu  sync.Mutex
	got map[[2]uint64][]uint64
	n   int
}

func newInbox() *inbox { return &inbox{got: map[[2]uint64][]uint64{}} }

func (b *inbox) deliver(group uint64, m *raftpb.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	k := [2]uint64{m.GetFrom(), group}
	b.got[k] = append(b.got[k], m.GetIndex())
	b.n++
}

func (b *inbox) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.n
}

func (b *inbox) seq(from, group uint64) []uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]uint64(nil), b.got[[2]uint64{from, group}]...)
}

// msg is a message from node from to node to (node ids) carrying index.
func msg(from, to int32, index uint64, data []byte) *raftpb.Message {
	m := &raftpb.Message{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(uint64(from) + 1), To: proto.Uint64(uint64(to) + 1),
		Term: proto.Uint64(1), Index: proto.Uint64(index)}
	if data != nil {
		m.Entries = []*raftpb.Entry{{Index: proto.Uint64(index), Term: proto.Uint64(1), Data: data}}
	}
	return m
}

type node struct {
	*Transport
	in *inbox
}

func start(t *testing.T, cfg Config) node {
	t.Helper()
	in := newInbox()
	if cfg.Deliver == nil {
		cfg.Deliver = in.deliver
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tr, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return node{tr, in}
}

// mesh starts n transports that know each other.
func mesh(t *testing.T, n int, queue int) []node {
	lns := make([]net.Listener, n)
	peers := map[int32]string{}
	for i := range lns {
		lns[i] = listen(t, "")
		peers[int32(i)] = lns[i].Addr().String()
	}
	nodes := make([]node, n)
	for i := range nodes {
		nodes[i] = start(t, Config{NodeID: int32(i), ClusterID: "c", Listener: lns[i], Peers: peers, QueueSize: queue})
	}
	return nodes
}

// exchange has every node send msgs messages of each of groups groups to
// every other node, groups interleaved, and checks that every message
// arrives once and in order per (sender, group).
func exchange(t *testing.T, n, groups, msgs int) {
	noLeak(t)
	nodes := mesh(t, n, groups*msgs)
	for i := 1; i <= msgs; i++ {
		for g := 0; g < groups; g++ {
			for from := range nodes {
				for to := range nodes {
					if from != to {
						nodes[from].Send(uint64(g)<<32|7, msg(int32(from), int32(to), uint64(i), []byte("entry")))
					}
				}
			}
		}
	}
	want := (n - 1) * groups * msgs
	for i, nd := range nodes {
		waitFor(t, fmt.Sprintf("node %d to receive %d", i, want), func() bool { return nd.in.count() >= want })
	}
	for to, nd := range nodes {
		if s := nd.Stats(); s.Dropped != 0 || s.Delivered != uint64(want) || s.Sent != uint64(want) {
			t.Errorf("node %d: %+v, want %d sent and delivered, none dropped", to, s, want)
		}
		for from := range nodes {
			if from == to {
				continue
			}
			for g := 0; g < groups; g++ {
				seq := nd.in.seq(uint64(from)+1, uint64(g)<<32|7)
				if len(seq) != msgs {
					t.Fatalf("node %d from %d group %d: %d messages, want %d", to, from, g, len(seq), msgs)
				}
				for i, idx := range seq {
					if idx != uint64(i+1) {
						t.Fatalf("node %d from %d group %d: message %d has index %d (order or duplicate)", to, from, g, i, idx)
					}
				}
			}
		}
	}
}

func TestTwoNodes(t *testing.T)   { exchange(t, 2, 50, 200) }
func TestThreeNodes(t *testing.T) { exchange(t, 3, 20, 200) }

func TestPeerDownAtFirst(t *testing.T) {
	noLeak(t)
	ln := listen(t, "")
	addr := ln.Addr().String()
	ln.Close() // nobody listens there yet
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: addr},
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	for i := 1; i <= 100; i++ {
		a.Send(1, msg(0, 1, uint64(i), nil))
	}
	if s := a.Stats(); s.Sent != 0 || s.Dials != 0 {
		t.Fatalf("sent before the peer exists: %+v", s)
	}
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: listen(t, addr), Peers: map[int32]string{0: a.Addr().String()}})
	waitFor(t, "the queued messages", func() bool { return b.in.count() == 100 })
	seq := b.in.seq(1, 1)
	for i, idx := range seq {
		if idx != uint64(i+1) {
			t.Fatalf("message %d has index %d", i, idx)
		}
	}
}

func TestPeerKilledMidStream(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	addr := lnB.Addr().String()
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: addr},
		BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond, WriteTimeout: time.Second})
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB})
	for i := 1; i <= 100; i++ {
		a.Send(1, msg(0, 1, uint64(i), nil))
	}
	waitFor(t, "the first 100", func() bool { return b.in.count() == 100 })
	b.Close() // kills the connection and the listener

	b2 := start(t, Config{NodeID: 1, ClusterID: "c", Listener: listen(t, addr)})
	next := uint64(101)
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for b2.in.count() < 50 {
		if time.Now().After(deadline) {
			t.Fatalf("restarted peer received %d; stats %+v", b2.in.count(), a.Stats())
		}
		a.Send(1, msg(0, 1, next, nil))
		next++
		<-tick.C
	}
	if s := a.Stats(); s.Dials < 2 {
		t.Errorf("dials %d, want a redial", s.Dials)
	}
	seq := b2.in.seq(1, 1)
	for i := 1; i < len(seq); i++ {
		if seq[i] <= 100 || seq[i] <= seq[i-1] {
			t.Fatalf("restarted peer got %v", seq)
		}
	}
}

func TestSlowPeer(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, Deliver: func(uint64, *raftpb.Message) { <-release }})
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()},
		QueueSize: 64, WriteTimeout: 200 * time.Millisecond})
	t.Cleanup(unblock) // runs before the Closes: b's reader is blocked in Deliver
	data := bytes.Repeat([]byte{1}, 4096)
	var slowest time.Duration
	const total = 10000 // 40 MB: more than loopback's socket buffers hold
	began := time.Now()
	for i := 1; i <= total; i++ {
		t0 := time.Now()
		a.Send(1, msg(0, 1, uint64(i), data))
		slowest = max(slowest, time.Since(t0))
	}
	all := time.Since(began)
	s := a.Stats()
	t.Logf("10000 Sends in %v, slowest %v; %+v", all, slowest, s)
	// A Send that waited for the peer (which reads nothing) would wait
	// out a WriteTimeout (200 ms) each time the queue is full, thousands
	// of times: minutes. The bounds are far from that and from what a
	// loaded machine's scheduler adds (one Send of 281 ms at load 12).
	if all > 10*time.Second || slowest > 2*time.Second {
		t.Errorf("10000 Sends took %v, the slowest %v: Send must not block", all, slowest)
	}
	if s.Dropped == 0 || s.Sent >= total {
		t.Errorf("stats %+v: want drops while the peer does not read", s)
	}
	// Each connection's reader blocks in its first Deliver. A write that
	// times out (WriteTimeout: the peer reads nothing) makes the writer
	// redial, and the new connection's reader delivers one more.
	if got := b.Stats().Delivered; got > s.Dials {
		t.Errorf("blocked peer delivered %d over %d connections", got, s.Dials)
	}
	unblock()
}

func TestOtherClusterRefused(t *testing.T) {
	noLeak(t)
	var logs testutil.SyncBuffer
	lnB := listen(t, "")
	b := start(t, Config{NodeID: 1, ClusterID: "blue", Listener: lnB, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	a := start(t, Config{NodeID: 0, ClusterID: "green", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()},
		BackoffMin: time.Millisecond, BackoffMax: 10 * time.Millisecond})
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	deadline := time.Now().Add(20 * time.Second)
	for i := uint64(1); b.Stats().Refused < 2; i++ { // refused, and refused again after the redial
		if time.Now().After(deadline) {
			t.Fatalf("not refused twice: %+v, %d delivered", b.Stats(), b.in.count())
		}
		a.Send(1, msg(0, 1, i, nil))
		<-tick.C
	}
	if got := b.Stats().Delivered; got != 0 {
		t.Errorf("delivered %d from another cluster", got)
	}
	if !strings.Contains(logs.String(), "another cluster") || !strings.Contains(logs.String(), "peer_cluster=green") {
		t.Errorf("no log of the refusal: %q", logs.String())
	}
}

func TestBadFramesCloseTheConnection(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, MaxFrame: 1 << 20})
	hi := appendHello(nil, hello{Node: 0, Cluster: "c"})
	good := appendBatch(nil, []entry{{Group: 1, Msg: mustMarshal(t, msg(0, 1, 1, nil))}})
	badCRC := append([]byte(nil), good...)
	badCRC[len(badCRC)-1] ^= 0xff
	huge := binary.BigEndian.AppendUint32(nil, 1<<30)
	huge = append(huge, 0, 0, 0, 0)
	cases := []struct {
		name    string
		bytes   []byte
		refused bool // a bad hello: counted as refused, not a bad frame
	}{
		{"garbage instead of a hello", []byte("GET / HTTP/1.1\r\n\r\n"), true},
		{"batch instead of a hello", good, true},
		{"bad crc", append(append([]byte(nil), hi...), badCRC...), false},
		{"size over the max", append(append([]byte(nil), hi...), huge...), false},
		{"entry not a raft message", append(append([]byte(nil), hi...), appendBatch(nil, []entry{{Group: 1, Msg: []byte{0xff, 0xff}}})...), false},
		{"count past the end", append(append([]byte(nil), hi...), sealFrame([]byte{0, 0, 0, 0, 0, 0, 0, 0, kindBatch, 0xff, 0xff, 0xff, 0xff}, 0)...), false},
	}
	for _, tc := range cases {
		before := b.Stats()
		c, err := net.Dial("tcp", lnB.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(tc.bytes); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = io.Copy(io.Discard, c) // a verdict may come first; then the close
		c.Close()
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("%s: read %v, want the connection closed", tc.name, err)
		}
		waitFor(t, tc.name+" counted", func() bool {
			s := b.Stats()
			if tc.refused {
				return s.Refused == before.Refused+1
			}
			return s.BadFrames == before.BadFrames+1
		})
	}
	if got := b.Stats().Delivered; got != 0 {
		t.Errorf("delivered %d from bad frames", got)
	}
	// The node still serves a good peer.
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()}})
	a.Send(1, msg(0, 1, 1, nil))
	waitFor(t, "a good message after the bad ones", func() bool { return b.in.count() == 1 })
}

func mustMarshal(t *testing.T, m *raftpb.Message) []byte {
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSendDrops(t *testing.T) {
	noLeak(t)
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: "127.0.0.1:1"}})
	a.Send(1, msg(0, 5, 1, nil))                    // unknown node
	a.Send(1, &raftpb.Message{To: proto.Uint64(0)}) // raft id 0
	a.Close()
	a.Send(1, msg(0, 1, 1, nil)) // after Close
	if got := a.Stats().Dropped; got != 3 {
		t.Errorf("dropped %d, want 3", got)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

// Connected follows a peer's process: true once it dialled in, false as
// soon as it is gone, and true again after it restarts, with no message
// sent either way (the writer notices its connection closed and redials).
func TestConnectedFollowsPeer(t *testing.T) {
	noLeak(t)
	lnA, lnB := listen(t, ""), listen(t, "")
	addrA, addrB := lnA.Addr().String(), lnB.Addr().String()
	fast := func(c Config) Config {
		c.ClusterID, c.BackoffMin, c.BackoffMax = "c", time.Millisecond, 20*time.Millisecond
		return c
	}
	a := start(t, fast(Config{NodeID: 0, Listener: lnA, Peers: map[int32]string{1: addrB}}))
	b := start(t, fast(Config{NodeID: 1, Listener: lnB, Peers: map[int32]string{0: addrA}}))
	waitFor(t, "both connected", func() bool { return a.Connected(1) && b.Connected(0) })
	if a.Connected(2) {
		t.Fatal("connected to a node that does not exist")
	}
	b.Close()
	waitFor(t, "a to see b gone", func() bool { return !a.Connected(1) })
	b2 := start(t, fast(Config{NodeID: 1, Listener: listen(t, addrB), Peers: map[int32]string{0: addrA}}))
	// b2 admits a's redial once it has read the hello, which can be just
	// before a counts the dial: wait for the count too.
	waitFor(t, "a and the restarted b connected both ways, a's redial counted", func() bool {
		return a.Connected(1) && b2.Connected(0) && a.Stats().Dials >= 2
	})
	if s := a.Stats(); s.Sent != 0 {
		t.Fatalf("a: %+v, want nothing sent", s)
	}
}
