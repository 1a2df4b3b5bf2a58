package record

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func TestCodecRoundTrip(t *testing.T) {
	inputs := map[string][]byte{
		"empty":        {},
		"one":          {'x'},
		"compressible": compressible(300 << 10),
		"random":       randomBytes(100<<10, 1),
		"xerial chunk": compressible(xerialChunk),
		"chunk+1":      compressible(xerialChunk + 1),
	}
	for _, c := range allCodecs {
		for name, in := range inputs {
			t.Run(fmt.Sprintf("%s/%s", c, name), func(t *testing.T) {
				comp, err := Compress(c, []byte("pre"), in)
				if err != nil {
					t.Fatal(err)
				}
				if string(comp[:3]) != "pre" {
					t.Fatal("Compress did not append")
				}
				out, err := Decompress(c, comp[3:], len(in))
				if err != nil {
					t.Fatalf("Decompress: %v", err)
				}
				if !bytes.Equal(out, in) {
					t.Fatalf("round trip differs: %d bytes, want %d", len(out), len(in))
				}
				if len(in) > 0 {
					if _, err := Decompress(c, comp[3:], len(in)-1); !errors.Is(err, ErrTooLarge) {
						t.Fatalf("cap one below the size: %v", err)
					}
				}
			})
		}
	}
}

func TestCodecUnknown(t *testing.T) {
	for _, c := range []Codec{5, 6, 7, -1} {
		if _, err := Compress(c, nil, []byte("x")); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("Compress(%d): %v", c, err)
		}
		if _, err := Decompress(c, []byte("x"), 10); !errors.Is(err, ErrUnsupportedCodec) {
			t.Errorf("Decompress(%d): %v", c, err)
		}
	}
}

func TestDecompressGarbage(t *testing.T) {
	for _, c := range allCodecs[1:] {
		for _, in := range [][]byte{{0xde, 0xad, 0xbe, 0xef}, randomBytes(1000, 9)} {
			if _, err := Decompress(c, in, 1<<20); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: %v, want ErrCorrupt", c, err)
			}
		}
	}
}

// Snappy comes as a raw block (librdkafka, franz-go, Sarama) or in xerial
// framing (the Java client); both must decode.
func TestSnappyFormats(t *testing.T) {
	in := compressible(100 << 10)
	raw := snappy.Encode(nil, in)
	out, err := Decompress(CodecSnappy, raw, len(in))
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("raw block: %v", err)
	}
	x, _ := Compress(CodecSnappy, nil, in)
	if !bytes.HasPrefix(x, xerialMagic) || binary.BigEndian.Uint32(x[8:]) != 1 || binary.BigEndian.Uint32(x[12:]) != 1 {
		t.Fatalf("xerial header %x", x[:16])
	}
	// Four chunks of 32 KiB (the last partial).
	chunks := 0
	if err := walkXerial(x, func([]byte) error { chunks++; return nil }); err != nil || chunks != 4 {
		t.Fatalf("chunks %d, %v", chunks, err)
	}
	// Concatenated xerial streams (a repeated header) decode as one.
	y, _ := Compress(CodecSnappy, x, []byte("tail"))
	out, err = Decompress(CodecSnappy, y, 1<<20)
	if err != nil || !bytes.Equal(out, append(append([]byte(nil), in...), "tail"...)) {
		t.Fatalf("concatenated: %v", err)
	}
	// An s2-only block (a copy with offset 0, s2's "repeat") is not snappy:
	// a Java consumer could not read it back.
	s2only := []byte{0x05, 0x00, 'a', 0x01, 0x00}
	if _, err := Decompress(CodecSnappy, s2only, 100); !errors.Is(err, ErrCorrupt) {
		t.Errorf("s2 repeat accepted as snappy: %v", err)
	}
	for name, bad := range map[string][]byte{
		"negative chunk": append(append([]byte(nil), x[:16]...), 0xFF, 0xFF, 0xFF, 0xFF),
		"chunk past end": append(append([]byte(nil), x[:16]...), 0, 0, 0, 100, 1),
		"partial length": append(append([]byte(nil), x[:16]...), 0, 0),
		"partial header": x[:12],
		"corrupt block":  append(append([]byte(nil), x[:16]...), 0, 0, 0, 2, 0x05, 0xFF),
	} {
		if _, err := Decompress(CodecSnappy, bad, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestXXH32(t *testing.T) {
	// Content checksums of frames written by the lz4 command-line tool.
	for in, want := range map[string]uint32{
		"":    0x02cc5d05,
		"a":   0x550d7456,
		"abc": 0x32d153ff,
		"Nobody inspects the spammish repetition": 0xe2293b2f,
		"0123456789abcdef0123":                    0x6350964e,
	} {
		if got := xxh32([]byte(in)); got != want {
			t.Errorf("xxh32(%q) = %08x, want %08x", in, got, want)
		}
	}
}

func TestLZ4Frames(t *testing.T) {
	// printf abc | lz4 -c (the reference implementation).
	ref, _ := hex.DecodeString("04224d186440a70300008061626300000000ff53d132")
	out, err := Decompress(CodecLZ4, ref, 10)
	if err != nil || string(out) != "abc" {
		t.Fatalf("reference frame: %q, %v", out, err)
	}

	in := compressible(200 << 10)
	good, _ := Compress(CodecLZ4, nil, in)
	n, ok := lz4DescriptorEnd(good)
	if !ok {
		t.Fatal("no frame header")
	}
	// Our header checksum agrees with pierrec's writer (it wrote it).
	if good[n] != lz4HeaderChecksum(good[4:n]) {
		t.Fatalf("header checksum %#x, computed %#x", good[n], lz4HeaderChecksum(good[4:n]))
	}
	// Kafka's writer: 64 KiB blocks, independent, no content checksum.
	if flg, bd := good[4], good[5]; flg != 0x60 || bd != 0x40 {
		t.Fatalf("FLG %#x BD %#x", flg, bd)
	}

	broken := append([]byte(nil), good...)
	breakLZ4HeaderChecksum(broken)
	if broken[n] == good[n] {
		t.Skip("broken and correct checksums coincide for this header")
	}
	if out, err := Decompress(CodecLZ4, broken, len(in)); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("KAFKA-3160 checksum: %v", err)
	}
	wrong := append([]byte(nil), good...)
	wrong[n] ^= 0x55
	if wrong[n] == broken[n] {
		wrong[n] ^= 0x0F
	}
	if _, err := Decompress(CodecLZ4, wrong, len(in)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("wrong header checksum: %v", err)
	}
	if out, err := decompress(CodecLZ4, wrong, len(in), true, nil); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("v0 ignores the header checksum: %v", err)
	}
	// A frame written with pierrec's defaults (4 MiB blocks, checksums) as
	// franz-go does.
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	w.Write(in)
	w.Close()
	if out, err := Decompress(CodecLZ4, buf.Bytes(), len(in)); err != nil || !bytes.Equal(out, in) {
		t.Fatalf("default frame: %v", err)
	}
}

// lz4BlockLen must agree with the decoder on every block an encoder makes.
func TestLZ4BlockLen(t *testing.T) {
	var c lz4.Compressor
	var hc lz4.CompressorHC
	for _, n := range []int{0, 1, 5, 12, 13, 100, 4096, 65536, 300 << 10} {
		for seed, in := range [][]byte{compressible(n), randomBytes(n, uint64(n)), make([]byte, n)} {
			dst := make([]byte, lz4.CompressBlockBound(n))
			for name, k := range map[string]func() (int, error){
				"fast": func() (int, error) { return c.CompressBlock(in, dst) },
				"hc":   func() (int, error) { return hc.CompressBlock(in, dst) },
			} {
				m, err := k()
				if err != nil {
					t.Fatal(err)
				}
				if m == 0 {
					continue // incompressible: stored
				}
				if got := lz4BlockLen(dst[:m]); got != n {
					t.Fatalf("%s, %d bytes (input %d): lz4BlockLen = %d", name, n, seed, got)
				}
			}
		}
	}
	for _, bad := range [][]byte{{0xF0}, {0xF0, 0xFF}, {0x20, 'a'}, {0x10, 'a', 0x01}} {
		if got := lz4BlockLen(bad); got != -1 {
			t.Errorf("lz4BlockLen(%x) = %d, want -1", bad, got)
		}
	}
}

// Frames written by the lz4 command-line tool (the reference
// implementation) from lz4FixtureInput: "lz4 -BD -B4" (dependent blocks,
// content checksum) and "lz4 -BX -B4 --content-size" (block checksums,
// content size).
func TestLZ4ReferenceFrames(t *testing.T) {
	var in []byte
	for i := range 2000 {
		in = fmt.Appendf(in, "line %d: kafka compatible broker, offset %d\n", i, i*7%1000)
	}
	for _, name := range []string{"dependent.lz4", "blocksum.lz4"} {
		frame, err := os.ReadFile(filepath.Join("testdata", "lz4", name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Decompress(CodecLZ4, frame, len(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s: %d bytes, %v", name, len(out), err)
		}
		if _, err := Decompress(CodecLZ4, frame, len(in)-1); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("%s: cap below the size: %v", name, err)
		}
		if _, err := Decompress(CodecLZ4, frame[:len(frame)-5], len(in)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: truncated: %v", name, err)
		}
	}
}

// allocated runs fn and returns the bytes it allocated.
func allocated(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// Each bomb is a small payload claiming or expanding to far more than the
// cap; decompression must stop at the cap, quickly and without allocating
// for the claimed size.
func TestDecompressionBombs(t *testing.T) {
	const limit = 1 << 20
	bombs := map[Codec]map[string][]byte{
		CodecGzip:   {"1 GiB of zeros in gzip members": gzipBomb(t, 1<<30)},
		CodecZstd:   {"4 GiB of RLE blocks": zstdRLEBomb(4 << 30), "declared 1 TiB": zstdDeclaredBomb(1 << 40)},
		CodecLZ4:    {"256 MiB of zero blocks": lz4Bomb(t, 64)},
		CodecSnappy: {"raw block claiming 4 GiB": snappyClaimBomb(), "xerial chunks claiming 4 GiB each": xerialClaimBomb(64)},
	}
	for c, m := range bombs {
		for name, bomb := range m {
			t.Run(fmt.Sprintf("%s/%s", c, name), func(t *testing.T) {
				var err error
				start := time.Now()
				alloc := allocated(func() { _, err = Decompress(c, bomb, limit) })
				if !errors.Is(err, ErrTooLarge) {
					t.Fatalf("%d-byte bomb: %v, want ErrTooLarge", len(bomb), err)
				}
				// The cap, the buffer doubling that reaches it, and the
				// codec's own buffers (LZ4 blocks up to 4 MiB).
				if alloc > 4*limit+8<<20 {
					t.Fatalf("%d-byte bomb allocated %d bytes for a %d-byte cap", len(bomb), alloc, limit)
				}
				t.Logf("%d-byte bomb: %v, %d bytes allocated, %v", len(bomb), err, alloc, time.Since(start))
			})
		}
	}
}

// gzipBomb concatenates gzip members of 16 MiB of zeros (about 16 KiB
// each: deflate cannot beat ~1000:1).
func gzipBomb(t testing.TB, size int) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 16 {
		w.Write(zeros)
	}
	w.Close()
	member := buf.Bytes()
	return bytes.Repeat(member, size/(16<<20))
}

// zstdRLEBomb hand-writes a frame with no declared size and RLE blocks of
// 128 KiB, four bytes each.
func zstdRLEBomb(size int) []byte {
	b := []byte{0x28, 0xB5, 0x2F, 0xFD, 0x00, (17 - 10) << 3} // magic, FHD, window 128 KiB
	blocks := size / (128 << 10)
	for i := range blocks {
		hdr := uint32(1<<1 | (128<<10)<<3) // RLE block of 128 KiB
		if i == blocks-1 {
			hdr |= 1 // last
		}
		b = append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 'z')
	}
	return b
}

// zstdDeclaredBomb declares a huge content size in a single-segment frame.
func zstdDeclaredBomb(size uint64) []byte {
	b := []byte{0x28, 0xB5, 0x2F, 0xFD, 3<<6 | 1<<5} // 8-byte FCS, single segment
	b = binary.LittleEndian.AppendUint64(b, size)
	hdr := uint32(1 | 1<<1 | (128<<10)<<3)
	return append(b, byte(hdr), byte(hdr>>8), byte(hdr>>16), 'z')
}

// lz4Bomb is a frame of n 4 MiB blocks of zeros (about 16 KiB each).
func lz4Bomb(t testing.TB, n int) []byte {
	zeros := make([]byte, 4<<20)
	block := make([]byte, lz4.CompressBlockBound(len(zeros)))
	k, err := lz4.CompressBlock(zeros, block, nil)
	if err != nil || k == 0 {
		t.Fatalf("CompressBlock: %d, %v", k, err)
	}
	b := []byte{0x04, 0x22, 0x4D, 0x18, 0x60, 0x70, 0} // FLG: v1, independent; BD: 4 MiB
	b[6] = lz4HeaderChecksum(b[4:6])
	for range n {
		b = binary.LittleEndian.AppendUint32(b, uint32(k))
		b = append(b, block[:k]...)
	}
	return binary.LittleEndian.AppendUint32(b, 0) // end mark
}

func snappyClaimBomb() []byte {
	return append(binary.AppendUvarint(nil, 0xFFFFFFFF), 0x00, 'a')
}

func xerialClaimBomb(n int) []byte {
	b, _ := Compress(CodecSnappy, nil, nil)
	chunk := append(binary.AppendUvarint(nil, 0xFFFFFFFF), 0x00, 'a')
	for range n {
		b = binary.BigEndian.AppendUint32(b, uint32(len(chunk)))
		b = append(b, chunk...)
	}
	return b
}

// Java producers write zstd in streaming mode: no content size, a window
// larger than a small batch and than a small cap. Such frames must decode.
func TestZstdLargeWindowSmallCap(t *testing.T) {
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, zstd.WithWindowSize(8<<20), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	in := compressible(10 << 10)
	w.Write(in[:100])
	w.Flush() // the header goes out before the size is known
	w.Write(in[100:])
	w.Close()
	var fh zstd.Header
	if err := fh.Decode(buf.Bytes()); err != nil || fh.HasFCS || fh.WindowSize < 8<<20 {
		t.Fatalf("test frame: FCS %v window %d, %v", fh.HasFCS, fh.WindowSize, err)
	}
	out, err := Decompress(CodecZstd, buf.Bytes(), 64<<10)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("Decompress: %v", err)
	}

	// 3 MiB from 100 bytes: far over the first guess, so decoding restarts
	// with more room until it fits.
	rle := zstdRLEBomb(3 << 20)
	out, err = Decompress(CodecZstd, rle, 4<<20)
	if err != nil || len(out) != 3<<20 || bytes.Count(out, []byte{'z'}) != 3<<20 {
		t.Fatalf("Decompress RLE: %d bytes, %v", len(out), err)
	}
	if out, err := Decompress(CodecZstd, rle, 3<<20); err != nil || len(out) != 3<<20 {
		t.Fatalf("cap equal to the size: %v", err)
	}
	if _, err := Decompress(CodecZstd, rle, 3<<20-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("cap below the size: %v", err)
	}
}

func TestDecompressConcurrent(t *testing.T) {
	in := compressible(50 << 10)
	done := make(chan error)
	for _, c := range allCodecs {
		for range 4 {
			go func() {
				for range 20 {
					comp, err := Compress(c, nil, in)
					if err != nil {
						done <- err
						return
					}
					out, err := Decompress(c, comp, len(in))
					if err == nil && !bytes.Equal(out, in) {
						err = fmt.Errorf("%s: mismatch", c)
					}
					if err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
	}
	for range 4 * len(allCodecs) {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// zstdStream compresses in with a streaming encoder that writes its header
// before it has seen the input, so the frame declares no content size, as
// librdkafka with a shared libzstd and the Java client write them. flushEvery
// > 0 ends a block after that many bytes (many small blocks).
func zstdStream(t testing.TB, in []byte, flushEvery int, opts ...zstd.EOption) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := zstd.NewWriter(&buf, append([]zstd.EOption{zstd.WithEncoderConcurrency(1)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	step := flushEvery
	if step <= 0 {
		step = max(len(in)/3, 1)
	}
	for rest := in; len(rest) > 0; {
		n := min(step, len(rest))
		w.Write(rest[:n])
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var fh zstd.Header
	if err := fh.Decode(buf.Bytes()); err != nil || fh.HasFCS {
		t.Fatalf("test frame: FCS %v, %v", fh.HasFCS, err)
	}
	return buf.Bytes()
}

// Issue 15 item 9: zstd frames without a content size decompressing to more
// than 64 KiB were refused as corrupt ("output bigger than max block size")
// because decoding started with 64 KiB of room and only grew it on
// ErrDecoderSizeExceeded, which klauspost/compress does not return when a
// compressed block does not fit.
func TestZstdWithoutContentSize(t *testing.T) {
	for _, n := range []int{1 << 10, 64 << 10, 65 << 10, 100 << 10, 256 << 10, 300 << 10, 1 << 20} {
		for kind, in := range map[string][]byte{"compressible": compressible(n), "random": randomBytes(n, uint64(n))} {
			t.Run(fmt.Sprintf("%s/%d", kind, n), func(t *testing.T) {
				frame := zstdStream(t, in, 0)
				out, err := Decompress(CodecZstd, frame, len(in))
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%d-byte frame: %d bytes out, %v", len(frame), len(out), err)
				}
				if _, err := Decompress(CodecZstd, frame, len(in)-1); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("cap one below the size: %v", err)
				}
				if _, err := Decompress(CodecZstd, frame[:len(frame)-3], len(in)); !errors.Is(err, ErrCorrupt) {
					t.Fatalf("truncated: %v", err)
				}
			})
		}
	}
}

// A frame of many small blocks bounds its output far above the cap (each
// compressed block may hold up to 128 KiB) and must still decode when the
// actual output fits; when it does not, the error is ErrTooLarge, and a
// corrupt block with room to spare is ErrCorrupt.
func TestZstdSmallBlocks(t *testing.T) {
	in := compressible(1 << 20)
	frame := zstdStream(t, in, 1<<10) // 1,024 blocks: a bound of 128 MiB
	out, err := Decompress(CodecZstd, frame, 2<<20)
	if err != nil || !bytes.Equal(out, in) {
		t.Fatalf("small blocks: %d bytes out, %v", len(out), err)
	}
	if out, err := Decompress(CodecZstd, frame, len(in)); err != nil || len(out) != len(in) {
		t.Fatalf("cap equal to the size: %v", err)
	}
	// The loose bound is not what gets allocated under a large cap.
	if alloc := allocated(func() { _, err = Decompress(CodecZstd, frame, 64<<20) }); err != nil || alloc > 4<<20 {
		t.Fatalf("1 MiB of small blocks under a 64 MiB cap: %d bytes allocated, %v", alloc, err)
	}
	if _, err := Decompress(CodecZstd, frame, len(in)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("cap one below the size: %v", err)
	}
	big := zstdStream(t, compressible(3<<20), 0) // full 128 KiB blocks
	if _, err := Decompress(CodecZstd, big, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 MiB under a 1 MiB cap: %v", err)
	}
	// More than the first attempt's room: decoding restarts with more.
	in3 := compressible(3 << 20)
	small3 := zstdStream(t, in3, 1<<10)
	if out, err := Decompress(CodecZstd, small3, 64<<20); err != nil || !bytes.Equal(out, in3) {
		t.Fatalf("3 MiB of small blocks: %d bytes out, %v", len(out), err)
	}
	if _, err := Decompress(CodecZstd, small3, 2<<20); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("3 MiB of small blocks under a 2 MiB cap: %v", err)
	}
	// Flip a byte in the middle of the first block's data.
	bad := bytes.Clone(frame)
	bad[12] ^= 0xFF
	if _, err := Decompress(CodecZstd, bad, 2<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt block: %v", err)
	}
}

// Concatenated frames (with and without content size) and skippable frames
// decode as one payload, as zstd-jni's stream does for Kafka.
func TestZstdMultiFrame(t *testing.T) {
	a, b := compressible(200<<10), randomBytes(70<<10, 5)
	sized, _ := Compress(CodecZstd, nil, a)
	skippable := append([]byte{0x5A, 0x2A, 0x4D, 0x18, 3, 0, 0, 0}, "abc"...)
	payload := append(append(append(bytes.Clone(sized), skippable...), zstdStream(t, b, 0)...), sized...)
	want := append(append(bytes.Clone(a), b...), a...)
	out, err := Decompress(CodecZstd, payload, len(want))
	if err != nil || !bytes.Equal(out, want) {
		t.Fatalf("three frames: %d bytes out, %v", len(out), err)
	}
	if _, err := Decompress(CodecZstd, payload, len(want)-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("cap one below the size: %v", err)
	}
	for name, bad := range map[string][]byte{
		"trailing bytes":     append(bytes.Clone(sized), 1, 2),
		"skippable past end": append(bytes.Clone(sized), 0x50, 0x2A, 0x4D, 0x18, 9, 0, 0, 0, 1),
		"reserved block":     {0x28, 0xB5, 0x2F, 0xFD, 0x00, 0x00, 0x07, 0x00, 0x00},
	} {
		if _, err := Decompress(CodecZstd, bad, 1<<20); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// Every codec decodes input made of several frames (gzip members, LZ4
// frames, xerial streams, zstd frames) as their concatenation, and a gzip
// trailer's size field is a hint that cannot make a tiny payload allocate
// the cap.
func TestCodecsConcatenated(t *testing.T) {
	a, b := compressible(150<<10), randomBytes(10<<10, 2)
	want := append(bytes.Clone(a), b...)
	for _, c := range allCodecs[1:] {
		ca, _ := Compress(c, nil, a)
		cb, _ := Compress(c, nil, b)
		out, err := Decompress(c, append(ca, cb...), len(want))
		if err != nil || !bytes.Equal(out, want) {
			t.Errorf("%s: %d bytes out, %v", c, len(out), err)
		}
	}
	tiny, _ := Compress(CodecGzip, nil, []byte("x"))
	binary.LittleEndian.PutUint32(tiny[len(tiny)-4:], 60<<20) // forged ISIZE
	var err error
	alloc := allocated(func() { _, err = Decompress(CodecGzip, tiny, 64<<20) })
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("forged ISIZE: %v", err)
	}
	if alloc > 1<<20 {
		t.Fatalf("a %d-byte gzip payload claiming 60 MiB allocated %d bytes", len(tiny), alloc)
	}
}

// TestLZ4GrowsPastItsGuess: the one-pass LZ4 decoder guesses the output
// size from the input's; payloads that compress far better (zeros, long
// repeats), in blocks of every size, decode whole, into pooled buffers and fresh ones, and the cap holds to the
// byte.
func TestLZ4GrowsPastItsGuess(t *testing.T) {
	for _, size := range []int{100 << 10, 3 << 20, 9 << 20} {
		for _, in := range [][]byte{make([]byte, size), bytes.Repeat([]byte("strom "), size/6)} {
			for _, opt := range []lz4.Option{lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockSizeOption(lz4.Block4Mb), lz4.BlockSizeOption(lz4.Block256Kb)} {
				var buf bytes.Buffer
				w := lz4.NewWriter(&buf)
				if err := w.Apply(opt, lz4.LegacyOption(false), lz4.ConcurrencyOption(1)); err != nil {
					t.Fatal(err)
				}
				w.Write(in)
				w.Close()
				src := buf.Bytes()
				if len(in) <= lz4Guess*len(src) {
					t.Fatalf("%d bytes compress to %d: not past the guess", len(in), len(src))
				}
				var ob outBuf
				out, err := decompress(CodecLZ4, src, len(in), false, &ob)
				if err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%d bytes (%v): %v", len(in), opt, err)
				}
				ob.release()
				if out, err := Decompress(CodecLZ4, src, len(in)); err != nil || !bytes.Equal(out, in) {
					t.Fatalf("%d bytes, fresh buffer: %v", len(in), err)
				}
				if _, err := Decompress(CodecLZ4, src, len(in)-1); !errors.Is(err, ErrTooLarge) {
					t.Fatalf("cap one byte short: %v, want ErrTooLarge", err)
				}
			}
		}
	}
}
