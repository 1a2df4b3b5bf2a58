package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"sync"
)

// Header is a record header. Header keys cannot be null; values can (nil).
type Header struct {
	Key   string
	Value []byte
}

// Record is one v2 record. Its offset is the batch's BaseOffset+OffsetDelta;
// its timestamp is given by BatchHeader.RecordTimestamp.
type Record struct {
	Attributes     int8 // unused by Kafka so far; kept as found
	TimestampDelta int64
	OffsetDelta    int32
	Key            []byte // nil means a null key
	Value          []byte // nil means a null value (a tombstone)
	Headers        []Header
}

// minRecordSize is the smallest encoded record: a one-byte length followed
// by attributes, timestamp delta, offset delta, key and value lengths and
// header count of one byte each. It bounds how many records a body can hold,
// so a hostile NumRecords never drives an allocation.
const minRecordSize = 7

// Records decodes the records of the batch b, which must be exactly one
// batch: it checks the size and the CRC like CheckCRC, decompresses with at
// most maxDecompressed bytes of output, and decodes NumRecords records that
// must fill the records section exactly. Unlike ValidateBatch it accepts what
// compaction leaves behind: gaps in the offset deltas (which must still be
// increasing and at most LastOffsetDelta) and batches with no records.
//
// The returned keys, values and header values alias b (uncompressed batch)
// or one freshly allocated buffer (compressed batch); they stay valid as long
// as b is not modified.
func Records(b []byte, maxDecompressed int) (BatchHeader, []Record, error) {
	h, err := CheckCRC(b)
	if err != nil {
		return h, nil, err
	}
	recs, err := decodeBatchRecords(h, b, maxDecompressed, nil, nil)
	return h, recs, err
}

// decodeBatchRecords appends to recs the records of a batch whose size and
// CRC have been checked. A compressed batch is decompressed into a buffer
// from ob (nil: a fresh one the records may keep; otherwise the records
// alias ob's buffer and are valid until ob is used again or released).
func decodeBatchRecords(h BatchHeader, b []byte, maxDecompressed int, recs []Record, ob *outBuf) ([]Record, error) {
	if h.NumRecords < 0 || h.LastOffsetDelta < 0 {
		return nil, fmt.Errorf("record: batch at offset %d: record count %d, last offset delta %d: %w",
			h.BaseOffset, h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	}
	body, err := batchBody(h, b, maxDecompressed, ob)
	if err != nil {
		return nil, err
	}
	recs = slices.Grow(recs, min(int(h.NumRecords), len(body)/minRecordSize))
	if err := walkRecords(h, body, false, &recs); err != nil {
		return nil, err
	}
	return recs, nil
}

// walkRecords decodes the h.NumRecords records of body. strict requires the
// offset deltas to be 0..n-1 (a producer's batch); otherwise they must be
// strictly increasing and at most h.LastOffsetDelta. With out nil nothing is
// kept, so validation does not allocate.
func walkRecords(h BatchHeader, body []byte, strict bool, out *[]Record) error {
	r := reader{b: body}
	prev := int32(-1)
	for i := int32(0); i < h.NumRecords; i++ {
		length := r.varint32()
		if !r.ok() || length < 0 || int(length) > r.remaining() {
			return fmt.Errorf("record: batch at offset %d: record %d: length %d with %d bytes left: %w",
				h.BaseOffset, i, length, r.remaining(), ErrInvalidRecord)
		}
		rr := reader{b: r.span(int(length))}
		var rec Record
		decodeRecord(&rr, &rec, out != nil)
		if !rr.complete() {
			return fmt.Errorf("record: batch at offset %d: record %d: does not decode to its length %d: %w",
				h.BaseOffset, i, length, ErrInvalidRecord)
		}
		if strict && rec.OffsetDelta != i {
			return fmt.Errorf("record: batch at offset %d: record %d has offset delta %d: %w",
				h.BaseOffset, i, rec.OffsetDelta, ErrInvalidRecord)
		}
		if rec.OffsetDelta <= prev || rec.OffsetDelta > h.LastOffsetDelta {
			return fmt.Errorf("record: batch at offset %d: record %d: offset delta %d after %d, last %d: %w",
				h.BaseOffset, i, rec.OffsetDelta, prev, h.LastOffsetDelta, ErrInvalidRecord)
		}
		prev = rec.OffsetDelta
		if out != nil {
			*out = append(*out, rec)
		}
	}
	if r.remaining() != 0 {
		return fmt.Errorf("record: batch at offset %d: %d bytes after record %d of %d: %w",
			h.BaseOffset, r.remaining(), h.NumRecords, h.NumRecords, ErrInvalidRecord)
	}
	return nil
}

// decodeRecord decodes the fields of a record after its length. Header keys
// are materialized (and headers kept) only when keep is set.
func decodeRecord(r *reader, rec *Record, keep bool) {
	rec.Attributes = r.int8()
	rec.TimestampDelta = r.varint64()
	rec.OffsetDelta = r.varint32()
	rec.Key = r.varBytes()
	rec.Value = r.varBytes()
	n := r.varint32()
	// Each header takes at least two bytes (two zero lengths).
	if n < 0 || int(n) > r.remaining()/2 {
		r.fail()
		return
	}
	if keep && n > 0 {
		rec.Headers = make([]Header, 0, n)
	}
	for range n {
		klen := r.varint32()
		if klen < 0 {
			r.fail()
			return
		}
		k := r.span(int(klen))
		v := r.varBytes()
		if !r.ok() {
			return
		}
		if keep {
			rec.Headers = append(rec.Headers, Header{Key: string(k), Value: v})
		}
	}
}

// BatchSpec describes a batch for AppendBatch.
type BatchSpec struct {
	BaseOffset           int64
	PartitionLeaderEpoch int32 // -1 when unknown
	Codec                Codec
	// CompressionLevel is the codec's level (KIP-390); DefaultLevel (0)
	// is the codec's default.
	CompressionLevel int
	LogAppendTime    bool
	Transactional    bool
	Control          bool
	BaseTimestamp    int64
	// AppendTime is the MaxTimestamp of a LogAppendTime batch (the time the
	// broker appended it); it is ignored otherwise.
	AppendTime    int64
	ProducerID    int64 // -1 for none
	ProducerEpoch int16 // -1 for none
	BaseSequence  int32 // -1 for none
}

// scratchPool holds the buffers AppendBatch encodes records into before
// compressing them; buffers past maxPooledScratch are left to the GC.
var scratchPool = sync.Pool{New: func() any { return new([]byte) }}

const maxPooledScratch = 4 << 20

// AppendBatch appends to dst one v2 batch holding records, with their offset
// and timestamp deltas as given, compressed with spec.Codec. The records must
// be at least one, with strictly increasing non-negative offset deltas.
// LastOffsetDelta is the last record's offset delta; MaxTimestamp is
// BaseTimestamp plus the largest timestamp delta, or spec.AppendTime for a
// LogAppendTime batch. On error dst is returned unchanged.
func AppendBatch(dst []byte, spec BatchSpec, records []Record) ([]byte, error) {
	if !spec.Codec.valid() {
		return dst, fmt.Errorf("record: append batch: %w", spec.Codec.unsupported())
	}
	if len(records) == 0 || len(records) > math.MaxInt32 {
		return dst, fmt.Errorf("record: append batch of %d records: %w", len(records), ErrInvalidRecord)
	}
	prev := int32(-1)
	maxTsDelta := int64(math.MinInt64)
	for i := range records {
		rec := &records[i]
		if rec.OffsetDelta <= prev {
			return dst, fmt.Errorf("record: append batch: record %d: offset delta %d after %d: %w", i, rec.OffsetDelta, prev, ErrInvalidRecord)
		}
		prev = rec.OffsetDelta
		maxTsDelta = max(maxTsDelta, rec.TimestampDelta)
		if _, ok := recordBodySize(rec); !ok {
			return dst, fmt.Errorf("record: append batch: record %d: a field exceeds 2 GiB: %w", i, ErrInvalidRecord)
		}
	}

	start := len(dst)
	dst = append(dst, make([]byte, BatchHeaderSize)...)
	if spec.Codec == CodecNone {
		dst = appendRecords(dst, records)
	} else {
		sp := scratchPool.Get().(*[]byte)
		raw := appendRecords((*sp)[:0], records)
		var err error
		dst, err = compressAt(spec.Codec, spec.CompressionLevel, dst, raw)
		if cap(raw) <= maxPooledScratch {
			*sp = raw
			scratchPool.Put(sp)
		}
		if err != nil {
			return dst[:start], fmt.Errorf("record: append batch: %w", err)
		}
	}
	length := len(dst) - start - logOverhead
	if length > math.MaxInt32 {
		return dst[:start], fmt.Errorf("record: append batch: %d bytes: %w", length, ErrTooLarge)
	}

	attrs := uint16(spec.Codec)
	maxTs := spec.BaseTimestamp + maxTsDelta
	if spec.LogAppendTime {
		attrs |= attrLogAppendTime
		maxTs = spec.AppendTime
	}
	if spec.Transactional {
		attrs |= attrTransactional
	}
	if spec.Control {
		attrs |= attrControl
	}
	b := dst[start:]
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(spec.BaseOffset))
	binary.BigEndian.PutUint32(b[offLength:], uint32(length))
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(spec.PartitionLeaderEpoch))
	b[offMagic] = byte(MagicV2)
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(prev))
	binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(spec.BaseTimestamp))
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(maxTs))
	binary.BigEndian.PutUint64(b[offProducerID:], uint64(spec.ProducerID))
	binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(spec.ProducerEpoch))
	binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(spec.BaseSequence))
	binary.BigEndian.PutUint32(b[offNumRecords:], uint32(len(records)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}

// appendRecords appends the encoded records (length-prefixed) to dst.
func appendRecords(dst []byte, records []Record) []byte {
	for i := range records {
		rec := &records[i]
		size, _ := recordBodySize(rec)
		dst = binary.AppendVarint(dst, int64(size))
		dst = append(dst, byte(rec.Attributes))
		dst = binary.AppendVarint(dst, rec.TimestampDelta)
		dst = binary.AppendVarint(dst, int64(rec.OffsetDelta))
		dst = appendVarBytes(dst, rec.Key)
		dst = appendVarBytes(dst, rec.Value)
		dst = binary.AppendVarint(dst, int64(len(rec.Headers)))
		for _, hd := range rec.Headers {
			dst = binary.AppendVarint(dst, int64(len(hd.Key)))
			dst = append(dst, hd.Key...)
			dst = appendVarBytes(dst, hd.Value)
		}
	}
	return dst
}

func appendVarBytes(dst, b []byte) []byte {
	if b == nil {
		return binary.AppendVarint(dst, -1)
	}
	dst = binary.AppendVarint(dst, int64(len(b)))
	return append(dst, b...)
}

// recordBodySize is the encoded size of a record after its length varint;
// ok is false if the record or one of its fields does not fit in an int32.
func recordBodySize(rec *Record) (size int, ok bool) {
	fits := func(n int) bool { return n <= math.MaxInt32 }
	varBytesSize := func(b []byte) int {
		if b == nil {
			return 1
		}
		ok = ok && fits(len(b))
		return varintSize(int64(len(b))) + len(b)
	}
	ok = fits(len(rec.Headers))
	size = 1 + varintSize(rec.TimestampDelta) + varintSize(int64(rec.OffsetDelta)) +
		varBytesSize(rec.Key) + varBytesSize(rec.Value) + varintSize(int64(len(rec.Headers)))
	for _, hd := range rec.Headers {
		ok = ok && fits(len(hd.Key))
		size += varintSize(int64(len(hd.Key))) + len(hd.Key) + varBytesSize(hd.Value)
	}
	return size, ok && fits(size)
}

// varintSize is the size of v as a zigzag varint.
func varintSize(v int64) int {
	u := uint64(v) << 1
	if v < 0 {
		u = ^u
	}
	n := 1
	for u >= 0x80 {
		u >>= 7
		n++
	}
	return n
}
