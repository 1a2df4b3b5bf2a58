package bufpool

import (
	"math/bits"
	"sync"
)

const (
	// MinSize is the smallest capacity kept: below it an allocation is cheap.
	MinSize = 64 << 10
	// MaxSize is the largest capacity kept: larger buffers are rare.
	MaxSize = 64 << 20
)

// classes[c] holds buffers whose capacity is at least 2^c, each behind a
// *[]byte (a sync.Pool keeps interface values: a slice itself would be
// boxed, an allocation per Put).
var classes [bits.UintSize]sync.Pool

// holders keeps the emptied *[]byte of buffers taken out of classes, for
// the next Put to carry its buffer in: steady state, Put allocates nothing.
var holders sync.Pool

// Reuse returns a kept buffer of length size, or nil when none is kept for
// that size (the caller then allocates as it sees fit, e.g. growing with
// the bytes that arrive).
func Reuse(size int) []byte {
	if size < MinSize || size > MaxSize {
		return nil
	}
	c := bits.Len(uint(size - 1)) // smallest c with 2^c >= size
	if h, ok := classes[c].Get().(*[]byte); ok {
		b := (*h)[:size]
		*h = nil // the holder must not keep the buffer alive
		holders.Put(h)
		return b
	}
	return nil
}

// Get returns a buffer of length size: a kept one, or a new one whose
// capacity is the class above size, so that it can be kept when put back.
func Get(size int) []byte {
	if b := Reuse(size); b != nil {
		return b
	}
	if size < MinSize || size > MaxSize {
		return make([]byte, size)
	}
	return make([]byte, size, RoundUp(size))
}

// RoundUp is the capacity class a buffer of size bytes is kept in: the
// power of two at or above it.
func RoundUp(size int) int {
	if size <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(size-1))
}

// Put keeps b for a later Get or Reuse; its caller must be its last user.
func Put(b []byte) {
	if cap(b) < MinSize || cap(b) > MaxSize {
		return
	}
	b = b[:cap(b)]
	if poison {
		// Doubling copies: the race detector checks a copy once, but
		// a loop once per byte, which made a 2 MiB Put take
		// milliseconds and race-build tests with many frames time out.
		b[0] = 0xa5
		for n := 1; n < len(b); n *= 2 {
			copy(b[n:], b[:n])
		}
	}
	c := bits.Len(uint(cap(b))) - 1 // largest c with 2^c <= cap
	h, _ := holders.Get().(*[]byte)
	if h == nil {
		h = new([]byte)
	}
	*h = b
	classes[c].Put(h)
}
