package record

import (
	"math/bits"
	"sync"
)

// Scratch buffers for decompressed records that are only walked, never
// returned (ValidateBatch, on every produced batch). They are pooled by size
// class, powers of two from 4 KiB to 8 MiB, so a steady stream of batches of
// similar size decompresses without allocating (issue 22). Larger outputs are
// allocated and left to the GC, smaller ones go to the smallest class.
//
// The pools hold *[]byte, so that Put does not allocate a slice header;
// the holders themselves are recycled through scratchHolders.
const (
	scratchMinShift = 12
	scratchMaxShift = 23
)

var (
	scratchClasses [scratchMaxShift - scratchMinShift + 1]sync.Pool
	scratchHolders = sync.Pool{New: func() any { return new([]byte) }}
)

// getScratch returns an empty buffer with a capacity of at least n.
func getScratch(n int) []byte {
	shift := scratchMinShift
	if n > 1<<scratchMinShift {
		shift = bits.Len(uint(n - 1)) // ceil(log2(n))
	}
	if shift > scratchMaxShift {
		return make([]byte, 0, n)
	}
	if p, ok := scratchClasses[shift-scratchMinShift].Get().(*[]byte); ok {
		b := *p
		*p = nil
		scratchHolders.Put(p)
		return b[:0]
	}
	return make([]byte, 0, 1<<shift)
}

// putScratch gives b back to the class its capacity fills. The caller must
// hold no reference into b afterwards.
func putScratch(b []byte) {
	shift := bits.Len(uint(cap(b))) - 1 // floor(log2(cap))
	if shift < scratchMinShift || shift > scratchMaxShift {
		return
	}
	p := scratchHolders.Get().(*[]byte)
	*p = b[:0]
	scratchClasses[shift-scratchMinShift].Put(p)
}

// outBuf is where a decompressor writes its output. A nil *outBuf allocates
// a fresh buffer, which the caller may keep (Records, conversions); a
// non-nil one takes buffers from the scratch pool, remembers the one in use
// and gives it back on release, after which the output must not be used.
type outBuf struct {
	full []byte // the pooled buffer in use, at its full capacity
}

// get returns an empty buffer with a capacity of at least n. A buffer got
// before from the same outBuf is reused or given back: nothing decoded into
// it may be used afterwards.
func (o *outBuf) get(n int) []byte {
	if o == nil {
		return make([]byte, 0, n)
	}
	if cap(o.full) >= n {
		return o.full[:0]
	}
	o.release()
	o.full = getScratch(n)
	return o.full
}

// grow returns a buffer with a capacity of at least n holding a copy of b,
// which it may give back to the pool.
func (o *outBuf) grow(b []byte, n int) []byte {
	if o == nil {
		grown := make([]byte, len(b), n)
		copy(grown, b)
		return grown
	}
	old := o.full
	o.full = getScratch(n)
	grown := append(o.full, b...)
	putScratch(old)
	return grown
}

// release gives the buffer in use back to the pool.
func (o *outBuf) release() {
	if o == nil || o.full == nil {
		return
	}
	putScratch(o.full)
	o.full = nil
}

// recordScratch is what Recompress and DownConvert decode batches into:
// the decompressed body (an outBuf, pooled by size class), the decoded
// records, and DownConvert's inner message set, reused from batch to batch
// and, through recordScratches, from call to call, so that rebuilding a
// batch allocates nothing proportional to it but its result (issue 22).
type recordScratch struct {
	ob    outBuf
	recs  []Record // alias ob's buffer or the batch until put
	inner []byte
}

// maxPooledRecords bounds the records slice kept in a pooled scratch (a
// batch of tiny records could leave a huge one behind).
const maxPooledRecords = 64 << 10

var recordScratches = sync.Pool{New: func() any { return new(recordScratch) }}

func getRecordScratch() *recordScratch { return recordScratches.Get().(*recordScratch) }

// put gives the buffers back. The records are cleared first: they point
// into batches and decompressed bodies the pool must not keep alive.
func (s *recordScratch) put() {
	s.ob.release()
	clear(s.recs)
	s.recs = s.recs[:0]
	if cap(s.recs) > maxPooledRecords {
		s.recs = nil
	}
	if cap(s.inner) > maxPooledScratch {
		s.inner = nil
	}
	s.inner = s.inner[:0]
	recordScratches.Put(s)
}
