package record

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"testing"
)

var allCodecs = []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd}

// testMax is the decompression cap used by tests that are not about it.
const testMax = 64 << 20

// genRecords makes n records with offset deltas 0..n-1. Every fourth key is
// null, every seventh value is null, and headers (with a null value among
// them) are added when withHeaders is set.
func genRecords(n int, withHeaders bool, seed uint64) []Record {
	rng := rand.New(rand.NewPCG(seed, 7))
	recs := make([]Record, n)
	for i := range recs {
		r := &recs[i]
		r.OffsetDelta = int32(i)
		r.TimestampDelta = int64(rng.IntN(1000)) - 100
		if i%4 != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i)
		}
		if i%7 != 0 {
			v := make([]byte, rng.IntN(200))
			for j := range v {
				v[j] = byte('a' + rng.IntN(4)) // compressible
			}
			r.Value = v
		}
		if i%13 == 5 {
			r.Value = []byte{} // empty, not null
		}
		if withHeaders && i%3 != 2 {
			r.Headers = []Header{{Key: "h1", Value: []byte("v1")}, {Key: "", Value: nil}, {Key: "trace", Value: []byte{}}}
		}
	}
	return recs
}

func defaultSpec(c Codec) BatchSpec {
	return BatchSpec{
		BaseOffset:           0,
		PartitionLeaderEpoch: -1,
		Codec:                c,
		BaseTimestamp:        1_700_000_000_000,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
}

func mustBatch(t testing.TB, spec BatchSpec, recs []Record) []byte {
	t.Helper()
	b, err := AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatalf("AppendBatch: %v", err)
	}
	return b
}

// fixCRC recomputes the CRC of a batch after a test edited it.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
}

// rawBatch assembles a batch around an already encoded (uncompressed)
// records section, with the given count and last offset delta.
func rawBatch(numRecords, lastOffsetDelta int32, records []byte) []byte {
	b := make([]byte, BatchHeaderSize, BatchHeaderSize+len(records))
	b = append(b, records...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], 0xFFFFFFFF)
	b[offMagic] = 2
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(lastOffsetDelta))
	binary.BigEndian.PutUint64(b[offProducerID:], ^uint64(0))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], 0xFFFF)
	binary.BigEndian.PutUint32(b[offBaseSequence:], 0xFFFFFFFF)
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(numRecords))
	fixCRC(b)
	return b
}

func equalRecords(t testing.TB, got, want []Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if len(g.Headers) == 0 && len(w.Headers) == 0 {
			g.Headers, w.Headers = nil, nil
		}
		if !reflect.DeepEqual(g, w) {
			t.Fatalf("record %d:\n got %+v\nwant %+v", i, g, w)
		}
		if (g.Key == nil) != (w.Key == nil) || (g.Value == nil) != (w.Value == nil) {
			t.Fatalf("record %d: null-ness differs", i)
		}
	}
}

func compressible(n int) []byte {
	return bytes.Repeat([]byte("kafka compatible broker "), n/24+1)[:n]
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// Test oracles: decoders the tests compare the production paths with.

// Decompress returns the decompressed form of src, failing with ErrTooLarge
// as soon as the output would exceed maxSize bytes: whatever the input
// claims, memory use is bounded by about twice maxSize (the output buffer
// as it grows) plus each codec's small fixed state (a 32 KiB window for
// gzip). Snappy and LZ4 learn the exact output size before allocating;
// zstd learns it from the frame header when declared, else an upper bound
// from the block headers (within 128 KiB per block). Input of several
// frames (gzip members, LZ4, zstd and xerial streams) decodes as their
// concatenation. Malformed input gives ErrCorrupt.
//
// Snappy accepts a raw block as well as xerial framing; LZ4 accepts a frame
// whose header checksum was computed the broken way of Kafka's v0 messages
// (KAFKA-3160). CodecNone returns src itself.
func Decompress(c Codec, src []byte, maxSize int) ([]byte, error) {
	return decompress(c, src, maxSize, false, nil)
}
