package record

import (
	"encoding/binary"
	"math"
)

// reader decodes big-endian integers, Kafka varints and length-prefixed byte
// strings from a byte slice without ever panicking. A read past the end (or
// of a malformed varint or length) marks the reader bad; from then on every
// read returns a zero value. Callers decode a whole structure and check ok or
// complete once at the end, which keeps the decoders free of per-field error
// plumbing.
//
// Byte slices returned alias the input and are capped (three-index slices),
// so a caller appending to one cannot overwrite the bytes that follow it.
type reader struct {
	b   []byte
	bad bool
}

// emptyBytes is returned for zero-length, non-null byte strings, so that they
// stay distinguishable from null (nil) ones whatever the input slice was.
var emptyBytes = []byte{}

func (r *reader) fail() {
	r.bad = true
	r.b = nil
}

// ok reports whether no read has failed so far.
func (r *reader) ok() bool { return !r.bad }

// complete reports whether every read succeeded and all input was consumed.
func (r *reader) complete() bool { return !r.bad && len(r.b) == 0 }

func (r *reader) remaining() int { return len(r.b) }

// span returns the next n bytes. n is checked against what remains before
// anything is sliced, so a hostile length can never cause an allocation or a
// panic.
func (r *reader) span(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.fail()
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) int8() int8 {
	s := r.span(1)
	if s == nil {
		return 0
	}
	return int8(s[0])
}

func (r *reader) uint32() uint32 {
	s := r.span(4)
	if s == nil {
		return 0
	}
	return binary.BigEndian.Uint32(s)
}

func (r *reader) int32() int32 { return int32(r.uint32()) }

// uint64LE reads a little-endian uint64 (LZ4 frames).
func (r *reader) uint64LE() uint64 {
	s := r.span(8)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(s)
}

// uint32LE reads a little-endian uint32 (LZ4 frames).
func (r *reader) uint32LE() uint32 {
	s := r.span(4)
	if s == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(s)
}

func (r *reader) int64() int64 {
	s := r.span(8)
	if s == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(s))
}

// varint32 reads a zigzag varint that must fit in 32 bits and take at most
// five bytes, as Kafka's ByteUtils.readVarint requires.
func (r *reader) varint32() int32 {
	if r.bad {
		return 0
	}
	u, n := binary.Uvarint(r.b)
	if n <= 0 || n > binary.MaxVarintLen32 || u > math.MaxUint32 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	x := uint32(u)
	return int32(x>>1) ^ -int32(x&1)
}

// varint64 reads a zigzag varint of at most ten bytes.
func (r *reader) varint64() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

// lenBytes returns a byte string whose length n was already read: -1 is null
// (nil), any other negative length is malformed.
func (r *reader) lenBytes(n int64) []byte {
	switch {
	case r.bad:
		return nil
	case n == -1:
		return nil
	case n < -1 || n > int64(len(r.b)):
		r.fail()
		return nil
	case n == 0:
		return emptyBytes
	}
	return r.span(int(n))
}

// varBytes reads a varint-length-prefixed byte string (record v2 keys,
// values and header values).
func (r *reader) varBytes() []byte { return r.lenBytes(int64(r.varint32())) }

// bytes32 reads an int32-length-prefixed byte string (message v0/v1 keys and
// values).
func (r *reader) bytes32() []byte { return r.lenBytes(int64(r.int32())) }
