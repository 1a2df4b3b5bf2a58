package record

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"sync"

	"github.com/pierrec/lz4/v4"
)

// The LZ4 frame format (lz4_Frame_format.md in the LZ4 repository) is
// written and read here, around pierrec/lz4's block codec: that keeps the
// decompressed size under our control block by block (the output buffer is
// the only large allocation) and lets v0 message sets use Kafka's broken
// header checksum.
//
//	+-----------+-----+----+-----------------+------------+----+
//	| magic (4) | FLG | BD | content size (8)| dict ID (4)| HC |   header; sizes optional per FLG
//	+-----------+-----+----+-----------------+------------+----+
//	| block size (4, LE; high bit: stored uncompressed) | data | block checksum (4) |  repeated
//	+---------------------------------------------------+------+--------------------+
//	| end mark: 0 (4) | content checksum (4, optional)  |
//	+-----------------+---------------------------------+
//
// FLG: bits 7-6 version (01), 5 block independence, 4 block checksum,
// 3 content size, 2 content checksum, 0 dict ID. BD: bits 6-4 block
// maximum size (4: 64 KiB .. 7: 4 MiB).
//
// HC is the second byte of the XXH32 (seed 0) of the descriptor, FLG through
// dict ID. Kafka before 0.10 computed it over the magic number as well
// (KAFKA-3160); Kafka still writes it that way in magic v0 message sets and
// ignores it when reading them.
//
// The block and content checksums are skipped, not verified: the batch or
// message CRC already covers every compressed byte, and Kafka's own reader
// does not check the content checksum either.
const (
	lz4FrameMagic     = 0x184D2204
	lz4SkippableMagic = 0x184D2A50 // low four bits free
	lz4FlagVersion    = 0x40
	lz4FlagIndep      = 0x20
	lz4FlagBlockSum   = 0x10
	lz4FlagContentLen = 0x08
	lz4FlagContentSum = 0x04
	lz4FlagDictID     = 0x01
	lz4Uncompressed   = 1 << 31
	lz4WriteBlock     = 64 << 10 // KafkaLZ4BlockOutputStream's block size
	lz4Window         = 64 << 10
)

var lz4Compressors = sync.Pool{New: func() any { return new(lz4.Compressor) }}

// compressLZ4 writes one frame of independent 64 KiB blocks without
// checksums or content size, the frame KafkaLZ4BlockOutputStream writes.
func compressLZ4(dst, src []byte) ([]byte, error) {
	c := lz4Compressors.Get().(*lz4.Compressor)
	defer lz4Compressors.Put(c)
	return lz4Frame(dst, src, c)
}

// lz4DefaultLevel is compression.lz4.level's default; Kafka compresses
// with lz4-java's fast compressor at it and with its high-compression one
// at any other level, as compressLZ4Level does.
const lz4DefaultLevel = 9

// compressLZ4Level is compressLZ4 at compression.lz4.level (1-17): the
// fast compressor at the default (9), else pierrec's high-compression
// compressor, whose search depths 1-9 take Kafka's levels two by two (1-2
// the shallowest, 17 the deepest).
func compressLZ4Level(dst, src []byte, level int) ([]byte, error) {
	if level == lz4DefaultLevel {
		return compressLZ4(dst, src)
	}
	depth := min(max((level+1)/2, 1), 9)
	p, _ := lz4HCCompressors.LoadOrStore(depth, &sync.Pool{New: func() any {
		return &lz4.CompressorHC{Level: lz4.Level1 << (depth - 1)}
	}})
	c := p.(*sync.Pool).Get().(*lz4.CompressorHC)
	defer p.(*sync.Pool).Put(c)
	return lz4Frame(dst, src, c)
}

var lz4HCCompressors sync.Map // search depth 1-9 -> *sync.Pool of *lz4.CompressorHC

// lz4Frame appends one LZ4 frame of src, its blocks compressed by c.
func lz4Frame(dst, src []byte, c interface {
	CompressBlock(src, dst []byte) (int, error)
}) ([]byte, error) {
	dst = binary.LittleEndian.AppendUint32(dst, lz4FrameMagic)
	desc := []byte{lz4FlagVersion | lz4FlagIndep, 4 << 4}
	dst = append(dst, desc...)
	dst = append(dst, lz4HeaderChecksum(desc))
	for len(src) > 0 {
		n := min(len(src), lz4WriteBlock)
		at := len(dst)
		// Room for the stored form only: the compressor gives up (k == 0)
		// as soon as compressing does not pay.
		dst = slices.Grow(dst, 4+n)[:at+4+n]
		k, err := c.CompressBlock(src[:n], dst[at+4:])
		if err != nil || k == 0 || k >= n {
			binary.LittleEndian.PutUint32(dst[at:], uint32(n)|lz4Uncompressed)
			dst = append(dst[:at+4], src[:n]...)
		} else {
			binary.LittleEndian.PutUint32(dst[at:], uint32(k))
			dst = dst[:at+4+k]
		}
		src = src[n:]
	}
	return binary.LittleEndian.AppendUint32(dst, 0), nil
}

// decompressLZ4 decodes a sequence of LZ4 frames (and skippable frames).
// anyHeaderChecksum accepts any header checksum, as Kafka does for v0;
// otherwise the correct one and the KAFKA-3160 one are accepted.
//
// It makes one pass, decoding each block into the room left in the output
// (a guess from the compressed size at first). A block that does not fit
// is measured without decoding (lz4BlockLen) and refused if it would take
// the output past maxSize, so a bomb costs at most what a legitimate batch
// of maxSize bytes does: the output never grows past the cap. (It used to
// measure every block first, failing a bomb before allocating anything,
// but that pass cost as much CPU as the decoding.)
func decompressLZ4(src []byte, maxSize int, anyHeaderChecksum bool, ob *outBuf) ([]byte, error) {
	// One pass: each block decodes into the room left in out, a guess
	// from the compressed size; a block that does not fit is measured
	// (lz4BlockLen), checked against the cap, and decoded again into a
	// grown buffer. Measuring every block first, to allocate exactly, cost
	// as much CPU as decoding them (a third of the broker's in an lz4
	// produce).
	out := ob.get(min(maxSize, max(64<<10, lz4Guess*len(src))))
	_, err := walkLZ4(src, maxSize, anyHeaderChecksum, func(data []byte, stored, dependent bool) (int, error) {
		if stored {
			if len(data) > maxSize-len(out) {
				return 0, errTooLarge(maxSize)
			}
			if len(data) > cap(out)-len(out) {
				out = ob.grow(out, len(out)+len(data))
			}
			out = append(out, data...)
			return len(data), nil
		}
		for grown := false; ; grown = true {
			var dict []byte
			if dependent {
				dict = out[max(0, len(out)-lz4Window):]
			}
			n, err := lz4.UncompressBlockWithDict(data, out[len(out):cap(out)], dict)
			if err == nil {
				out = out[:len(out)+n]
				return n, nil
			}
			need := lz4BlockLen(data)
			if grown || need < 0 || need <= cap(out)-len(out) {
				return 0, fmt.Errorf("block: %w", ErrCorrupt)
			}
			if need > maxSize-len(out) {
				return 0, errTooLarge(maxSize)
			}
			out = ob.grow(out, len(out)+need)
		}
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// lz4Guess is the first guess of the decompressed size of an LZ4 payload
// per compressed byte (text and JSON compress 3-5x); a bigger payload
// grows the buffer once per block that does not fit.
const lz4Guess = 6

// walkLZ4 walks the frames of src, checking their headers, and calls block
// for each block (stored uncompressed or not; compressed blocks may refer to
// earlier output if dependent), which returns the block's decoded size. It
// returns the total size, failing with ErrTooLarge past maxSize and with
// ErrCorrupt if a frame's declared content size is wrong.
func walkLZ4(src []byte, maxSize int, anyHeaderChecksum bool, block func(data []byte, stored, dependent bool) (int, error)) (int, error) {
	r := reader{b: src}
	total := 0
	for r.remaining() > 0 {
		magic := r.uint32LE()
		if magic&^0xF == lz4SkippableMagic {
			if r.span(int(r.uint32LE())); !r.ok() {
				return 0, fmt.Errorf("truncated skippable frame: %w", ErrCorrupt)
			}
			continue
		}
		if magic != lz4FrameMagic {
			return 0, fmt.Errorf("frame magic %#08x: %w", magic, ErrCorrupt)
		}

		descAt := len(src) - r.remaining()
		flg := byte(r.int8())
		bd := byte(r.int8())
		var declared uint64
		if flg&lz4FlagContentLen != 0 {
			declared = r.uint64LE()
		}
		if flg&lz4FlagDictID != 0 {
			return 0, fmt.Errorf("frame needs a dictionary: %w", ErrCorrupt)
		}
		hc := byte(r.int8())
		if !r.ok() {
			return 0, fmt.Errorf("truncated frame header: %w", ErrCorrupt)
		}
		desc := src[descAt : len(src)-r.remaining()-1]
		if flg&0xC0 != lz4FlagVersion || flg&0x02 != 0 || bd&0x8F != 0 || bd>>4 < 4 {
			return 0, fmt.Errorf("frame descriptor %x: %w", desc, ErrCorrupt)
		}
		if !anyHeaderChecksum && hc != lz4HeaderChecksum(desc) && hc != lz4HeaderChecksum(src[descAt-4:descAt+len(desc)]) {
			return 0, fmt.Errorf("frame header checksum %#02x: %w", hc, ErrCorrupt)
		}
		if flg&lz4FlagContentLen != 0 && declared > uint64(maxSize-total) {
			return 0, errTooLarge(maxSize)
		}
		blockMax := 1 << (8 + 2*(bd>>4)) // 64 KiB, 256 KiB, 1 MiB, 4 MiB
		frameStart := total
		for {
			size := r.uint32LE()
			if !r.ok() {
				return 0, fmt.Errorf("truncated frame: %w", ErrCorrupt)
			}
			if size == 0 {
				break
			}
			stored := size&lz4Uncompressed != 0
			size &^= lz4Uncompressed
			if size > uint32(blockMax) {
				return 0, fmt.Errorf("block of %d bytes, maximum %d: %w", size, blockMax, ErrCorrupt)
			}
			data := r.span(int(size))
			if flg&lz4FlagBlockSum != 0 {
				r.span(4)
			}
			if !r.ok() {
				return 0, fmt.Errorf("truncated block: %w", ErrCorrupt)
			}
			n, err := block(data, stored, flg&lz4FlagIndep == 0)
			if err != nil {
				return 0, err
			}
			if n > blockMax {
				return 0, fmt.Errorf("block decodes to %d bytes, maximum %d: %w", n, blockMax, ErrCorrupt)
			}
			if n > maxSize-total {
				return 0, errTooLarge(maxSize)
			}
			total += n
		}
		if flg&lz4FlagContentSum != 0 {
			if r.span(4); !r.ok() {
				return 0, fmt.Errorf("truncated content checksum: %w", ErrCorrupt)
			}
		}
		if flg&lz4FlagContentLen != 0 && uint64(total-frameStart) != declared {
			return 0, fmt.Errorf("frame of %d bytes declares %d: %w", total-frameStart, declared, ErrCorrupt)
		}
	}
	return total, nil
}

// lz4BlockLen returns the decoded size of an LZ4 block by walking its
// sequences without decoding them, or -1 if the block is malformed. Each
// sequence is a token (literal length and match length nibbles, 15 meaning
// more length bytes follow, each 255 meaning more again), the literals, and
// unless it is the last one a two-byte offset and the match length extension.
func lz4BlockLen(b []byte) int {
	n, i := 0, 0
	extend := func(l int) int {
		for {
			if i >= len(b) {
				return -1
			}
			c := b[i]
			i++
			l += int(c)
			if c != 255 {
				return l
			}
		}
	}
	for i < len(b) {
		tok := b[i]
		i++
		lit := int(tok >> 4)
		if lit == 15 {
			if lit = extend(lit); lit < 0 {
				return -1
			}
		}
		if lit > len(b)-i {
			return -1
		}
		i += lit
		n += lit
		if i == len(b) {
			return n // the last sequence has literals only
		}
		if len(b)-i < 2 {
			return -1
		}
		i += 2
		match := int(tok & 15)
		if match == 15 {
			if match = extend(match); match < 0 {
				return -1
			}
		}
		n += match + 4
	}
	return -1 // a block ends with literals
}

// lz4DescriptorEnd returns the index of the header checksum byte of the LZ4
// frame at the start of b; ok is false if b does not start with a whole
// frame header.
func lz4DescriptorEnd(b []byte) (int, bool) {
	if len(b) < 7 || binary.LittleEndian.Uint32(b) != lz4FrameMagic {
		return 0, false
	}
	n := 6
	if b[4]&lz4FlagContentLen != 0 {
		n += 8
	}
	if b[4]&lz4FlagDictID != 0 {
		n += 4
	}
	return n, n < len(b)
}

func lz4HeaderChecksum(desc []byte) byte { return byte(xxh32(desc) >> 8) }

// breakLZ4HeaderChecksum rewrites the header checksum of the frame at the
// start of b the way Kafka writes it in v0 message sets (KAFKA-3160).
func breakLZ4HeaderChecksum(b []byte) {
	if n, ok := lz4DescriptorEnd(b); ok {
		b[n] = lz4HeaderChecksum(b[:n])
	}
}

// xxh32 is XXH32 with seed 0, from the algorithm's specification
// (xxhash_spec.md in the xxHash repository). Only frame headers are hashed,
// so it favours brevity over speed.
func xxh32(b []byte) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	round := func(acc, lane uint32) uint32 {
		return bits.RotateLeft32(acc+lane*p2, 13) * p1
	}
	n := uint32(len(b))
	var h uint32
	if len(b) >= 16 {
		// p1+p2 and -p1 wrap around 2^32.
		v1, v2, v3, v4 := uint32(606290984), p2, uint32(0), uint32(1640531535)
		for ; len(b) >= 16; b = b[16:] {
			v1 = round(v1, binary.LittleEndian.Uint32(b[0:]))
			v2 = round(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(b[12:]))
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = p5
	}
	h += n
	for ; len(b) >= 4; b = b[4:] {
		h = bits.RotateLeft32(h+binary.LittleEndian.Uint32(b)*p3, 17) * p4
	}
	for _, c := range b {
		h = bits.RotateLeft32(h+uint32(c)*p5, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}
