package record

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Codec levels (KIP-390): compression.gzip.level (1-9, -1 the default),
// compression.lz4.level (1-17, 9 the default), compression.zstd.level
// (-131072-22, 3 the default). DefaultLevel is what a zero
// BatchSpec.CompressionLevel means: the codec's default.
const DefaultLevel = 0

// compressAt is Compress at a codec level. gzip, lz4 and zstd honour it;
// snappy has none.
func compressAt(c Codec, level int, dst, src []byte) ([]byte, error) {
	switch {
	case level == DefaultLevel, c == CodecGzip && level == gzip.DefaultCompression, c == CodecZstd && level == 3:
		return Compress(c, dst, src)
	case c == CodecGzip:
		p, _ := gzipLevelWriters.LoadOrStore(level, &sync.Pool{New: func() any {
			w, err := gzip.NewWriterLevel(nil, level)
			if err != nil {
				return err
			}
			return &gzipWriter{w: w}
		}})
		g, ok := p.(*sync.Pool).Get().(*gzipWriter)
		if !ok {
			return dst, fmt.Errorf("record: gzip level %d: %w", level, ErrInvalidRecord)
		}
		defer p.(*sync.Pool).Put(g)
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
	case c == CodecLZ4:
		return compressLZ4Level(dst, src, level)
	case c == CodecZstd:
		p, _ := zstdLevelEncoders.LoadOrStore(level, &sync.Pool{New: func() any {
			e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
			if err != nil {
				panic(err) // every level maps to one of the encoder's speeds
			}
			return e
		}})
		e := p.(*sync.Pool).Get().(*zstd.Encoder)
		defer p.(*sync.Pool).Put(e)
		return e.EncodeAll(src, dst), nil
	}
	return Compress(c, dst, src)
}

var gzipLevelWriters, zstdLevelEncoders sync.Map // level -> *sync.Pool

// Recompress returns batch b (one whole, validated v2 batch) rebuilt with
// codec c at level, as Kafka's LogValidator does when a topic's
// compression.type differs from the producer's codec: the records, their
// offset and timestamp deltas and headers, the producer id, epoch and base
// sequence, the transactional and control flags and the timestamp type
// are kept. The result is a new slice of exactly its size; everything else
// (the decompressed records, their encoding, the compressed output before
// it is sized) is in pooled buffers, so a stream of batches allocates about
// one result per batch (TestRecompressAllocatesOnlyItsResult).
func Recompress(b []byte, c Codec, level int, maxDecompressed int) ([]byte, BatchHeader, error) {
	h, err := CheckCRC(b)
	if err != nil {
		return nil, h, err
	}
	sc := getRecordScratch()
	defer sc.put()
	if sc.recs, err = decodeBatchRecords(h, b, maxDecompressed, sc.recs[:0], &sc.ob); err != nil {
		return nil, h, err
	}
	// Room for the records uncompressed plus the worst expansion of every
	// codec (snappy's n/6 is the largest), so that the pooled buffer's size
	// class is right the first time and never grows.
	raw := 0
	for i := range sc.recs {
		size, _ := recordBodySize(&sc.recs[i])
		raw += size + binary.MaxVarintLen32
	}
	tmp := getScratch(BatchHeaderSize + raw + raw/6 + 1024)
	defer func() { putScratch(tmp) }()
	tmp, err = AppendBatch(tmp, BatchSpec{
		BaseOffset:           h.BaseOffset,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Codec:                c,
		CompressionLevel:     level,
		LogAppendTime:        h.LogAppendTime(),
		Transactional:        h.IsTransactional(),
		Control:              h.IsControl(),
		BaseTimestamp:        h.BaseTimestamp,
		AppendTime:           h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.BaseSequence,
	}, sc.recs)
	if err != nil {
		return nil, h, fmt.Errorf("record: recompress batch at offset %d to %s: %w", h.BaseOffset, c, err)
	}
	out := append(make([]byte, 0, len(tmp)), tmp...)
	nh, err := ReadBatchHeader(out)
	return out, nh, err
}
