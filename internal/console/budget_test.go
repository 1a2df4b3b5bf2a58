package console

import (
	"context"
	"errors"
	"testing"
	"time"
)

// acquireAsync starts acquire and returns its result.
func acquireAsync(b *byteBudget, ctx context.Context, n int64) <-chan error {
	done := make(chan error, 1)
	go func() { done <- b.acquire(ctx, n) }()
	return done
}

func waitFor(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func pending(c <-chan error) bool {
	select {
	case <-c:
		return false
	default:
		return true
	}
}

// TestByteBudgetFIFO: a large request first in line is not passed over by
// a small one that would fit; a waiter that gives up leaves the line and
// lets the next one in; release grants in arrival order.
func TestByteBudgetFIFO(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := newByteBudget(10)
	if err := b.acquire(ctx, 6); err != nil {
		t.Fatal(err)
	}
	large := acquireAsync(b, ctx, 8)
	waitFor(t, "large waiting", func() bool { _, _, n := b.stats(); return n == 1 })
	small := acquireAsync(b, ctx, 2) // fits, but large is first
	waitFor(t, "small waiting", func() bool { _, _, n := b.stats(); return n == 2 })

	// A third gives up: it leaves the line without taking anything.
	gctx, cancel := context.WithCancel(ctx)
	gaveUp := acquireAsync(b, gctx, 1)
	waitFor(t, "third waiting", func() bool { _, _, n := b.stats(); return n == 3 })
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled acquire: %v", err)
	}
	if !pending(large) || !pending(small) {
		t.Fatal("a waiter was granted while the budget was spent")
	}

	b.release(6) // large (8) fits, then small (2): 10
	if err := <-large; err != nil {
		t.Fatal(err)
	}
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if used, peak, waiting := b.stats(); used != 10 || peak != 10 || waiting != 0 {
		t.Fatalf("used %d, peak %d, waiting %d; want 10, 10, 0", used, peak, waiting)
	}
	b.release(8)
	b.release(2)
	if used, _, _ := b.stats(); used != 0 {
		t.Fatalf("used %d after every release", used)
	}
}

// TestByteBudgetUnlimited: -1 counts and never waits.
func TestByteBudgetUnlimited(t *testing.T) {
	t.Parallel()
	b := newByteBudget(-1)
	for range 3 {
		if err := b.acquire(context.Background(), 1<<40); err != nil {
			t.Fatal(err)
		}
	}
	if used, peak, _ := b.stats(); used != 3<<40 || peak != 3<<40 {
		t.Fatalf("used %d, peak %d", used, peak)
	}
}
