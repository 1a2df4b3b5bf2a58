package console

import (
	"context"
	"slices"
	"sync"
)

// byteBudget bounds the bytes held by the requests in flight, first come
// first served: a request takes its whole share at once before it reads
// anything (so two half-read requests can never wait for each other), and
// a large request is never passed over by a stream of small ones.
type byteBudget struct {
	limit int64 // -1: no limit, only counted

	mu struct {
		sync.Mutex
		used, peak int64
		waiters    []*budgetWaiter // in arrival order
	}
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when granted
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// acquire takes n bytes, waiting while the budget is spent, until ctx is
// done. A share larger than the whole budget is charged as the whole budget
// (the callers keep it from happening). Every nil return is matched by one
// release(n).
func (b *byteBudget) acquire(ctx context.Context, n int64) error {
	b.mu.Lock()
	if b.limit < 0 || len(b.mu.waiters) == 0 && b.mu.used+min(n, b.limit) <= b.limit {
		b.grantLocked(n)
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.mu.waiters = append(b.mu.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	select {
	case <-w.ready: // granted meanwhile: give it back
		b.releaseLocked(n)
	default:
		b.mu.waiters = slices.DeleteFunc(b.mu.waiters, func(x *budgetWaiter) bool { return x == w })
		b.serveLocked() // the next in line may fit now
	}
	return ctx.Err()
}

// release gives back n bytes taken by acquire (or part of them).
func (b *byteBudget) release(n int64) {
	b.mu.Lock()
	b.releaseLocked(n)
	b.mu.Unlock()
}

// grantLocked charges n; mu must be held.
func (b *byteBudget) grantLocked(n int64) {
	if b.limit >= 0 {
		n = min(n, b.limit)
	}
	b.mu.used += n
	b.mu.peak = max(b.mu.peak, b.mu.used)
}

// releaseLocked gives back n and wakes the waiters that fit now; mu must
// be held.
func (b *byteBudget) releaseLocked(n int64) {
	if b.limit >= 0 {
		n = min(n, b.limit)
	}
	b.mu.used -= n
	b.serveLocked()
}

// serveLocked grants the waiters at the head of the line while they fit;
// mu must be held.
func (b *byteBudget) serveLocked() {
	for len(b.mu.waiters) > 0 {
		w := b.mu.waiters[0]
		if b.mu.used+min(w.n, b.limit) > b.limit {
			return
		}
		b.grantLocked(w.n)
		close(w.ready)
		b.mu.waiters = b.mu.waiters[1:]
	}
}
