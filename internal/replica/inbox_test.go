package replica

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func msg(i uint64) *raftpb.Message { return &raftpb.Message{Index: proto.Uint64(i)} }

// The inbox keeps the order of the messages, takes inboxMax of them and
// refuses the next without blocking, and an emptied inbox gives its ring
// back (an idle replica holds none of a burst's memory).
func TestInboxOrderBoundAndShrink(t *testing.T) {
	q := newInbox()
	for i := range uint64(inboxMax) {
		if !q.push(msg(i)) {
			t.Fatalf("push %d refused below the bound", i)
		}
	}
	done := make(chan bool)
	go func() { done <- q.push(msg(inboxMax)) }()
	select {
	case ok := <-done:
		if ok {
			t.Fatal("a full inbox took a message")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("push blocked on a full inbox")
	}
	if n := q.len(); n != inboxMax {
		t.Fatalf("len %d, want %d", n, inboxMax)
	}
	// Interleave pops and pushes so the ring wraps around.
	next, want := uint64(inboxMax+1), uint64(0)
	for range 1000 {
		if m := q.pop(); m.GetIndex() != want {
			t.Fatalf("popped %d, want %d", m.GetIndex(), want)
		}
		want++
		if !q.push(msg(next)) {
			t.Fatal("push refused after a pop")
		}
		next++
	}
	for q.len() > 0 {
		m := q.pop()
		if want == inboxMax {
			want++ // the refused one
		}
		if m.GetIndex() != want {
			t.Fatalf("popped %d, want %d", m.GetIndex(), want)
		}
		want++
	}
	if want != next {
		t.Fatalf("popped up to %d, pushed up to %d", want, next)
	}
	if q.pop() != nil {
		t.Fatal("an empty inbox popped a message")
	}
	q.mu.Lock()
	ringLen := len(q.mu.ring)
	q.mu.Unlock()
	if ringLen > inboxKeep {
		t.Fatalf("an emptied inbox keeps a ring of %d slots", ringLen)
	}
}

// A full replica inbox drops what Step hands it, counts it, and Step
// returns at once while the goroutine is busy.
func TestStepDropsWhenInboxFull(t *testing.T) {
	g := newGroup(t, 1)
	r := g.nodes[1].r
	block, held := make(chan struct{}), make(chan struct{})
	go r.do(func() { close(held); <-block }) // the goroutine is busy
	<-held
	start := time.Now()
	for i := range uint64(inboxMax + 10) {
		r.Step(&raftpb.Message{To: proto.Uint64(99), Index: proto.Uint64(i)}) // not for it: ignored once stepped
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Step took %v on a busy replica", d)
	}
	close(block)
	if st := r.Status(); st.DroppedMessages != 10 {
		t.Fatalf("dropped %d, want 10", st.DroppedMessages)
	}
	// The goroutine works the backlog off and the inbox holds nothing.
	deadline := time.Now().Add(20 * time.Second)
	for r.in.len() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d messages left in the inbox", r.in.len())
		}
		time.Sleep(time.Millisecond)
	}
}

// Concurrent pushers and the consumer lose nothing and keep each
// pusher's order, with the consumer stopping every few messages as the
// goroutine's drain does (rearm).
func TestInboxConcurrentOrder(t *testing.T) {
	q := newInbox()
	const pushers, each = 4, 5000
	var wg sync.WaitGroup
	for p := range uint64(pushers) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range uint64(each) {
				m := &raftpb.Message{From: proto.Uint64(p), Index: proto.Uint64(i)}
				for !q.push(m) {
					runtime.Gosched() // full: this pusher retries, as raft would
				}
			}
		}()
	}
	next := make([]uint64, pushers)
	got := 0
	deadline := time.Now().Add(30 * time.Second)
	for got < pushers*each {
		select {
		case <-q.ready:
		case <-time.After(time.Until(deadline)):
			t.Fatalf("no token with %d of %d messages taken (%d queued)", got, pushers*each, q.len())
		}
		for range 7 {
			m := q.pop()
			if m == nil {
				break
			}
			if p := m.GetFrom(); m.GetIndex() != next[p] {
				t.Fatalf("pusher %d: got %d, want %d", p, m.GetIndex(), next[p])
			}
			next[m.GetFrom()]++
			got++
		}
		q.rearm()
	}
	wg.Wait()
}
