package raftnet

import (
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// dupRecorder records OnDuplicate's calls.
type dupRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (d *dupRecorder) on(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.errs = append(d.errs, err)
}

func (d *dupRecorder) get() []error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]error(nil), d.errs...)
}

func fastPing(c Config) Config {
	c.ClusterID, c.PingInterval, c.DuplicateWait = "c", 20*time.Millisecond, 300*time.Millisecond
	c.BackoffMin, c.BackoffMax = time.Millisecond, 20*time.Millisecond
	return c
}

// A second process with a node id whose first process is alive is refused
// by the peer, told why (the other's address), and OnDuplicate runs once;
// the first process is undisturbed.
func TestDuplicateNodeRefused(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	b := start(t, fastPing(Config{NodeID: 1, Listener: lnB}))
	peers := map[int32]string{1: lnB.Addr().String()}
	var firstDup dupRecorder
	first := start(t, fastPing(Config{NodeID: 0, Listener: listen(t, ""), Peers: peers, OnDuplicate: firstDup.on}))
	waitFor(t, "the first process connected", func() bool { return b.Connected(0) })
	var dup dupRecorder
	second := start(t, fastPing(Config{NodeID: 0, Listener: listen(t, ""), Peers: peers, OnDuplicate: dup.on}))
	waitFor(t, "the second process told", func() bool { return len(dup.get()) > 0 })
	err := dup.get()[0]
	if !errors.Is(err, ErrDuplicateNode) || !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "node.id 0 is in use by another process") {
		t.Fatalf("OnDuplicate got %v", err)
	}
	if s := second.Stats(); s.Dials != 0 {
		t.Fatalf("the second process counts an accepted connection: %+v", s)
	}
	// The first process still talks; the second is never delivered.
	for i := uint64(1); i <= 3; i++ {
		first.Send(1, msg(0, 1, i, nil))
		second.Send(1, msg(0, 1, 100+i, nil))
	}
	waitFor(t, "the first process's messages", func() bool { return b.in.count() >= 3 })
	for _, idx := range b.in.seq(1, 1) {
		if idx > 100 {
			t.Fatalf("delivered %d from the second process", idx)
		}
	}
	if n := len(firstDup.get()); n != 0 {
		t.Fatalf("the first process was told it is a duplicate")
	}
	// Told once, however often it redials and is refused.
	refused := b.Stats().Refused
	waitFor(t, "the second process refused again", func() bool { return b.Stats().Refused >= refused+2 })
	if n := len(dup.get()); n != 1 {
		t.Fatalf("OnDuplicate called %d times", n)
	}
}

// A restart is not a duplicate: the old process's connection is closed by
// its kernel (here by Close) and the new incarnation is accepted at once.
func TestRestartIsNotDuplicate(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	b := start(t, fastPing(Config{NodeID: 1, Listener: lnB}))
	peers := map[int32]string{1: lnB.Addr().String()}
	for i := 0; i < 3; i++ {
		var dup dupRecorder
		a := start(t, fastPing(Config{NodeID: 0, Listener: listen(t, ""), Peers: peers, OnDuplicate: dup.on}))
		a.Send(1, msg(0, 1, uint64(i+1), nil))
		waitFor(t, "the restarted process delivered", func() bool { return b.in.count() == i+1 })
		a.Close()
		if len(dup.get()) != 0 {
			t.Fatalf("restart %d refused as a duplicate: %v", i, dup.get())
		}
	}
}

// A process gone without its kernel closing the socket (power cut) leaves
// a silent connection: the new incarnation waits DuplicateWait, then is
// accepted and the silent connection closed.
func TestSilentOldConnectionReplaced(t *testing.T) {
	noLeak(t)
	lnB := listen(t, "")
	b := start(t, fastPing(Config{NodeID: 1, Listener: lnB}))
	old, err := net.Dial("tcp", lnB.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if _, err := old.Write(appendHello(nil, hello{Node: 0, Incarnation: 1, Cluster: "c"})); err != nil {
		t.Fatal(err)
	}
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	body, err := readFrame(old, handshakeMaxFrame)
	if v, verr := decodeVerdict(body); err != nil || verr != nil || v.Code != verdictAccepted {
		t.Fatalf("the old process's handshake: %v %v %+v", err, verr, v)
	}
	waitFor(t, "the old connection counted", func() bool { return b.Connected(0) })
	var dup dupRecorder
	a := start(t, fastPing(Config{NodeID: 0, Listener: listen(t, ""), Peers: map[int32]string{1: lnB.Addr().String()}, OnDuplicate: dup.on}))
	a.Send(1, msg(0, 1, 1, nil))
	waitFor(t, "the new process delivered", func() bool { return b.in.count() == 1 })
	if _, err := io.Copy(io.Discard, old); err != nil {
		t.Fatalf("the silent connection was not closed: %v", err)
	}
	if len(dup.get()) != 0 {
		t.Fatalf("refused as a duplicate: %v", dup.get())
	}
}
