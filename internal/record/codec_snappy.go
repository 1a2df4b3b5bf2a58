package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/klauspost/compress/snappy"
)

// Kafka's Java client writes snappy with xerial's SnappyOutputStream:
//
//	+----------------------------+-------------+----------------+
//	| 0x82 "SNAPPY" 0x00 (8)     | version (4) | compatible (4) |  header, int32 BE, both 1
//	+----------------------------+-------------+----------------+
//	| chunk length (int32 BE)    | snappy block of that length  |  repeated to the end
//	+----------------------------+------------------------------+
//
// Other clients (librdkafka, franz-go, Sarama) write one raw snappy block.
// Readers tell them apart by the magic, as xerial's SnappyInputStream does.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const (
	xerialHeaderSize = 16
	xerialVersion    = 1
	xerialCompatible = 1
	// xerialChunk is the uncompressed size of a chunk, SnappyOutputStream's
	// default block size.
	xerialChunk = 32 << 10
)

func compressXerial(dst, src []byte) []byte {
	dst = append(dst, xerialMagic...)
	dst = binary.BigEndian.AppendUint32(dst, xerialVersion)
	dst = binary.BigEndian.AppendUint32(dst, xerialCompatible)
	for len(src) > 0 {
		n := min(len(src), xerialChunk)
		at := len(dst)
		need := snappy.MaxEncodedLen(n)
		dst = slices.Grow(dst, 4+need)[:at+4]
		// Encode writes in place when given room for its worst case; the
		// append is then a no-op copy.
		enc := snappy.Encode(dst[at+4:at+4+need], src[:n])
		binary.BigEndian.PutUint32(dst[at:], uint32(len(enc)))
		dst = append(dst[:at+4], enc...)
		src = src[n:]
	}
	return dst
}

func decompressSnappy(src []byte, maxSize int, ob *outBuf) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) || len(src) < xerialHeaderSize {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > maxSize {
			return nil, errTooLarge(maxSize)
		}
		return decodeSnappyBlock(ob.get(n)[:n], src)
	}
	// Two passes: sum the declared sizes of the chunks (a varint at the
	// start of each block) and check them against the cap, then allocate
	// once and decode.
	total := 0
	err := walkXerial(src, func(block []byte) error {
		n, err := snappy.DecodedLen(block)
		if err != nil {
			return err
		}
		if n > maxSize-total {
			return errTooLarge(maxSize)
		}
		total += n
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := ob.get(total)[:0:total]
	err = walkXerial(src, func(block []byte) error {
		d, err := decodeSnappyBlock(out[len(out):cap(out)], block)
		if err != nil {
			return err
		}
		out = out[:len(out)+len(d)]
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// decodeSnappyBlock decodes one standard snappy block into dst (which must
// have room for its declared length). It is snappy.DecodeStrict, faster:
// s2's assembly decoder (snappy.Decode) decodes every snappy block the same
// way, and accepts one thing more, s2's "repeat" (a copy whose offset is
// 0), which snappyNoRepeat refuses first by walking the block's tags
// without decoding. DecodeStrict, pure Go, was 60% of the broker's CPU in
// a produce of snappy batches; the walk and the assembly decoder cost
// about half as much (BenchmarkValidateBatch/snappy-raw).
func decodeSnappyBlock(dst, src []byte) ([]byte, error) {
	if err := snappyNoRepeat(src); err != nil {
		return nil, err
	}
	return snappy.Decode(dst, src)
}

// snappyNoRepeat walks a snappy block's elements (a literal's bytes are
// skipped, not read) and refuses a copy with offset 0, which standard
// snappy forbids and s2 reads as "repeat the last offset". Bounds beyond
// the walk itself (copies before the start, lengths past the declared
// size) are the decoder's to check.
func snappyNoRepeat(src []byte) error {
	_, n := binary.Uvarint(src)
	if n <= 0 {
		return fmt.Errorf("snappy block header: %w", ErrCorrupt)
	}
	for s := n; s < len(src); {
		tag := src[s]
		var offset uint32
		switch tag & 0x03 {
		case 0x00: // literal
			x := uint32(tag >> 2)
			switch {
			case x < 60:
				s++
			case x == 60:
				if s+2 > len(src) {
					return fmt.Errorf("snappy literal length: %w", ErrCorrupt)
				}
				x = uint32(src[s+1])
				s += 2
			case x == 61:
				if s+3 > len(src) {
					return fmt.Errorf("snappy literal length: %w", ErrCorrupt)
				}
				x = uint32(binary.LittleEndian.Uint16(src[s+1:]))
				s += 3
			case x == 62:
				if s+4 > len(src) {
					return fmt.Errorf("snappy literal length: %w", ErrCorrupt)
				}
				x = uint32(src[s+1]) | uint32(src[s+2])<<8 | uint32(src[s+3])<<16
				s += 4
			default:
				if s+5 > len(src) {
					return fmt.Errorf("snappy literal length: %w", ErrCorrupt)
				}
				x = binary.LittleEndian.Uint32(src[s+1:])
				s += 5
			}
			if uint64(x)+1 > uint64(len(src)-s) {
				return fmt.Errorf("snappy literal of %d bytes past the block: %w", uint64(x)+1, ErrCorrupt)
			}
			s += int(x) + 1
			continue
		case 0x01:
			if s+2 > len(src) {
				return fmt.Errorf("snappy copy: %w", ErrCorrupt)
			}
			offset = uint32(tag&0xe0)<<3 | uint32(src[s+1])
			s += 2
		case 0x02:
			if s+3 > len(src) {
				return fmt.Errorf("snappy copy: %w", ErrCorrupt)
			}
			offset = uint32(binary.LittleEndian.Uint16(src[s+1:]))
			s += 3
		case 0x03:
			if s+5 > len(src) {
				return fmt.Errorf("snappy copy: %w", ErrCorrupt)
			}
			offset = binary.LittleEndian.Uint32(src[s+1:])
			s += 5
		}
		if offset == 0 {
			return fmt.Errorf("snappy copy with offset 0 (s2's repeat, not snappy): %w", ErrCorrupt)
		}
	}
	return nil
}

// walkXerial calls fn with each chunk's snappy block. A header repeated
// mid-stream (concatenated streams) is skipped, as xerial's reader does.
func walkXerial(src []byte, fn func(block []byte) error) error {
	r := reader{b: src}
	for r.remaining() > 0 {
		if bytes.HasPrefix(r.b, xerialMagic) {
			r.span(xerialHeaderSize)
			continue
		}
		n := r.int32()
		block := r.span(int(n))
		if !r.ok() {
			return fmt.Errorf("xerial chunk of %d bytes: %w", n, ErrCorrupt)
		}
		if err := fn(block); err != nil {
			return err
		}
	}
	if !r.ok() {
		return fmt.Errorf("truncated xerial header: %w", ErrCorrupt)
	}
	return nil
}
