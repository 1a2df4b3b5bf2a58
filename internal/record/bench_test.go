package record

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/snappy"
)

// benchRecords makes n records with 1 KiB values of text-like data, which
// compresses about as well as typical JSON payloads.
func benchRecords(n int) []Record {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"\"user\":", "\"id\":", "\"event\":\"click\"", "\"ts\":", "{", "}", ",", "\"page\":\"/home\""}
	recs := make([]Record, n)
	for i := range recs {
		v := make([]byte, 0, 1024)
		for len(v) < 1024 {
			if rng.IntN(3) == 0 {
				v = fmt.Appendf(v, "%d", rng.Uint32())
			} else {
				v = append(v, words[rng.IntN(len(words))]...)
			}
		}
		recs[i] = Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: fmt.Appendf(nil, "key-%d", i), Value: v[:1024]}
	}
	return recs
}

// BenchmarkValidateBatch is the produce path's validation (seglog.Validate
// calls ValidateBatch on every batch) per codec, for batches of 16 and 256
// records of 1 KiB. One op is one batch, so allocs/op is allocations per
// batch (issue 22's goal: under 0.1 in steady state). "snappy-raw" is the
// single snappy block franz-go, librdkafka and Sarama write; "snappy" is the
// xerial framing of the Java client.
func BenchmarkValidateBatch(b *testing.B) {
	for _, n := range []int{16, 256} {
		recs := benchRecords(n)
		for _, c := range []string{"none", "gzip", "snappy", "snappy-raw", "lz4", "zstd"} {
			var batch []byte
			if c == "snappy-raw" {
				batch = rawSnappyBatch(b, recs)
			} else {
				codec := map[string]Codec{"none": CodecNone, "gzip": CodecGzip, "snappy": CodecSnappy, "lz4": CodecLZ4, "zstd": CodecZstd}[c]
				batch = mustBatch(b, defaultSpec(codec), recs)
			}
			b.Run(fmt.Sprintf("%s/%dKiB", c, n), func(b *testing.B) {
				b.SetBytes(int64(n) << 10) // record values: the MB/s
				b.ReportAllocs()
				for b.Loop() {
					if _, err := ValidateBatch(batch, 1<<20); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// rawSnappyBatch is a snappy batch of recs as franz-go writes it: one raw
// snappy block, no xerial framing.
func rawSnappyBatch(t testing.TB, recs []Record) []byte {
	t.Helper()
	b := mustBatch(t, defaultSpec(CodecSnappy), recs)[:BatchHeaderSize]
	b = append(b, snappy.Encode(nil, appendRecords(nil, recs))...)
	binary.BigEndian.PutUint32(b[offLength:], uint32(len(b)-logOverhead))
	fixCRC(b)
	if _, err := ValidateBatch(b, 1<<20); err != nil {
		t.Fatalf("raw snappy batch: %v", err)
	}
	return b
}

func BenchmarkCheckCRC(b *testing.B) {
	batch := mustBatch(b, defaultSpec(CodecNone), benchRecords(16))
	b.SetBytes(int64(len(batch)))
	for b.Loop() {
		if _, err := CheckCRC(batch); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRecords(b *testing.B) {
	for _, c := range []Codec{CodecNone, CodecLZ4} {
		batch := mustBatch(b, defaultSpec(c), benchRecords(16))
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := Records(batch, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendBatch(b *testing.B) {
	recs := benchRecords(16)
	for _, c := range []Codec{CodecNone, CodecLZ4} {
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(16 << 10)
			b.ReportAllocs()
			buf := make([]byte, 0, 32<<10)
			for b.Loop() {
				if _, err := AppendBatch(buf[:0], defaultSpec(c), recs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDownConvert converts 1 MiB of log (64 batches of 16 records of
// 1 KiB) to a v1 message set, as a Fetch v2 from an old consumer does.
func BenchmarkDownConvert(b *testing.B) {
	for _, c := range []Codec{CodecNone, CodecLZ4, CodecGzip, CodecZstd} {
		var log []byte
		for i := range 64 {
			spec := defaultSpec(c)
			spec.BaseOffset = int64(i * 16)
			log = append(log, mustBatch(b, spec, benchRecords(16))...)
		}
		b.Run(c.String(), func(b *testing.B) {
			b.SetBytes(int64(len(log)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DownConvert(log, MagicV1, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkConvertMessageSet(b *testing.B) {
	var msgs []msg
	for _, r := range benchRecords(100) {
		msgs = append(msgs, msg{ts: 1, key: r.Key, value: r.Value})
	}
	set := messageSet(MagicV1, msgs...)
	b.SetBytes(int64(len(set)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ConvertMessageSet(set, 1<<20); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecompressZstdStream decodes 1 MiB frames without a content size
// (a streaming encoder's), in full 128 KiB blocks and in 1 KiB blocks, whose
// bound is 128 times the output.
func BenchmarkDecompressZstdStream(b *testing.B) {
	in := compressible(1 << 20)
	for _, flush := range []int{0, 1 << 10} {
		frame := zstdStream(b, in, flush)
		b.Run(fmt.Sprintf("flush=%d", flush), func(b *testing.B) {
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Decompress(CodecZstd, frame, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// recompressCases are the codec changes of compression.type that the
// recompression tests and benchmarks run: franz-go's default snappy to a
// topic's zstd, and each other codec to another.
var recompressCases = []struct{ from, to Codec }{
	{CodecSnappy, CodecZstd}, {CodecZstd, CodecLZ4}, {CodecLZ4, CodecGzip}, {CodecGzip, CodecSnappy}, {CodecNone, CodecZstd},
}

// BenchmarkRecompressCodecs is a topic's compression.type rebuilding a produced
// batch of 16 or 256 records of 1 KiB with another codec (seglog.Recompress
// calls it per batch). One op is one batch; the result is a new slice, so
// one allocation per batch is its floor.
func BenchmarkRecompressCodecs(b *testing.B) {
	for _, n := range []int{16, 256} {
		recs := benchRecords(n)
		for _, tc := range recompressCases {
			batch := mustBatch(b, defaultSpec(tc.from), recs)
			b.Run(fmt.Sprintf("%s-%s/%dKiB", tc.from, tc.to, n), func(b *testing.B) {
				b.SetBytes(int64(n) << 10)
				b.ReportAllocs()
				for b.Loop() {
					if _, _, err := Recompress(batch, tc.to, DefaultLevel, 1<<20); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
