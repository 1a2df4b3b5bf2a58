package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
)

// The fuzz targets check that no input panics, that errors are always one of
// the sentinels, and that whatever decodes re-encodes to the same content.
// Checksums would stop the fuzzer at the first mutated byte, so the targets
// that are about content first repair the CRCs of the input (the CRC check
// itself is covered by FuzzReadBatchHeader and TestCRCFlippedByte).
//
// The seed corpus is in f.Add below and in testdata/fuzz/<FuzzName>/;
// TestWriteFuzzSeeds regenerates the files there (RECORD_WRITE_SEEDS=1).

const fuzzMax = 1 << 20

var sentinels = []error{ErrShortBuffer, ErrCorrupt, ErrUnsupportedMagic, ErrInvalidRecord, ErrTooLarge, ErrUnsupportedCodec}

func checkSentinel(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return
		}
	}
	t.Fatalf("error wraps no sentinel: %v", err)
}

// repairBatches sets magic, Length and CRC of the batches in b so that the
// fuzzer's mutations reach the records. The last batch takes what is left.
func repairBatches(b []byte) []byte {
	b = bytes.Clone(b)
	for rest := b; len(rest) >= BatchHeaderSize; {
		rest[offMagic] = byte(MagicV2)
		n := logOverhead + int(int32(binary.BigEndian.Uint32(rest[offLength:])))
		if n < BatchHeaderSize || n > len(rest) {
			n = len(rest)
			binary.BigEndian.PutUint32(rest[offLength:], uint32(n-logOverhead))
		}
		fixCRC(rest[:n])
		rest = rest[n:]
	}
	return b
}

// repairMessages fixes the CRCs of the top-level messages of a message set.
func repairMessages(b []byte) []byte {
	b = bytes.Clone(b)
	for rest := b; len(rest) >= logOverhead+minMessageV0; {
		n := logOverhead + int(int32(binary.BigEndian.Uint32(rest[8:])))
		if n < logOverhead+minMessageV0 || n > len(rest) {
			break
		}
		binary.BigEndian.PutUint32(rest[12:], crc32.ChecksumIEEE(rest[16:n]))
		rest = rest[n:]
	}
	return b
}

func batchSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for i, c := range allCodecs {
		seeds = append(seeds, mustBatch(t, defaultSpec(c), genRecords(1+i*3, i%2 == 0, uint64(i))))
	}
	seeds = append(seeds, mustBatch(t, defaultSpec(CodecNone), []Record{{OffsetDelta: 0}, {OffsetDelta: 3, Key: []byte{}}}))
	seeds = append(seeds, rawBatch(0, 2, nil))
	two, _ := batchesOf(t, CodecNone, CodecSnappy)
	return append(seeds, two)
}

func messageSetSeeds(t testing.TB) [][]byte {
	inner := plainMsgs(3, 5)
	for i := range inner {
		inner[i].off = int64(i)
	}
	return [][]byte{
		messageSet(MagicV0, plainMsgs(3, 0)...),
		messageSet(MagicV1, plainMsgs(4, 1_000)...),
		messageSet(MagicV1, wrapper(t, MagicV1, CodecGzip, 2, 7, inner...)),
		messageSet(MagicV0, wrapper(t, MagicV0, CodecSnappy, 2, 0, inner...)),
		messageSet(MagicV0, wrapper(t, MagicV0, CodecLZ4, 2, 0, inner...)),
		messageSet(MagicV1, append(plainMsgs(1, 3), wrapper(t, MagicV1, CodecLZ4, 9, 7, inner...))...),
	}
}

func recordsSeeds() [][]byte {
	var seeds [][]byte
	for i, n := range []int{1, 2, 7, 30} {
		recs := genRecords(n, i%2 == 1, uint64(i))
		seeds = append(seeds, append([]byte{byte(n), byte(i % 5)}, appendRecords(nil, recs)...))
	}
	gapped := []Record{{OffsetDelta: 0}, {OffsetDelta: 3, Key: []byte{}}}
	return append(seeds, append([]byte{2, 2 << 3}, appendRecords(nil, gapped)...))
}

func decompressSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, c := range allCodecs {
		for _, in := range [][]byte{nil, []byte("x"), compressible(3000), randomBytes(300, uint64(c))} {
			comp, _ := Compress(c, []byte{byte(c)}, in)
			seeds = append(seeds, comp)
		}
	}
	return append(seeds,
		append([]byte{byte(CodecZstd)}, zstdDeclaredBomb(1<<40)...),
		append([]byte{byte(CodecZstd)}, zstdRLEBomb(2<<20)...),
		append([]byte{byte(CodecSnappy)}, snappyClaimBomb()...),
		append([]byte{byte(CodecSnappy)}, xerialClaimBomb(2)...),
		// Frames without a content size (issue 15 item 9): one of
		// 100 KiB, one of small blocks, and a frame pair.
		append([]byte{byte(CodecZstd)}, zstdStream(t, compressible(100<<10), 0)...),
		append([]byte{byte(CodecZstd)}, zstdStream(t, compressible(20<<10), 1<<10)...),
		append(append([]byte{byte(CodecZstd)}, zstdStream(t, []byte("abc"), 0)...), zstdStream(t, randomBytes(200, 1), 0)...),
	)
}

func FuzzReadBatchHeader(f *testing.F) {
	for _, s := range batchSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ReadBatchHeader(b)
		checkSentinel(t, err)
		if err == nil && (h.Magic != MagicV2 || h.Length < minBatchLength || h.Size() < BatchHeaderSize) {
			t.Fatalf("accepted header %+v", h)
		}
		_, err = CheckCRC(b)
		checkSentinel(t, err)
		_, verr := ValidateBatch(b, fuzzMax)
		checkSentinel(t, verr)
		if verr == nil && err != nil {
			t.Fatalf("ValidateBatch accepts what CheckCRC rejects: %v", err)
		}
		_, err = PeekMagic(b)
		checkSentinel(t, err)
	})
}

func FuzzValidateBatch(f *testing.F) {
	for _, s := range batchSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < BatchHeaderSize {
			return
		}
		b = repairBatches(b)
		b = b[:logOverhead+int(int32(binary.BigEndian.Uint32(b[offLength:])))] // the first batch
		h, err := ValidateBatch(b, fuzzMax)
		checkSentinel(t, err)
		if err != nil {
			return
		}
		h2, recs, err := Records(b, fuzzMax)
		if err != nil || h2 != h || len(recs) != int(h.NumRecords) {
			t.Fatalf("ValidateBatch accepts, Records: %d records, %v", len(recs), err)
		}
		reencode(t, h, recs)
	})
}

// reencode builds a batch of recs with h's codec and checks it decodes to
// the same records.
func reencode(t *testing.T, h BatchHeader, recs []Record) {
	t.Helper()
	if len(recs) == 0 {
		return
	}
	spec := BatchSpec{BaseOffset: h.BaseOffset, Codec: h.Codec(), BaseTimestamp: h.BaseTimestamp,
		ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, BaseSequence: h.BaseSequence}
	b, err := AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatalf("re-encoding decoded records: %v", err)
	}
	_, again, err := Records(b, fuzzMax+len(b)*2)
	if err != nil {
		t.Fatalf("decoding re-encoded records: %v", err)
	}
	equalRecords(t, again, recs)
}

// FuzzRecords fuzzes the records section directly: b[0] is NumRecords,
// b[1] selects the codec (low three bits) and how far LastOffsetDelta lies
// past NumRecords-1 (high bits, as compaction leaves it), and b[2:] is the
// records section, compressed with the codec before the batch is built.
func FuzzRecords(f *testing.F) {
	for _, s := range recordsSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 2 {
			return
		}
		n, c, gap := int32(b[0]), Codec(b[1]&7%5), int32(b[1]>>3)
		body, err := Compress(c, nil, b[2:])
		if err != nil {
			t.Fatal(err)
		}
		batch := rawBatch(n, max(n-1, 0)+gap, body)
		batch[offAttributes+1] = byte(c)
		fixCRC(batch)
		h, recs, err := Records(batch, fuzzMax)
		checkSentinel(t, err)
		_, verr := ValidateBatch(batch, fuzzMax)
		checkSentinel(t, verr)
		if verr == nil && err != nil {
			t.Fatalf("ValidateBatch accepts what Records rejects: %v", err)
		}
		if err != nil {
			return
		}
		if len(recs) != int(h.NumRecords) {
			t.Fatalf("%d records, header says %d", len(recs), h.NumRecords)
		}
		reencode(t, h, recs)
	})
}

func FuzzConvertMessageSet(f *testing.F) {
	for _, s := range messageSetSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range [][]byte{b, repairMessages(b)} {
			batches, err := ConvertMessageSet(in, fuzzMax)
			checkSentinel(t, err)
			msgs, perr := ParseMessageSet(in, fuzzMax)
			checkSentinel(t, perr)
			if err != nil {
				continue
			}
			if perr != nil {
				t.Fatalf("ConvertMessageSet accepts what ParseMessageSet rejects: %v", perr)
			}
			n := 0
			for _, batch := range batches {
				h, err := ValidateBatch(batch, 2*fuzzMax)
				if err != nil {
					t.Fatalf("converted batch invalid: %v", err)
				}
				n += int(h.NumRecords)
			}
			if n != len(msgs) {
				t.Fatalf("converted %d records, parsed %d messages", n, len(msgs))
			}
		}
	})
}

func FuzzDownConvert(f *testing.F) {
	for _, s := range batchSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		b = repairBatches(b)
		for _, magic := range []int8{MagicV0, MagicV1} {
			set, err := DownConvert(b, magic, fuzzMax)
			checkSentinel(t, err)
			if err != nil {
				continue
			}
			msgs, err := ParseMessageSet(set, 2*fuzzMax+len(set))
			if err != nil {
				t.Fatalf("v%d: DownConvert output does not parse: %v", magic, err)
			}
			for _, m := range msgs {
				if m.Magic != magic || (magic == MagicV0 && m.Timestamp != NoTimestamp) {
					t.Fatalf("v%d: message %+v", magic, m)
				}
			}
		}
	})
}

func FuzzDecompress(f *testing.F) {
	for _, s := range decompressSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		c, data := Codec(b[0]%8), b[1:]
		out, err := Decompress(c, data, fuzzMax)
		checkSentinel(t, err)
		if err == nil && len(out) > fuzzMax {
			t.Fatalf("%d bytes out, cap %d", len(out), fuzzMax)
		}
		// Into pooled scratch buffers (ValidateBatch's path), reused from
		// earlier inputs: the same output and the same verdict.
		var ob outBuf
		pooled, perr := decompress(c, data, fuzzMax, false, &ob)
		if (perr == nil) != (err == nil) || !bytes.Equal(pooled, out) {
			t.Fatalf("pooled: %d bytes, %v; fresh: %d bytes, %v", len(pooled), perr, len(out), err)
		}
		ob.release()
		if c == CodecSnappy && !bytes.HasPrefix(data, xerialMagic) {
			// The raw block decodes as klauspost's strict (pure Go)
			// decoder decodes it: the same verdict, the same bytes.
			want, werr := strictDecode(data, fuzzMax)
			if (werr == nil) != (err == nil) || !bytes.Equal(want, out) {
				t.Fatalf("golang/snappy: %d bytes, %v; klauspost strict: %d bytes, %v", len(out), err, len(want), werr)
			}
		}
		if !c.valid() {
			return
		}
		comp, err := Compress(c, nil, data)
		if err != nil {
			t.Fatal(err)
		}
		out, err = Decompress(c, comp, len(data))
		if err != nil || !bytes.Equal(out, data) {
			t.Fatalf("%s round trip of %d bytes: %v", c, len(data), err)
		}
	})
}

// strictDecode is the raw block decoded by klauspost's snappy.DecodeStrict,
// under the same cap.
func strictDecode(block []byte, maxSize int) ([]byte, error) {
	n, err := snappy.DecodedLen(block)
	if err != nil {
		return nil, err
	}
	if n > maxSize {
		return nil, errTooLarge(maxSize)
	}
	return snappy.DecodeStrict(nil, block)
}

// TestWriteFuzzSeeds writes the valid seeds to testdata/fuzz in the corpus
// file format, so that plain `go test` replays them too.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("RECORD_WRITE_SEEDS") == "" {
		t.Skip("set RECORD_WRITE_SEEDS=1 to regenerate testdata/fuzz seeds")
	}
	sets := map[string][][]byte{
		"FuzzReadBatchHeader":   batchSeeds(t),
		"FuzzValidateBatch":     batchSeeds(t),
		"FuzzRecords":           recordsSeeds(),
		"FuzzDownConvert":       batchSeeds(t),
		"FuzzConvertMessageSet": messageSetSeeds(t),
		"FuzzDecompress":        decompressSeeds(t),
	}
	for name, seeds := range sets {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i, s := range seeds {
			data := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
