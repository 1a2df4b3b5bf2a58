package record

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// attrDeleteHorizon marks a batch whose BaseTimestamp holds the delete
// horizon (KIP-534): the time after which the cleaner may remove its
// tombstones. Record timestamps stay BaseTimestamp+TimestampDelta, so
// readers that do not know the bit still see the right times.
const attrDeleteHorizon = 0x40

// DeleteHorizon returns the batch's delete horizon in Unix milliseconds,
// if the cleaner set one.
func (h BatchHeader) DeleteHorizon() (int64, bool) {
	if h.Attributes&attrDeleteHorizon == 0 {
		return 0, false
	}
	return h.BaseTimestamp, true
}

// AppendCompacted appends to dst the batch h with only the records kept (a
// subset of its records, in order, with their offset deltas). Everything
// else is kept from h: base offset, LastOffsetDelta (so the batch still
// covers its offsets and its producer's last sequence is unchanged),
// producer id, epoch, base sequence, codec, timestamp type, transactional
// and control flags. With horizon >= 0 and no horizon set yet, the batch
// gets that delete horizon: BaseTimestamp becomes it and the timestamp
// deltas are rebased, so every record keeps its timestamp. With no record
// kept the batch is written as a bare header (NumRecords 0), which keeps an
// idempotent producer's state alive across cleaning.
func AppendCompacted(dst []byte, h BatchHeader, kept []Record, horizon int64) ([]byte, error) {
	spec := BatchSpec{
		BaseOffset:           h.BaseOffset,
		PartitionLeaderEpoch: h.PartitionLeaderEpoch,
		Codec:                h.Codec(),
		LogAppendTime:        h.LogAppendTime(),
		Transactional:        h.IsTransactional(),
		Control:              h.IsControl(),
		BaseTimestamp:        h.BaseTimestamp,
		AppendTime:           h.MaxTimestamp,
		ProducerID:           h.ProducerID,
		ProducerEpoch:        h.ProducerEpoch,
		BaseSequence:         h.BaseSequence,
	}
	attrs := uint16(h.Attributes) & attrDeleteHorizon
	if _, set := h.DeleteHorizon(); !set && horizon >= 0 {
		if !h.LogAppendTime() {
			for i := range kept {
				kept[i].TimestampDelta += h.BaseTimestamp - horizon
			}
		}
		spec.BaseTimestamp = horizon
		attrs = attrDeleteHorizon
	}
	start := len(dst)
	if len(kept) == 0 {
		dst = append(dst, make([]byte, BatchHeaderSize)...)
		b := dst[start:]
		binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(h.BaseOffset))
		binary.BigEndian.PutUint32(b[offLength:], uint32(minBatchLength))
		binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(h.PartitionLeaderEpoch))
		b[offMagic] = byte(MagicV2)
		// No records: no codec.
		binary.BigEndian.PutUint16(b[offAttributes:], uint16(h.Attributes)&^attrCodecMask)
		binary.BigEndian.PutUint64(b[offBaseTimestamp:], uint64(h.BaseTimestamp))
		binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(h.MaxTimestamp))
		binary.BigEndian.PutUint64(b[offProducerID:], uint64(h.ProducerID))
		binary.BigEndian.PutUint16(b[offProducerEpoch:], uint16(h.ProducerEpoch))
		binary.BigEndian.PutUint32(b[offBaseSequence:], uint32(h.BaseSequence))
		binary.BigEndian.PutUint32(b[offNumRecords:], 0)
	} else {
		var err error
		dst, err = AppendBatch(dst, spec, kept)
		if err != nil {
			return dst, fmt.Errorf("record: compacted batch at offset %d: %w", h.BaseOffset, err)
		}
		b := dst[start:]
		a := binary.BigEndian.Uint16(b[offAttributes:])
		binary.BigEndian.PutUint16(b[offAttributes:], a|attrs)
	}
	b := dst[start:]
	binary.BigEndian.PutUint32(b[offLastOffsetDelta:], uint32(h.LastOffsetDelta))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return dst, nil
}
