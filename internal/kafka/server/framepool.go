package server

import (
	"math/bits"
	"sync"
)

// Produce frames are the bulk of what a broker reads, and each used to be a
// fresh allocation (grown by doubling as it arrived): about 2.3 bytes
// allocated per byte produced, and the garbage collector's work with it. A
// Produce frame's bytes are dead once Handle returns (the records are in the
// log's file by then; see Handler), so the reader gives the frame back and
// the next large frame of any connection is read into it.
//
// Frames of other requests are never given back: their handlers may keep
// slices of them (JoinGroup metadata in a group, for one).

const (
	minPooledFrame = 64 << 10 // smaller frames are cheap to allocate
	maxPooledFrame = 64 << 20 // larger ones are rare; let them go
)

// framePool keeps released frames by capacity class: class c holds buffers
// whose capacity is at least 2^c.
type framePool struct {
	classes [bits.UintSize]sync.Pool
}

// get returns an empty buffer with capacity >= size, or nil when none is
// kept (the caller then allocates as the bytes arrive).
func (p *framePool) get(size int) []byte {
	if size < minPooledFrame || size > maxPooledFrame {
		return nil
	}
	c := bits.Len(uint(size - 1)) // smallest c with 2^c >= size
	if b, ok := p.classes[c].Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

// put keeps b for a later get. Under the race detector its bytes are
// overwritten first, so that a use after release shows in every test.
func (p *framePool) put(b []byte) {
	if cap(b) < minPooledFrame || cap(b) > maxPooledFrame {
		return
	}
	b = b[:cap(b)]
	if poisonReleasedFrames {
		for i := range b {
			b[i] = 0xa5
		}
	}
	c := bits.Len(uint(cap(b))) - 1 // largest c with 2^c <= cap
	p.classes[c].Put(&b)
}
