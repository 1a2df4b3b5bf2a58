package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// errReadStopped is returned by budget.acquire when the connection stopped
// reading (Shutdown) or closed while the reader waited for budget.
var errReadStopped = errors.New("stopped while waiting for request budget")

// budget bounds the bytes of request frames the server holds across all of
// its connections (Config.MaxQueuedRequestBytes, Kafka's
// queued.max.request.bytes). A reader charges its frame buffer before it
// allocates it, a piece at a time as the frame's bytes arrive, and gives the
// whole charge back once the request is handled. When the budget is spent,
// readers wait: they stop reading their sockets, so clients are held back by
// TCP instead of the heap growing.
//
// Waiting while holding part of a frame could wedge: many large frames half
// read, each waiting for budget the others hold. So, when a waiter cannot be
// served and no frame is overdrawing, that waiter's frame becomes the owner:
// it may read past the limit until it is complete and handled, then the
// next waiter may take its place. The server therefore holds at most
// limit + MaxRequestBytes of frames, and some reader can always finish its
// frame. Waiters are served in arrival order, so none starves.
//
// A limit of zero or less means no limit: acquire never waits.
type budget struct {
	limit int64

	mu struct {
		sync.Mutex
		used    int64
		owner   *charge // the frame allowed past the limit, nil if none
		waiters []*budgetWaiter
	}

	// Mirrors of the state above and counters, for Stats.
	used    atomic.Int64
	waiting atomic.Int64
	waits   atomic.Uint64
}

// charge is what one connection's current frame holds. Only the connection's
// reader touches held, under budget.mu.
type charge struct {
	held int64
}

type budgetWaiter struct {
	c       *charge
	n       int64
	ready   chan struct{} // closed when granted
	granted bool
}

func newBudget(limit int64) *budget { return &budget{limit: limit} }

// acquire adds n bytes to c, waiting while the budget is spent. It returns
// how long it waited, and errReadStopped if stop was closed first (then
// nothing was added for this call; what c held before is still held).
func (b *budget) acquire(c *charge, n int64, stop <-chan struct{}) (time.Duration, error) {
	if b.limit <= 0 || n <= 0 {
		return 0, nil
	}
	b.mu.Lock()
	// The owner never queues: the waiters may be waiting for it. With
	// nobody waiting, c fits, or takes the free owner slot.
	if c == b.mu.owner || len(b.mu.waiters) == 0 && (b.mu.owner == nil || b.grantableLocked(c, n)) {
		if !b.grantableLocked(c, n) {
			b.mu.owner = c
		}
		b.grantLocked(c, n)
		b.mu.Unlock()
		return 0, nil
	}
	w := &budgetWaiter{c: c, n: n, ready: make(chan struct{})}
	b.mu.waiters = append(b.mu.waiters, w)
	b.waiting.Add(1)
	b.waits.Add(1)
	b.mu.Unlock()

	start := time.Now()
	select {
	case <-w.ready:
		return time.Since(start), nil
	case <-stop:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if w.granted {
		return time.Since(start), nil // granted as we stopped: the caller releases it
	}
	for i, x := range b.mu.waiters {
		if x == w {
			b.mu.waiters = append(b.mu.waiters[:i], b.mu.waiters[i+1:]...)
			break
		}
	}
	b.waiting.Add(-1)
	b.serveLocked() // those behind w may fit now
	return time.Since(start), errReadStopped
}

// release gives back everything c holds and serves the waiters that now fit.
func (b *budget) release(c *charge) {
	if b.limit <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if c.held == 0 && b.mu.owner != c {
		return
	}
	b.mu.used -= c.held
	b.used.Add(-c.held)
	c.held = 0
	if b.mu.owner == c {
		b.mu.owner = nil
	}
	b.serveLocked()
}

// grantableLocked reports whether n more bytes for c fit. b.mu must be held.
func (b *budget) grantableLocked(c *charge, n int64) bool {
	return c == b.mu.owner || b.mu.used+n <= b.limit
}

func (b *budget) grantLocked(c *charge, n int64) {
	c.held += n
	b.mu.used += n
	b.used.Add(n)
}

// serveLocked grants waiters in order while they fit; when the first one
// does not and no frame is overdrawing, it makes that waiter's frame the
// owner. b.mu must be held.
func (b *budget) serveLocked() {
	for len(b.mu.waiters) > 0 {
		w := b.mu.waiters[0]
		if !b.grantableLocked(w.c, w.n) {
			if b.mu.owner != nil {
				return
			}
			b.mu.owner = w.c
		}
		b.grantLocked(w.c, w.n)
		w.granted = true
		close(w.ready)
		b.mu.waiters[0] = nil
		b.mu.waiters = b.mu.waiters[1:]
		b.waiting.Add(-1)
	}
}
