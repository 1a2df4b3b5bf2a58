package replica

import (
	"sync"

	"go.etcd.io/raft/v3/raftpb"
)

// inboxMax bounds the messages waiting for a replica's goroutine: Step
// drops the next ones (raft retries).
const inboxMax = 4096

// inboxKeep is the largest ring an empty inbox keeps; a larger one (a
// burst) is given back, so an idle replica holds no more than this.
const inboxKeep = 16

// inbox is a replica's queue of messages from the transport: a FIFO ring
// that grows on demand up to inboxMax and shrinks when it empties, and a
// one-slot channel that wakes the goroutine. It replaced a
// make(chan *raftpb.Message, 4096): 32 KiB per replica whether it held
// anything or not, a third of a broker's heap with 10,000 idle replicas,
// all of it scanned by the garbage collector (issue 18).
//
// Any goroutine may push; one goroutine (the replica's) pops. ready holds
// a token whenever the queue may hold messages the consumer has not been
// told about: push puts one when the queue goes from empty to non-empty,
// and the consumer, which takes the token, puts it back (rearm) when it
// stops popping with messages left. A token with nothing behind it (the
// consumer popped them first) is harmless: pop returns nil.
type inbox struct {
	mu struct {
		sync.Mutex
		ring    []*raftpb.Message // len is 0 or a power of two
		head, n int
	}
	ready chan struct{} // buffered(1)
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

// push queues m; false (nothing queued) when the inbox is full. It never
// blocks on the consumer.
func (q *inbox) push(m *raftpb.Message) bool {
	q.mu.Lock()
	n := q.mu.n
	if n == inboxMax {
		q.mu.Unlock()
		return false
	}
	if n == len(q.mu.ring) {
		q.growLocked()
	}
	q.mu.ring[(q.mu.head+n)&(len(q.mu.ring)-1)] = m
	q.mu.n++
	q.mu.Unlock()
	if n == 0 {
		q.signal()
	}
	return true
}

// growLocked doubles the ring (4 slots at first), keeping the order.
func (q *inbox) growLocked() {
	old := q.mu.ring
	ring := make([]*raftpb.Message, max(4, 2*len(old)))
	for i := 0; i < q.mu.n; i++ {
		ring[i] = old[(q.mu.head+i)&(len(old)-1)]
	}
	q.mu.ring, q.mu.head = ring, 0
}

// pop takes the oldest message; nil when the inbox is empty. Called by
// the replica's goroutine only.
func (q *inbox) pop() *raftpb.Message {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.mu.n == 0 {
		return nil
	}
	m := q.mu.ring[q.mu.head]
	q.mu.ring[q.mu.head] = nil // the message is the goroutine's now, not the ring's
	q.mu.head = (q.mu.head + 1) & (len(q.mu.ring) - 1)
	q.mu.n--
	if q.mu.n == 0 {
		q.mu.head = 0
		if len(q.mu.ring) > inboxKeep {
			q.mu.ring = nil
		}
	}
	return m
}

// rearm puts the token back when messages are left: the consumer stopped
// popping before the queue was empty.
func (q *inbox) rearm() {
	q.mu.Lock()
	left := q.mu.n > 0
	q.mu.Unlock()
	if left {
		q.signal()
	}
}

// len is the number of messages queued.
func (q *inbox) len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.mu.n
}

func (q *inbox) signal() {
	select {
	case q.ready <- struct{}{}:
	default: // a token is there already
	}
}
