package server

import (
	"bytes"
	"testing"
)

func TestFramePoolClasses(t *testing.T) {
	var p framePool
	if p.get(1<<20) != nil {
		t.Fatal("an empty pool returned a buffer")
	}
	b := make([]byte, 3<<20/2) // 1.5 MiB: class 2^20
	p.put(b)
	if got := p.get(2 << 20); got != nil {
		t.Fatalf("a %d-byte buffer was returned for 2 MiB", cap(got))
	}
	// Kept buffers may be dropped by the garbage collector at any time, so
	// only what a returned buffer looks like is checked.
	if got := p.get(1 << 20); got != nil {
		if len(got) != 0 || cap(got) < 1<<20 {
			t.Fatalf("got len %d cap %d", len(got), cap(got))
		}
		if poisonReleasedFrames && !bytes.Equal(got[:cap(got)], bytes.Repeat([]byte{0xa5}, cap(got))) {
			t.Fatal("a released frame was not poisoned under the race detector")
		}
	}
	p.put(make([]byte, minPooledFrame-1))
	if p.get(minPooledFrame-1) != nil || p.get(maxPooledFrame+1) != nil {
		t.Fatal("sizes outside the pooled range were served")
	}
}

// TestReadFrameUsesPool: a frame read with a kept buffer lands in it.
func TestReadFrameUsesPool(t *testing.T) {
	var p framePool
	want := bytes.Repeat([]byte("x"), 100<<10)
	var sb [4]byte
	// Two frames back to back: a kept buffer larger than the first must
	// not read into the second.
	framed := append([]byte{0, 1, 0x90, 0}, want...)
	r := bytes.NewReader(bytes.Repeat(framed, 4))
	var first []byte
	reused := false
	for range 4 {
		got, err := readFrame(r, &sb, 1<<30, &p)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("readFrame: %v, %d bytes", err, len(got))
		}
		if first == nil {
			first = got
		} else {
			reused = reused || &got[0] == &first[0]
		}
		p.put(got)
	}
	// sync.Pool keeps a buffer across one GC (its victim cache), so four
	// frames in a row without a reuse means the classes do not match;
	// under the race detector it drops a random share of what it is given.
	if !reused && !poisonReleasedFrames {
		t.Fatal("no frame was reused")
	}
}
