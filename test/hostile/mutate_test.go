package hostile

import (
	"encoding/binary"
	"math/rand/v2"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// mutator turns seeds into hostile byte streams for one connection.
type mutator struct {
	rng   *rand.Rand
	seeds []seed
	// tame neutralises forged tagged-field counts in flexible-version
	// frames (see tameFlexible); off once kmsg decodes them in bounded
	// time.
	tame bool
}

// interesting are values that sit on the edges of length and count fields.
var interesting = []uint32{0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 1 << 20, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff}

// stream returns what one connection sends: one to three frames, each a
// seed, a mutated seed, a seed with a large garbage body, or random bytes.
// The first frames are often valid, so the connection has done real work
// when the bad one arrives.
func (m *mutator) stream() []byte {
	var out []byte
	n := 1 + m.rng.IntN(3)
	for i := range n {
		last := i == n-1
		switch r := m.rng.IntN(100); {
		case !last && r < 50:
			out = append(out, m.pick().frame...)
		case r < 5:
			out = append(out, m.random()...)
		case r < 8:
			out = append(out, m.bigBody()...)
		default:
			out = append(out, m.mutate(m.pick().frame)...)
		}
	}
	if m.tame {
		out = tameFlexible(out)
	}
	return out
}

func (m *mutator) pick() seed { return m.seeds[m.rng.IntN(len(m.seeds))] }

// mutate applies one to four mutations to a copy of frame; afterwards the
// size prefix is usually made to match the new length, so the frame gets
// past the size check to the decoder.
func (m *mutator) mutate(frame []byte) []byte {
	b := append([]byte(nil), frame...)
	fixSize := m.rng.IntN(4) != 0
	for range 1 + m.rng.IntN(4) {
		if len(b) < 5 {
			b = append(b, m.bytes(8)...)
		}
		switch m.rng.IntN(9) {
		case 0: // bit flips
			for range 1 + m.rng.IntN(8) {
				i := m.rng.IntN(len(b))
				b[i] ^= 1 << m.rng.IntN(8)
			}
		case 1: // a byte set to an edge value
			i := m.rng.IntN(len(b))
			b[i] = []byte{0, 0x01, 0x7f, 0x80, 0xff}[m.rng.IntN(5)]
		case 2: // an int16 or int32 field set to an edge value, aligned anywhere
			v := interesting[m.rng.IntN(len(interesting))]
			if i := 4 + m.rng.IntN(len(b)-4); m.rng.IntN(2) == 0 && i+2 <= len(b) {
				binary.BigEndian.PutUint16(b[i:], uint16(v))
			} else if i+4 <= len(b) {
				binary.BigEndian.PutUint32(b[i:], v)
			}
		case 3: // truncated: the server waits for the rest, then sees us go
			b = b[:m.rng.IntN(len(b))]
			fixSize = false
		case 4: // the size prefix says anything
			binary.BigEndian.PutUint32(b, interesting[m.rng.IntN(len(interesting))]+uint32(m.rng.IntN(3))-1)
			fixSize = false
		case 5: // garbage inserted
			i := m.rng.IntN(len(b) + 1)
			b = append(b[:i], append(m.bytes(1+m.rng.IntN(64)), b[i:]...)...)
		case 6: // a range removed
			i := m.rng.IntN(len(b))
			j := min(len(b), i+1+m.rng.IntN(16))
			b = append(b[:i], b[j:]...)
		case 7: // a range of another seed spliced in
			o := m.pick().frame
			i, j := m.rng.IntN(len(b)), m.rng.IntN(len(o))
			b = append(b[:i], o[j:min(len(o), j+1+m.rng.IntN(32))]...)
		case 8: // a byte run repeated
			i := m.rng.IntN(len(b))
			j := min(len(b), i+1+m.rng.IntN(8))
			run := append([]byte(nil), b[i:j]...)
			for range 1 + m.rng.IntN(16) {
				b = append(b[:j], append(run, b[j:]...)...)
			}
		}
	}
	if fixSize && len(b) >= 4 {
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	}
	return b
}

// random is pure noise, half the time behind a size prefix that matches.
func (m *mutator) random() []byte {
	b := m.bytes(1 + m.rng.IntN(512))
	if m.rng.IntN(2) == 0 && len(b) >= 4 {
		binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	}
	return b
}

// bigBody is a produce frame whose records are up to 4 MiB of noise: a frame
// that is large for real, which the request budget has to account for.
func (m *mutator) bigBody() []byte {
	var s seed
	for s = m.pick(); s.key != 0; s = m.pick() {
	}
	b := append([]byte(nil), s.frame...)
	b = append(b, m.bytes(1+m.rng.IntN(4<<20))...)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func (m *mutator) bytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], m.rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

// tameFlexible walks the frames of a stream as the server will and, in each
// frame of a flexible version (by its key and version), zeroes the first
// byte of every unsigned varint that claims more than the bytes after it
// (plus 64 KiB), scanning from the end so a varint that spans a changed byte
// is judged after the change. Only such a varint, read as a tagged-field
// count, makes kmsg v1.15.0 loop once per claimed field after its input ran
// out (a minute of CPU for 2^32-1); a count up to the bytes left costs at
// most an iteration per byte. Frames of other versions, and a stream's
// incomplete last frame, are left alone.
func tameFlexible(stream []byte) []byte {
	for p := 0; p+4 <= len(stream); {
		size := int(int32(binary.BigEndian.Uint32(stream[p:])))
		if size < 0 || p+4+size > len(stream) {
			break
		}
		frame := stream[p+4 : p+4+size]
		if len(frame) >= 4 && flexible(int16(binary.BigEndian.Uint16(frame)), int16(binary.BigEndian.Uint16(frame[2:]))) {
			for i := len(frame) - 1; i >= 8; i-- {
				if v, rest, ok := uvarint(frame[i:]); ok && v > uint64(rest)+1<<16 {
					frame[i] = 0
				}
			}
		}
		p += 4 + size
	}
	return stream
}

func flexible(key, version int16) bool {
	r := kmsg.RequestForKey(key)
	if r == nil || version < 0 || version > r.MaxVersion() {
		return false
	}
	r.SetVersion(version)
	return r.IsFlexible()
}

// uvarint decodes an unsigned varint of up to 5 bytes and returns it with
// the number of bytes after it.
func uvarint(b []byte) (v uint64, rest int, ok bool) {
	for i := 0; i < 5 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, len(b) - i - 1, true
		}
	}
	return 0, 0, false
}

// kmsgBoundsTagCounts reports whether kmsg stops reading a tagged-field
// section once its input is exhausted. It decodes a CreatePartitions v3 body
// whose tagged-field count is 2^20 with nothing after it: kmsg v1.15.0 loops
// for every claimed field (15ms at least, 30ms here, 130ms under -race), a
// kmsg that stops early takes microseconds. Three tries, so one preemption
// cannot make a fixed kmsg look broken.
func kmsgBoundsTagCounts() bool {
	body := []byte{0x01, 0, 0, 0x03, 0xe8, 0} // no topics, timeout 1000, validateOnly false
	body = binary.AppendUvarint(body, 1<<20)
	for range 3 {
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.SetVersion(3)
		start := time.Now()
		r.ReadFrom(body)
		if time.Since(start) < 5*time.Millisecond {
			return true
		}
	}
	return false
}
