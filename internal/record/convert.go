package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// ConvertMessageSet turns the v0/v1 message set of a Produce v0-v2 request
// into v2 batches ready for the log, in order: base offset 0 (the partition
// assigns offsets), no producer id, partition leader epoch -1, offset deltas
// 0..n-1.
//
//   - A run of consecutive plain messages with the same timestamp type
//     becomes one uncompressed batch (kafka-node sends 100 messages as 100
//     plain messages: they are one batch).
//   - A compressed wrapper message becomes one batch of its inner messages,
//     compressed with the wrapper's codec. Its payload is decompressed with
//     at most maxDecompressed bytes; LZ4 in v0 may carry the broken header
//     checksum of KAFKA-3160.
//   - v1 timestamps carry over, as does the LogAppendTime type (the
//     batch's MaxTimestamp is then the wrapper's timestamp, or the latest of
//     the run); v0 messages get NoTimestamp.
//
// Every message's CRC is checked. A message set cut inside a message is
// ErrCorrupt here (it is a produce request, not a fetch response). An empty
// b gives no batches.
func ConvertMessageSet(b []byte, maxDecompressed int) ([][]byte, error) {
	var (
		out   [][]byte
		run   []Message
		runAt int64 // offset of the first message of run, for errors
	)
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		lat, appendTime := run[0].LogAppendTime(), int64(math.MinInt64)
		for i := range run {
			appendTime = max(appendTime, run[i].Timestamp)
		}
		batch, err := convertMessages(run, CodecNone, lat, appendTime)
		if err != nil {
			return fmt.Errorf("record: messages from offset %d: %w", runAt, err)
		}
		out = append(out, batch)
		run = run[:0]
		return nil
	}
	for len(b) > 0 {
		m, n, err := readMessage(b)
		if err != nil {
			if errors.Is(err, ErrShortBuffer) {
				err = fmt.Errorf("%w: truncated message set: %v", ErrCorrupt, err)
			}
			return nil, err
		}
		b = b[n:]
		if m.Codec() == CodecNone {
			if len(run) > 0 && run[0].LogAppendTime() != m.LogAppendTime() {
				if err := flush(); err != nil {
					return nil, err
				}
			}
			if len(run) == 0 {
				runAt = m.Offset
			}
			run = append(run, m)
			continue
		}
		if err := flush(); err != nil {
			return nil, err
		}
		inner, err := expandWrapper(&m, maxDecompressed)
		if err != nil {
			return nil, err
		}
		batch, err := convertMessages(inner, m.Codec(), m.LogAppendTime(), m.Timestamp)
		if err != nil {
			return nil, fmt.Errorf("record: wrapper message at offset %d: %w", m.Offset, err)
		}
		out = append(out, batch)
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return out, nil
}

// convertMessages builds one v2 batch of msgs. The first timestamp is the
// base, as Kafka's MemoryRecordsBuilder does.
func convertMessages(msgs []Message, c Codec, logAppendTime bool, appendTime int64) ([]byte, error) {
	base := msgs[0].Timestamp
	recs := make([]Record, len(msgs))
	size := 0
	for i := range msgs {
		recs[i] = Record{
			TimestampDelta: msgs[i].Timestamp - base,
			OffsetDelta:    int32(i),
			Key:            msgs[i].Key,
			Value:          msgs[i].Value,
		}
		size += len(msgs[i].Key) + len(msgs[i].Value) + 24
	}
	spec := BatchSpec{
		PartitionLeaderEpoch: -1,
		Codec:                c,
		LogAppendTime:        logAppendTime,
		BaseTimestamp:        base,
		AppendTime:           appendTime,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
	if c != CodecNone {
		size /= 2
	}
	return AppendBatch(make([]byte, 0, BatchHeaderSize+size), spec, recs)
}

// DownConvert turns v2 batches as read from the log (concatenated, a
// partial batch at the end ignored, as reads are cut at a byte limit) into a
// message set of magic v0 or v1 with absolute offsets, for Fetch v0-v3.
//
//   - Control batches and batches left empty by compaction are dropped.
//   - An uncompressed batch becomes plain messages; a compressed one becomes
//     one wrapper message with the same codec, whose inner offsets are
//     relative in v1 (the wrapper carries the last absolute offset) and
//     absolute in v0. LZ4 in v0 gets Kafka's broken header checksum
//     (KAFKA-3160), which the clients of that era verify.
//   - zstd cannot be expressed in v0/v1: a zstd batch becomes a gzip
//     wrapper, a codec every client of those versions knows. Kafka answers
//     UNSUPPORTED_COMPRESSION_TYPE instead; Strom recompresses, so that a
//     topic with compression.type=zstd stays readable by the old clients
//     (kafka-node) the tutorials use. gzip, not none: the consumer still
//     gets compressed data, as the topic promised.
//   - Headers are dropped; v1 messages take the record timestamps (with the
//     LogAppendTime type when the batch has it), v0 messages have none.
//
// Each batch's CRC is checked (ErrCorrupt) and its records decoded with at
// most maxDecompressed bytes of decompressed output per batch.
func DownConvert(batches []byte, magic int8, maxDecompressed int) ([]byte, error) {
	if magic != MagicV0 && magic != MagicV1 {
		return nil, fmt.Errorf("record: down-convert to magic %d: %w", magic, ErrUnsupportedMagic)
	}
	out := make([]byte, 0, len(batches)+len(batches)/4)
	// The records of one batch at a time, their decompressed body and the
	// inner message set of its wrapper, in pooled buffers: a call allocates
	// its result and nothing in proportion to the batches it converts.
	sc := getRecordScratch()
	defer sc.put()
	for len(batches) > 0 {
		h, err := ReadBatchHeader(batches)
		if errors.Is(err, ErrShortBuffer) {
			break
		}
		if err != nil {
			return nil, err
		}
		if h.Size() > len(batches) {
			break
		}
		b := batches[:h.Size()]
		batches = batches[h.Size():]
		if err := checkSizeCRC(h, b); err != nil {
			return nil, err
		}
		if h.IsControl() {
			continue
		}
		c := h.Codec()
		if c == CodecZstd {
			c = CodecGzip // v0/v1 cannot carry zstd
		}
		recs, err := decodeBatchRecords(h, b, maxDecompressed, sc.recs[:0], &sc.ob)
		sc.recs = recs
		if err != nil {
			return nil, err
		}
		if len(recs) == 0 {
			continue
		}
		var attrs int8
		if magic == MagicV1 && h.LogAppendTime() {
			attrs = attrLogAppendTime
		}
		if c == CodecNone {
			for i := range recs {
				r := &recs[i]
				out = appendMessage(out, magic, h.BaseOffset+int64(r.OffsetDelta), attrs, h.RecordTimestamp(r), r.Key, r.Value)
			}
			continue
		}
		inner := sc.inner[:0]
		maxTs := int64(math.MinInt64)
		for i := range recs {
			r := &recs[i]
			off := int64(r.OffsetDelta)
			if magic == MagicV0 {
				off += h.BaseOffset
			}
			ts := h.RecordTimestamp(r)
			maxTs = max(maxTs, ts)
			inner = appendMessage(inner, magic, off, attrs, ts, r.Key, r.Value)
		}
		sc.inner = inner
		last := h.BaseOffset + int64(recs[len(recs)-1].OffsetDelta)
		if out, err = appendWrapper(out, magic, last, attrs, maxTs, c, inner); err != nil {
			return nil, fmt.Errorf("record: batch at offset %d: %w", h.BaseOffset, err)
		}
	}
	return out, nil
}

// appendWrapper appends a wrapper message holding inner (a message set)
// compressed with c, compressing straight into dst.
func appendWrapper(dst []byte, magic int8, offset int64, attrs int8, ts int64, c Codec, inner []byte) ([]byte, error) {
	start := len(dst)
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, byte(magic), byte(attrs)|byte(c)) // size, CRC
	if magic == MagicV1 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	}
	dst = appendBytes32(dst, nil) // key
	valueAt := len(dst) + 4
	dst, err := Compress(c, append(dst, 0, 0, 0, 0), inner)
	if err != nil {
		return dst[:start], err
	}
	if magic == MagicV0 && c == CodecLZ4 {
		breakLZ4HeaderChecksum(dst[valueAt:])
	}
	binary.BigEndian.PutUint32(dst[valueAt-4:], uint32(len(dst)-valueAt))
	binary.BigEndian.PutUint32(dst[start+8:], uint32(len(dst)-start-logOverhead))
	binary.BigEndian.PutUint32(dst[start+12:], crc32.ChecksumIEEE(dst[start+16:]))
	return dst, nil
}

// ToBatches returns the v2 record batches a produce request's records
// stand for: b itself when it holds batches (magic 2), or, when
// messageSets is set (Produce v0-v2), the v0/v1 message set converted by
// ConvertMessageSet into one buffer. Empty input, or a message set where
// only batches are allowed, is ErrInvalidRecord.
func ToBatches(b []byte, messageSets bool, maxDecompressed int) ([]byte, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: no records", ErrInvalidRecord)
	}
	magic, err := PeekMagic(b)
	if err != nil {
		return nil, err
	}
	if magic == MagicV2 {
		return b, nil
	}
	if !messageSets {
		return nil, fmt.Errorf("%w: record batches (magic 2) required, got magic %d", ErrInvalidRecord, magic)
	}
	batches, err := ConvertMessageSet(b, maxDecompressed)
	if err != nil {
		return nil, err
	}
	if len(batches) == 1 {
		return batches[0], nil
	}
	n := 0
	for _, bb := range batches {
		n += len(bb)
	}
	out := make([]byte, 0, n)
	for _, bb := range batches {
		out = append(out, bb...)
	}
	return out, nil
}

// TrimMessageSet drops the leading entries of a down-converted message set
// that end before offset (a compressed wrapper's offset is its last inner
// message's), so that an old client's fetch starts at what it asked for.
func TrimMessageSet(ms []byte, offset int64) []byte {
	for len(ms) >= 12 {
		size := int64(binary.BigEndian.Uint32(ms[8:]))
		if int64(binary.BigEndian.Uint64(ms)) >= offset || 12+size > int64(len(ms)) {
			break
		}
		ms = ms[12+size:]
	}
	return ms
}
