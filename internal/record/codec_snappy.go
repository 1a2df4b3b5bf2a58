package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"

	strictsnappy "github.com/golang/snappy"
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

// Blocks decode with golang/snappy, whose amd64 and arm64 decoders are
// assembly and strict: they refuse what the snappy format does not have
// (s2's offset-0 "repeat" copy among it), as Java's and librdkafka's
// readers would. klauspost's snappy.DecodeStrict refuses the same, in pure
// Go, ~1.3x slower on JSON values (issue 22); its Decode is s2's and
// accepts s2's extensions, so it is not used to read. Encoding stays with
// klauspost.
func decompressSnappy(src []byte, maxSize int, ob *outBuf) ([]byte, error) {
	if !bytes.HasPrefix(src, xerialMagic) || len(src) < xerialHeaderSize {
		n, err := snappy.DecodedLen(src)
		if err != nil {
			return nil, err
		}
		if n > maxSize {
			return nil, errTooLarge(maxSize)
		}
		return strictsnappy.Decode(ob.get(n)[:n], src)
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
		d, err := strictsnappy.Decode(out[len(out):cap(out)], block)
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
