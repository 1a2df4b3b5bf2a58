package group

import "time"

// Clock is the coordinator's source of time: session and rebalance
// timeouts, the initial rebalance delay, commit timestamps and offset
// expiry all read it. Tests inject their own, or run the real one inside a
// testing/synctest bubble where time is fake.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has passed, unless the
	// returned Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it
	// did. A call already started still runs: callers guard with a token.
	Stop() bool
}

// SystemClock is the wall clock (time.Now, time.AfterFunc).
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc is time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
