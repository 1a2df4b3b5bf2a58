package raftnet

import (
	"context"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// fakePeer is node 1 made of raw sockets: it accepts the transport's
// connection and dials in with a hello of its own, so the transport counts
// it Connected, and then does only what the test says.
type fakePeer struct {
	in  net.Conn // the transport's connection to it (it reads probes here)
	out net.Conn // its connection to the transport (it writes acks here)
}

func newFakePeer(t *testing.T, ln net.Listener, transportAddr string) *fakePeer {
	t.Helper()
	f := &fakePeer{}
	var err error
	if f.out, err = net.Dial("tcp", transportAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.out.Close() })
	if _, err := f.out.Write(appendHello(nil, hello{Node: 1, Incarnation: 7, Cluster: "c"})); err != nil {
		t.Fatal(err)
	}
	f.out.SetReadDeadline(time.Now().Add(10 * time.Second))
	if body, err := readFrame(f.out, handshakeMaxFrame); err != nil {
		t.Fatal(err)
	} else if v, err := decodeVerdict(body); err != nil || v.Code != verdictAccepted {
		t.Fatalf("the transport's verdict: %+v %v", v, err)
	}
	if f.in, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.in.Close() })
	f.in.SetReadDeadline(time.Now().Add(10 * time.Second))
	if body, err := readFrame(f.in, handshakeMaxFrame); err != nil {
		t.Fatal(err)
	} else if _, err := decodeHello(body); err != nil {
		t.Fatal(err)
	}
	if _, err := f.in.Write(appendVerdict(nil, verdict{Code: verdictAccepted})); err != nil {
		t.Fatal(err)
	}
	return f
}

// readProbe reads frames on in until a probe and returns its id.
func (f *fakePeer) readProbe(t *testing.T) uint64 {
	t.Helper()
	for {
		body, err := readFrame(f.in, DefaultMaxFrame)
		if err != nil {
			t.Fatalf("reading the probe: %v", err)
		}
		if body[0] == kindProbe && len(body) == probeBody {
			return binary.BigEndian.Uint64(body[1:])
		}
	}
}

// TestProbeAnsweredByALivePeer: two transports; each answers the other's
// probe within a round trip.
func TestProbeAnsweredByALivePeer(t *testing.T) {
	noLeak(t)
	lnA, lnB := listen(t, ""), listen(t, "")
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: lnA, Peers: map[int32]string{1: lnB.Addr().String()}})
	b := start(t, Config{NodeID: 1, ClusterID: "c", Listener: lnB, Peers: map[int32]string{0: lnA.Addr().String()}})
	waitFor(t, "both connected", func() bool { return a.Connected(1) && b.Connected(0) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for range 3 {
		if !a.Probe(ctx, 1) || !b.Probe(ctx, 0) {
			t.Fatal("a live peer did not answer a probe")
		}
	}
	if a.Probe(ctx, 5) {
		t.Fatal("a probe of an unknown node answered")
	}
}

// TestProbeOfAHungOrDeadPeer: a peer process that reads the probe but
// does not answer (hung) leaves the probe waiting to its deadline; one
// whose connections close while the probe waits (killed: its kernel
// closes its sockets) ends the wait at once with false; a late ack counts.
func TestProbeOfAHungOrDeadPeer(t *testing.T) {
	noLeak(t)
	lnA, lnF := listen(t, ""), listen(t, "")
	a := start(t, Config{NodeID: 0, ClusterID: "c", Listener: lnA, Peers: map[int32]string{1: lnF.Addr().String()}})
	f := newFakePeer(t, lnF, lnA.Addr().String())
	waitFor(t, "a counts the fake peer connected", func() bool { return a.Connected(1) })

	// Hung: the probe is read, never answered.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	res := make(chan bool, 1)
	start := time.Now()
	go func() { res <- a.Probe(ctx, 1) }()
	f.readProbe(t)
	if <-res {
		t.Fatal("a probe nobody answered returned true")
	}
	cancel()
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("the unanswered probe gave up after %v, before its deadline", d)
	}

	// Answered, late but within the deadline.
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { res <- a.Probe(ctx, 1) }()
	id := f.readProbe(t)
	if _, err := f.out.Write(appendProbeFrame(nil, kindProbeAck, id)); err != nil {
		t.Fatal(err)
	}
	if !<-res {
		t.Fatal("an answered probe returned false")
	}

	// Dead: the connections close while the probe waits.
	start = time.Now()
	go func() { res <- a.Probe(ctx, 1) }()
	f.readProbe(t)
	f.out.Close()
	f.in.Close()
	if <-res {
		t.Fatal("a probe of a peer whose connections closed returned true")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the probe of a gone peer took %v", d)
	}
}
