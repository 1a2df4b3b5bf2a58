package raftnet

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// memSink is a ChunkSink into memory that records how it ended.
type memSink struct {
	mu        sync.Mutex
	data      bytes.Buffer
	committed bool
	aborted   bool
	failAt    int // Write fails at this chunk (1-based); 0 never
	chunks    int
}

func (s *memSink) Write(c []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chunks++
	if s.chunks == s.failAt {
		return errors.New("the sink refuses this chunk")
	}
	s.data.Write(c)
	return nil
}

func (s *memSink) Commit() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.committed = true
	return nil
}

func (s *memSink) Abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.aborted = true
}

func (s *memSink) state() (committed, aborted bool, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed, s.aborted, s.data.Len()
}

// sliceSource yields chunks of data.
type sliceSource struct {
	data   []byte
	chunk  int
	closed bool
}

func (s *sliceSource) Next() ([]byte, error) {
	if len(s.data) == 0 {
		return nil, io.EOF
	}
	n := min(s.chunk, len(s.data))
	c := s.data[:n]
	s.data = s.data[n:]
	return c, nil
}

func (s *sliceSource) Close() { s.closed = true }

// sinks hands out memSinks and remembers them.
type sinks struct {
	mu     sync.Mutex
	all    []*memSink
	failAt int
	refuse error
}

func (k *sinks) sink(group uint64, m *raftpb.Message) (ChunkSink, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.refuse != nil {
		return nil, k.refuse
	}
	s := &memSink{failAt: k.failAt}
	k.all = append(k.all, s)
	return s, nil
}

func (k *sinks) last() *memSink {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.all) == 0 {
		return nil
	}
	return k.all[len(k.all)-1]
}

func snapMsg(from, to int32, index uint64) *raftpb.Message {
	return &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(uint64(from) + 1), To: proto.Uint64(uint64(to) + 1),
		Term: proto.Uint64(1), Snapshot: &raftpb.Snapshot{Data: []byte("reference"),
			Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(index), Term: proto.Uint64(1)}}}
}

// pair starts a (node 0) and b (node 1), b taking snapshot streams into k.
func pair(t *testing.T, k *sinks, cfgB Config) (a, b node) {
	t.Helper()
	lnB := listen(t, "")
	cfgB.NodeID, cfgB.ClusterID, cfgB.Listener = 1, "c", lnB
	if k != nil {
		cfgB.SnapshotSink = k.sink
	}
	b = start(t, cfgB)
	a = start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()},
		SASL: cfgB.SASL, BackoffMin: time.Millisecond, BackoffMax: 20 * time.Millisecond})
	return a, b
}

func sendSnap(t *testing.T, a node, m *raftpb.Message, src ChunkSource) error {
	t.Helper()
	res := make(chan error, 1)
	a.SendSnapshot(7, m, src, func(err error) { res <- err })
	select {
	case err := <-res:
		return err
	case <-time.After(20 * time.Second):
		t.Fatal("the snapshot stream never ended")
		return nil
	}
}

// A 24 MiB payload (more than a frame) travels in 1 MiB chunks on a
// connection of its own: the sink gets every byte, commits, and only then
// is the MsgSnap delivered; the sender hears of the ack. Messages on the
// batch connection flow meanwhile.
func TestSnapshotStreamRoundTrip(t *testing.T) {
	noLeak(t)
	k := &sinks{}
	var order []string
	var omu sync.Mutex
	in := newInbox()
	a, b := pair(t, k, Config{Deliver: func(g uint64, m *raftpb.Message) {
		if m.GetType() == raftpb.MsgSnap {
			c, _, _ := k.last().state()
			omu.Lock()
			order = append(order, fmt.Sprintf("snap committed=%v group=%d", c, g))
			omu.Unlock()
		}
		in.deliver(g, m)
	}})
	payload := make([]byte, 24<<20)
	rand.Read(payload)
	a.Send(1, msg(0, 1, 1, nil))
	src := &sliceSource{data: payload, chunk: 1 << 20}
	began := time.Now()
	if err := sendSnap(t, a, snapMsg(0, 1, 9), src); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	s := k.last()
	committed, aborted, n := s.state()
	if !committed || aborted || n != len(payload) || !bytes.Equal(s.data.Bytes(), payload) || !src.closed {
		t.Fatalf("sink committed %v aborted %v holds %d bytes (want %d equal), source closed %v", committed, aborted, n, len(payload), src.closed)
	}
	omu.Lock()
	defer omu.Unlock()
	if len(order) != 1 || order[0] != "snap committed=true group=7" {
		t.Fatalf("deliveries of the snapshot: %v", order)
	}
	waitFor(t, "the batch message", func() bool { return len(in.seq(1, 1)) == 1 })
	if sa, sb := a.Stats(), b.Stats(); sa.SnapshotsSent != 1 || sb.SnapshotsReceived != 1 {
		t.Fatalf("stats a %+v b %+v", sa, sb)
	}
	t.Logf("24 MiB in %v", took)
}

// Streams the receiver refuses end with an error at the sender (the
// refusal, or a connection closed under its writes), with the sink aborted (or never made)
// and nothing delivered: no sink configured, a sink that refuses the
// snapshot, a sink that fails a chunk, a chunk larger than a frame, a
// stream whose end disagrees with its bytes, a header whose message is not
// the connection's node's MsgSnap, and a chunk whose frame CRC is wrong.
func TestSnapshotStreamRefused(t *testing.T) {
	noLeak(t)
	data := bytes.Repeat([]byte("region"), 50_000)
	t.Run("no sink", func(t *testing.T) {
		a, b := pair(t, nil, Config{})
		err := sendSnap(t, a, snapMsg(0, 1, 9), &sliceSource{data: data, chunk: 1 << 16})
		if err == nil || b.in.count() != 0 || b.Stats().SnapshotsRefused != 1 {
			t.Fatalf("err %v, delivered %d, b %+v", err, b.in.count(), b.Stats())
		}
	})
	t.Run("sink refuses", func(t *testing.T) {
		a, b := pair(t, &sinks{refuse: errors.New("snapshot already received")}, Config{})
		// The sender may see the refusal or, still writing, a
		// connection the receiver closed after it.
		err := sendSnap(t, a, snapMsg(0, 1, 9), &sliceSource{data: data, chunk: 1 << 16})
		if err == nil || b.in.count() != 0 || b.Stats().SnapshotsRefused != 1 {
			t.Fatalf("err %v, delivered %d, b %+v", err, b.in.count(), b.Stats())
		}
	})
	t.Run("sink fails a chunk", func(t *testing.T) {
		k := &sinks{failAt: 3}
		a, b := pair(t, k, Config{})
		err := sendSnap(t, a, snapMsg(0, 1, 9), &sliceSource{data: data, chunk: 1 << 14})
		if c, ab, _ := k.last().state(); err == nil || c || !ab || b.in.count() != 0 {
			t.Fatalf("err %v, committed %v aborted %v, delivered %d", err, c, ab, b.in.count())
		}
	})
	t.Run("chunk over the frame limit", func(t *testing.T) {
		k := &sinks{}
		a, b := pair(t, k, Config{MaxFrame: 1 << 16})
		a.cfg.MaxFrame = 1 << 20 // the sender's own limit is higher: the receiver's check counts
		err := sendSnap(t, a, snapMsg(0, 1, 9), &sliceSource{data: data, chunk: 1 << 17})
		waitFor(t, "the sink aborted", func() bool { _, ab, _ := k.last().state(); return ab })
		if c, _, _ := k.last().state(); err == nil || c || b.in.count() != 0 || b.Stats().BadFrames != 1 {
			t.Fatalf("err %v, committed %v, delivered %d, b %+v", err, c, b.in.count(), b.Stats())
		}
	})
	// The rest write raw frames on an authenticated connection.
	raw := func(t *testing.T, k *sinks) (node, net.Conn) {
		a, b := pair(t, k, Config{})
		c, err := a.dial(a.peers[1])
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return b, c
	}
	t.Run("end disagrees", func(t *testing.T) {
		k := &sinks{}
		b, c := raw(t, k)
		head, _ := appendSnapHeader(nil, 7, snapMsg(0, 1, 9))
		c.Write(head)
		c.Write(appendSnapChunk(nil, data))
		c.Write(appendSnapEnd(nil, uint64(len(data)), crc32.Checksum(data, castagnoli)+1))
		body, err := readFrame(c, handshakeMaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		v, err := decodeSnapAck(body)
		if err != nil || v.Code != verdictRefused {
			t.Fatalf("ack %+v %v, want refused", v, err)
		}
		if cm, ab, _ := k.last().state(); cm || !ab || b.in.count() != 0 {
			t.Fatalf("committed %v aborted %v delivered %d", cm, ab, b.in.count())
		}
	})
	t.Run("another node's snapshot", func(t *testing.T) {
		k := &sinks{}
		b, c := raw(t, k)
		head, _ := appendSnapHeader(nil, 7, snapMsg(2, 1, 9)) // claims raft id 3 on node 0's connection
		c.Write(head)
		waitFor(t, "the bad frame", func() bool { return b.Stats().BadFrames == 1 })
		if k.last() != nil || b.in.count() != 0 {
			t.Fatal("a snapshot stream of another node was taken")
		}
	})
	t.Run("bad chunk CRC", func(t *testing.T) {
		k := &sinks{}
		b, c := raw(t, k)
		head, _ := appendSnapHeader(nil, 7, snapMsg(0, 1, 9))
		c.Write(head)
		chunk := appendSnapChunk(nil, data[:1000])
		chunk[len(chunk)-1] ^= 1
		c.Write(chunk)
		waitFor(t, "the bad frame", func() bool { return b.Stats().BadFrames == 1 })
		waitFor(t, "the sink aborted", func() bool { _, ab, _ := k.last().state(); return ab })
		if _, _, n := k.last().state(); n != 0 || b.in.count() != 0 {
			t.Fatalf("the sink took %d bytes of a corrupt chunk", n)
		}
	})
}

// A peer that does not authenticate never reaches a sink: the handshake
// refuses it before any frame of its stream is read, whether it dials
// with a wrong password or writes a snapshot header with no handshake.
func TestSnapshotStreamUnauthenticated(t *testing.T) {
	noLeak(t)
	users := map[string]string{"ctrl": "right-pw"}
	k := &sinks{}
	lnB := listen(t, "")
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, SnapshotSink: k.sink,
		SASL: plainSASL(t, "PLAIN", "ctrl", "right-pw", users)})
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()},
		SASL: plainSASL(t, "PLAIN", "ctrl", "wrong-pw", users)})
	err := sendSnap(t, a, snapMsg(0, 1, 9), &sliceSource{data: []byte("region"), chunk: 4})
	if err == nil {
		t.Fatal("a stream with a wrong password succeeded")
	}
	c, err := net.Dial("tcp", lnB.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head, _ := appendSnapHeader(nil, 7, snapMsg(0, 1, 9))
	c.Write(head)
	c.Write(appendSnapChunk(nil, []byte("region")))
	waitFor(t, "both refused", func() bool { return b.Stats().Refused >= 2 })
	if k.last() != nil || b.in.count() != 0 {
		t.Fatal("an unauthenticated stream reached a sink")
	}
}

// discardSink counts what it is given.
type discardSink struct{ n int64 }

func (s *discardSink) Write(c []byte) error { s.n += int64(len(c)); return nil }
func (s *discardSink) Commit() error        { return nil }
func (s *discardSink) Abort()               {}

// BenchmarkSnapshotStream sends a 100 MiB payload in 4 MiB chunks over
// loopback TCP (frames, CRCs, the ack), into a sink that discards it.
func BenchmarkSnapshotStream(b *testing.B) {
	payload := make([]byte, 100<<20)
	rand.Read(payload)
	lnB, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	quiet := Config{ClusterID: "c"}
	var got *discardSink
	cfgB := quiet
	cfgB.NodeID, cfgB.Listener, cfgB.Deliver = 1, lnB, func(uint64, *raftpb.Message) {}
	cfgB.SnapshotSink = func(uint64, *raftpb.Message) (ChunkSink, error) { got = &discardSink{}; return got, nil }
	cfgB.Logger = discardLogger()
	tb, err := New(cfgB)
	if err != nil {
		b.Fatal(err)
	}
	defer tb.Close()
	lnA, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	cfgA := quiet
	cfgA.NodeID, cfgA.Listener, cfgA.Deliver = 0, lnA, func(uint64, *raftpb.Message) {}
	cfgA.Peers, cfgA.Logger = map[int32]string{1: lnB.Addr().String()}, discardLogger()
	ta, err := New(cfgA)
	if err != nil {
		b.Fatal(err)
	}
	defer ta.Close()
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	for range b.N {
		res := make(chan error, 1)
		ta.SendSnapshot(7, snapMsg(0, 1, 9), &sliceSource{data: payload, chunk: 4 << 20}, func(err error) { res <- err })
		if err := <-res; err != nil {
			b.Fatal(err)
		}
		if got.n != int64(len(payload)) {
			b.Fatalf("sink got %d bytes", got.n)
		}
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// gatedSource yields one chunk, then waits for release before its end.
type gatedSource struct {
	sent    bool
	release chan struct{}
}

func (s *gatedSource) Next() ([]byte, error) {
	if !s.sent {
		s.sent = true
		return []byte("chunk"), nil
	}
	<-s.release
	return nil, io.EOF
}

func (s *gatedSource) Close() {}

// MaxSnapshotStreams bounds the streams a node sends at once: with 1, a
// second stream waits (it has not reached the receiver while the first
// is held open) and goes once the first ends.
func TestSnapshotStreamsBounded(t *testing.T) {
	noLeak(t)
	k := &sinks{}
	lnB := listen(t, "")
	start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, SnapshotSink: k.sink})
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()}, MaxSnapshotStreams: 1})
	first := &gatedSource{release: make(chan struct{})}
	var once sync.Once
	release := func() { once.Do(func() { close(first.release) }) }
	t.Cleanup(release) // before the transports close (cleanups run in reverse)
	res := make(chan error, 2)
	a.SendSnapshot(7, snapMsg(0, 1, 9), first, func(err error) { res <- err })
	waitFor(t, "the first stream's chunk", func() bool {
		s := k.last()
		if s == nil {
			return false
		}
		_, _, n := s.state()
		return n > 0
	})
	a.SendSnapshot(8, snapMsg(0, 1, 10), &sliceSource{data: []byte("second"), chunk: 6}, func(err error) { res <- err })
	// The second stream waits for the only slot, which the first holds:
	// queued, and nothing of it reached the receiver.
	waitFor(t, "the second stream queued", func() bool { return a.Stats().SnapshotsQueued == 1 })
	k.mu.Lock()
	n := len(k.all)
	k.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d streams reached the receiver with one slot", n)
	}
	release()
	for range 2 {
		if err := <-res; err != nil {
			t.Fatal(err)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.all) != 2 {
		t.Fatalf("%d streams received, want 2", len(k.all))
	}
}
