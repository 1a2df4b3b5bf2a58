package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
)

// Magic bytes: the format version at byte 16 of a message or batch.
const (
	MagicV0 int8 = 0 // message sets, Kafka 0.8-0.9
	MagicV1 int8 = 1 // message sets with timestamps, Kafka 0.10
	MagicV2 int8 = 2 // record batches, Kafka 0.11+
)

// BatchHeaderSize is the size of a v2 batch header, from BaseOffset through
// NumRecords. The records start right after it.
const BatchHeaderSize = 61

// NoTimestamp is Kafka's "no timestamp" value (v0 messages, records converted
// from them).
const NoTimestamp int64 = -1

// Byte offsets of the v2 batch header fields (see the layout in doc.go).
const (
	offBaseOffset      = 0
	offLength          = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offBaseTimestamp   = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// logOverhead is the BaseOffset and Length prefix that Length does not
	// count; it is the same for v0/v1 messages (Offset and MessageSize).
	logOverhead = 12
	// minBatchLength is the smallest valid Length: a header with no records.
	minBatchLength = BatchHeaderSize - logOverhead
)

// Batch attribute bits.
const (
	attrCodecMask     = 0x07
	attrLogAppendTime = 0x08
	attrTransactional = 0x10
	attrControl       = 0x20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// BatchHeader is the fixed part of a v2 record batch, as it is on the wire.
type BatchHeader struct {
	BaseOffset           int64
	Length               int32 // bytes after the Length field
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32 // CRC-32C of the bytes from Attributes to the end
	Attributes           int16
	LastOffsetDelta      int32
	BaseTimestamp        int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Size is the total size of the batch in bytes, header included.
func (h BatchHeader) Size() int { return logOverhead + int(h.Length) }

// LastOffset is the offset of the batch's last record (which compaction may
// have removed: the batch still covers it).
func (h BatchHeader) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Codec is the compression codec of the records.
func (h BatchHeader) Codec() Codec { return Codec(h.Attributes & attrCodecMask) }

// LogAppendTime reports whether the timestamp type is LogAppendTime, in which
// case every record's timestamp is MaxTimestamp.
func (h BatchHeader) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// IsTransactional reports whether the batch belongs to a transaction.
func (h BatchHeader) IsTransactional() bool { return h.Attributes&attrTransactional != 0 }

// IsControl reports whether the batch holds a transaction marker.
func (h BatchHeader) IsControl() bool { return h.Attributes&attrControl != 0 }

// LastSequence is the sequence number of the batch's last record. Sequences
// wrap from MaxInt32 to 0, as Kafka's DefaultRecordBatch.incrementSequence
// does; a batch without a sequence (BaseSequence -1) has none.
func (h BatchHeader) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	if h.BaseSequence > math.MaxInt32-h.LastOffsetDelta {
		return h.LastOffsetDelta - (math.MaxInt32 - h.BaseSequence) - 1
	}
	return h.BaseSequence + h.LastOffsetDelta
}

// RecordTimestamp is the timestamp of a record of this batch: MaxTimestamp for
// LogAppendTime batches, BaseTimestamp+TimestampDelta otherwise.
func (h BatchHeader) RecordTimestamp(r *Record) int64 {
	if h.LogAppendTime() {
		return h.MaxTimestamp
	}
	return h.BaseTimestamp + r.TimestampDelta
}

// PeekMagic returns the magic byte, which is at byte 16 of both v0/v1
// messages and v2 batches.
func PeekMagic(b []byte) (int8, error) {
	if len(b) <= offMagic {
		return 0, fmt.Errorf("record: magic at byte %d of %d: %w", offMagic, len(b), ErrShortBuffer)
	}
	return int8(b[offMagic]), nil
}

// ReadBatchHeader parses the v2 batch header at the start of b, which may hold
// more bytes than the batch. It checks the magic and that Length covers at
// least the header, and nothing else: not the CRC, not that b holds the whole
// batch.
func ReadBatchHeader(b []byte) (BatchHeader, error) {
	magic, err := PeekMagic(b)
	if err != nil {
		return BatchHeader{}, err
	}
	if magic != MagicV2 {
		return BatchHeader{}, fmt.Errorf("record: batch magic %d: %w", magic, ErrUnsupportedMagic)
	}
	if len(b) < BatchHeaderSize {
		return BatchHeader{}, fmt.Errorf("record: batch header needs %d bytes, have %d: %w", BatchHeaderSize, len(b), ErrShortBuffer)
	}
	h := BatchHeader{
		BaseOffset:           int64(binary.BigEndian.Uint64(b[offBaseOffset:])),
		Length:               int32(binary.BigEndian.Uint32(b[offLength:])),
		PartitionLeaderEpoch: int32(binary.BigEndian.Uint32(b[offLeaderEpoch:])),
		Magic:                magic,
		CRC:                  binary.BigEndian.Uint32(b[offCRC:]),
		Attributes:           int16(binary.BigEndian.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(binary.BigEndian.Uint32(b[offLastOffsetDelta:])),
		BaseTimestamp:        int64(binary.BigEndian.Uint64(b[offBaseTimestamp:])),
		MaxTimestamp:         int64(binary.BigEndian.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(binary.BigEndian.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(binary.BigEndian.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(binary.BigEndian.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(binary.BigEndian.Uint32(b[offNumRecords:])),
	}
	if h.Length < minBatchLength {
		return h, fmt.Errorf("record: batch at offset %d: length %d below minimum %d: %w", h.BaseOffset, h.Length, minBatchLength, ErrCorrupt)
	}
	return h, nil
}

// CheckCRC checks that b is exactly one batch (by its Length field) and that
// its CRC matches. It does not look at the records; it is the cheap check of
// the read path and of crash recovery. A b shorter than the batch gives
// ErrShortBuffer (a torn write); longer, ErrCorrupt.
func CheckCRC(b []byte) (BatchHeader, error) {
	h, err := ReadBatchHeader(b)
	if err != nil {
		return h, err
	}
	if err := checkSizeCRC(h, b); err != nil {
		return h, err
	}
	return h, nil
}

func checkSizeCRC(h BatchHeader, b []byte) error {
	switch size := h.Size(); {
	case len(b) < size:
		return fmt.Errorf("record: batch at offset %d: %d bytes of %d: %w", h.BaseOffset, len(b), size, ErrShortBuffer)
	case len(b) > size:
		return fmt.Errorf("record: batch at offset %d: %d bytes after its end: %w", h.BaseOffset, len(b)-size, ErrCorrupt)
	}
	if got := crc32.Checksum(b[offAttributes:], castagnoli); got != h.CRC {
		return fmt.Errorf("record: batch at offset %d: crc %08x, header says %08x: %w", h.BaseOffset, got, h.CRC, ErrCorrupt)
	}
	return nil
}

// ValidateBatch checks a batch the way Kafka validates one from a producer
// (LogValidator): b is exactly one v2 batch, the CRC matches, the codec is
// known, NumRecords >= 1 and equals LastOffsetDelta+1, and the records
// (decompressed with at most maxDecompressed bytes of output) decode to
// exactly the end of the batch, NumRecords of them, with offset deltas
// 0, 1, ..., NumRecords-1.
//
// A compressed batch is decompressed into a pooled scratch buffer that is
// walked and given back before returning, so that validating a steady
// stream of batches does not allocate (issue 22).
//
// Batches that compaction rewrote (offset gaps, or no records left) fail
// these checks by design; read stored batches with CheckCRC and Records.
// Policy checks that depend on who sends the batch (no control batches from
// clients, sequence numbers for idempotent producers) belong to the caller.
func ValidateBatch(b []byte, maxDecompressed int) (BatchHeader, error) {
	h, err := CheckCRC(b)
	if err != nil {
		return h, err
	}
	if h.NumRecords < 1 || h.LastOffsetDelta != h.NumRecords-1 {
		return h, fmt.Errorf("record: batch at offset %d: %d records for last offset delta %d: %w",
			h.BaseOffset, h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	}
	var ob outBuf
	defer ob.release()
	body, err := batchBody(h, b, maxDecompressed, &ob)
	if err != nil {
		return h, err
	}
	if err := walkRecords(h, body, true, nil); err != nil {
		return h, err
	}
	return h, nil
}

// batchBody returns the uncompressed records section of a batch whose size
// has been checked, decompressed into buffers from ob (nil: a fresh one the
// caller may keep).
func batchBody(h BatchHeader, b []byte, maxDecompressed int, ob *outBuf) ([]byte, error) {
	raw := b[BatchHeaderSize:h.Size()]
	c := h.Codec()
	if c == CodecNone {
		return raw, nil
	}
	if !c.valid() {
		return nil, fmt.Errorf("record: batch at offset %d: %w", h.BaseOffset, c.unsupported())
	}
	body, err := decompress(c, raw, maxDecompressed, false, ob)
	if err != nil {
		return nil, fmt.Errorf("record: batch at offset %d: %w", h.BaseOffset, err)
	}
	return body, nil
}

// SetBaseOffset rewrites the base offset of the batch at the start of b. The
// field is outside the CRC. b must hold at least a batch header; this and
// the other Set functions panic otherwise, as that is a caller bug.
func SetBaseOffset(b []byte, off int64) {
	binary.BigEndian.PutUint64(b[offBaseOffset:offBaseOffset+8], uint64(off))
}

// SetPartitionLeaderEpoch rewrites the partition leader epoch of the batch at
// the start of b. The field is outside the CRC.
func SetPartitionLeaderEpoch(b []byte, epoch int32) {
	binary.BigEndian.PutUint32(b[offLeaderEpoch:offLeaderEpoch+4], uint32(epoch))
}

// SetLogAppendTime marks the batch at the start of b as LogAppendTime with
// MaxTimestamp ts, as Kafka's setMaxTimestamp does: BaseTimestamp and the
// record deltas are kept. Both fields are inside the CRC, which is
// recomputed, so b must hold the whole batch (len(b) >= Size()).
func SetLogAppendTime(b []byte, ts int64) {
	attrs := binary.BigEndian.Uint16(b[offAttributes:offAttributes+2]) | attrLogAppendTime
	binary.BigEndian.PutUint16(b[offAttributes:], attrs)
	binary.BigEndian.PutUint64(b[offMaxTimestamp:offMaxTimestamp+8], uint64(ts))
	size := logOverhead + int(int32(binary.BigEndian.Uint32(b[offLength:])))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:size], castagnoli))
}
