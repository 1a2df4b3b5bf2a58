package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Codec is a compression codec: bits 0-2 of the batch (or message)
// attributes.
type Codec int8

// The codecs Kafka defines. Message sets (v0/v1) can carry only the first
// four.
const (
	CodecNone   Codec = 0
	CodecGzip   Codec = 1
	CodecSnappy Codec = 2
	CodecLZ4    Codec = 3
	CodecZstd   Codec = 4
)

// String returns Kafka's name of the codec (compression.type).
func (c Codec) String() string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec(%d)", int8(c))
}

func (c Codec) valid() bool { return c >= CodecNone && c <= CodecZstd }

func (c Codec) unsupported() error {
	return fmt.Errorf("codec %d: %w", int8(c), ErrUnsupportedCodec)
}

// Compress appends the compressed form of src to dst. The formats are the
// ones Kafka's Java client writes: gzip; snappy in xerial framing; the LZ4
// frame format (64 KiB independent blocks, no checksums, as Kafka's
// KafkaLZ4BlockOutputStream); a zstd frame. CodecNone appends src as is.
func Compress(c Codec, dst, src []byte) ([]byte, error) {
	switch c {
	case CodecNone:
		return append(dst, src...), nil
	case CodecGzip:
		return compressGzip(dst, src)
	case CodecSnappy:
		return compressXerial(dst, src), nil
	case CodecLZ4:
		return compressLZ4(dst, src)
	case CodecZstd:
		return compressZstd(dst, src), nil
	}
	return dst, c.unsupported()
}

// decompress decompresses src with codec c into at most maxSize bytes
// (ErrTooLarge past it); anyLZ4HeaderChecksum makes LZ4 ignore the frame
// header checksum altogether, as Kafka does for magic v0 message sets. The
// output is written into buffers from ob (see outBuf; nil: a fresh buffer).
func decompress(c Codec, src []byte, maxSize int, anyLZ4HeaderChecksum bool, ob *outBuf) ([]byte, error) {
	maxSize = min(max(maxSize, 0), math.MaxInt-1) // maxSize+1 must not overflow
	var out []byte
	var err error
	switch c {
	case CodecNone:
		if len(src) > maxSize {
			return nil, fmt.Errorf("%d bytes, limit %d: %w", len(src), maxSize, ErrTooLarge)
		}
		return src, nil
	case CodecGzip:
		out, err = decompressGzip(src, maxSize, ob)
	case CodecSnappy:
		out, err = decompressSnappy(src, maxSize, ob)
	case CodecLZ4:
		out, err = decompressLZ4(src, maxSize, anyLZ4HeaderChecksum, ob)
	case CodecZstd:
		out, err = decompressZstd(src, maxSize, ob)
	default:
		return nil, c.unsupported()
	}
	if err != nil {
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrCorrupt) {
			return nil, fmt.Errorf("%s: %w", c, err)
		}
		return nil, fmt.Errorf("%s: %w: %w", c, ErrCorrupt, err)
	}
	return out, nil
}

// errTooLarge reports a decompressed size over the limit.
func errTooLarge(maxSize int) error {
	return fmt.Errorf("output exceeds %d bytes: %w", maxSize, ErrTooLarge)
}

// readCapped reads r to EOF into a buffer that never grows past maxSize+1
// bytes: reading one byte more than allowed is how the overflow is detected.
// hint is the expected size, if the format declares one; it is only trusted
// up to the cap. Buffers come from ob.
func readCapped(r io.Reader, maxSize, hint int, ob *outBuf) ([]byte, error) {
	limit := maxSize + 1
	buf := ob.get(min(max(hint, 512), limit))
	buf = buf[:0:min(cap(buf), limit)]
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= limit {
				return nil, errTooLarge(maxSize)
			}
			buf = ob.grow(buf, min(2*cap(buf), limit))
			buf = buf[:len(buf):min(cap(buf), limit)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if len(buf) > maxSize {
			return nil, errTooLarge(maxSize)
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

// appendWriter is an io.Writer appending to a slice.
type appendWriter struct{ b []byte }

func (w *appendWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// --- gzip ---

// Pooled gzip state. The reader and writer are pointed at the pooled
// bytes.Reader and appendWriter, which are emptied after use, so the pool
// never keeps a caller's buffer alive.
type gzipWriter struct {
	w  *gzip.Writer
	aw appendWriter
}

type gzipReader struct {
	zr *gzip.Reader // nil until first use: NewReader needs a valid header
	br bytes.Reader
}

var (
	gzipWriters = sync.Pool{New: func() any {
		w, _ := gzip.NewWriterLevel(nil, gzip.DefaultCompression) // Java's GZIPOutputStream level
		return &gzipWriter{w: w}
	}}
	gzipReaders = sync.Pool{New: func() any { return new(gzipReader) }}
)

func compressGzip(dst, src []byte) ([]byte, error) {
	g := gzipWriters.Get().(*gzipWriter)
	defer gzipWriters.Put(g)
	g.aw.b = dst
	defer func() { g.aw.b = nil }()
	g.w.Reset(&g.aw)
	if _, err := g.w.Write(src); err != nil {
		return dst, err
	}
	if err := g.w.Close(); err != nil {
		return dst, err
	}
	return g.aw.b, nil
}

// gzipMaxRatio is deflate's largest expansion: a 258-byte match costs at
// least two bits.
const gzipMaxRatio = 1032

func decompressGzip(src []byte, maxSize int, ob *outBuf) ([]byte, error) {
	g := gzipReaders.Get().(*gzipReader)
	defer gzipReaders.Put(g)
	g.br.Reset(src)
	defer g.br.Reset(nil)
	var err error
	if g.zr == nil {
		g.zr, err = gzip.NewReader(&g.br)
	} else {
		err = g.zr.Reset(&g.br)
	}
	if err != nil {
		return nil, err
	}
	// ISIZE, the last four bytes, is the size mod 2^32 of the last member: a
	// hint only, and believed only as far as deflate can expand (at most
	// 1032:1), so a forged one cannot make a tiny payload allocate the cap.
	hint := 0
	if len(src) >= 4 {
		hint = min(int(binary.LittleEndian.Uint32(src[len(src)-4:])), gzipMaxRatio*len(src))
	}
	return readCapped(g.zr, maxSize, hint, ob)
}
