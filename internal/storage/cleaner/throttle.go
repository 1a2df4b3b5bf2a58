package cleaner

import (
	"context"
	"sync"
	"time"
)

// Throttle bounds the bytes per second the cleaners read and write
// together (log.cleaner.io.max.bytes.per.second). A nil Throttle, or one
// with a rate <= 0, never waits. Safe for concurrent use.
type Throttle struct {
	rate float64 // bytes per second

	mu    sync.Mutex
	avail time.Time // when the bytes granted so far are paid for
}

// NewThrottle makes a throttle of bytesPerSecond (<= 0 or huge: none).
func NewThrottle(bytesPerSecond float64) *Throttle {
	if bytesPerSecond >= 1e15 {
		bytesPerSecond = 0
	}
	return &Throttle{rate: bytesPerSecond}
}

// Wait takes n bytes from the budget, waiting until they are paid for or
// ctx is done.
func (t *Throttle) Wait(ctx context.Context, n int) error {
	if t == nil || t.rate <= 0 {
		return ctx.Err()
	}
	t.mu.Lock()
	now := time.Now()
	if t.avail.Before(now) {
		t.avail = now
	}
	t.avail = t.avail.Add(time.Duration(float64(n) / t.rate * float64(time.Second)))
	d := t.avail.Sub(now)
	t.mu.Unlock()
	if d <= time.Millisecond {
		return ctx.Err()
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
