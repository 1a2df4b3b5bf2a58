package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Message is a v0 or v1 message of a message set. Keys and values alias the
// input (or the decompressed payload of their wrapper).
type Message struct {
	Offset     int64
	Magic      int8
	Attributes int8
	Timestamp  int64 // NoTimestamp for v0
	Key, Value []byte
}

// Codec is the compression codec of a wrapper message (CodecNone for a plain
// message).
func (m Message) Codec() Codec { return Codec(m.Attributes & attrCodecMask) }

// LogAppendTime reports whether a v1 message has the LogAppendTime
// timestamp type.
func (m Message) LogAppendTime() bool {
	return m.Magic >= MagicV1 && m.Attributes&attrLogAppendTime != 0
}

// Message field sizes: CRC, magic, attributes and the key and value
// lengths, plus the timestamp in v1.
const (
	minMessageV0 = 4 + 1 + 1 + 4 + 4
	minMessageV1 = minMessageV0 + 8
	// minMessageEntry is the smallest message set entry, log overhead
	// included: it bounds the messages a buffer can hold.
	minMessageEntry = logOverhead + minMessageV0
)

// readMessage decodes the message set entry at the start of b and returns it
// with its size. An entry that b holds only in part gives ErrShortBuffer;
// a size field too small for any message, or a bad CRC, ErrCorrupt; a
// message that does not fill its size exactly, ErrInvalidRecord.
func readMessage(b []byte) (Message, int, error) {
	if len(b) < logOverhead {
		return Message{}, 0, fmt.Errorf("record: message set entry: %d bytes: %w", len(b), ErrShortBuffer)
	}
	offset := int64(binary.BigEndian.Uint64(b))
	size := int32(binary.BigEndian.Uint32(b[8:]))
	if size < minMessageV0 {
		return Message{}, 0, fmt.Errorf("record: message at offset %d: size %d: %w", offset, size, ErrCorrupt)
	}
	if int64(size) > int64(len(b)-logOverhead) {
		return Message{}, 0, fmt.Errorf("record: message at offset %d: %d bytes of %d: %w", offset, len(b)-logOverhead, size, ErrShortBuffer)
	}
	body := b[logOverhead : logOverhead+int(size)]
	m := Message{Offset: offset, Magic: int8(body[4]), Timestamp: NoTimestamp}
	switch {
	case m.Magic != MagicV0 && m.Magic != MagicV1:
		return Message{}, 0, fmt.Errorf("record: message at offset %d: magic %d: %w", offset, m.Magic, ErrUnsupportedMagic)
	case m.Magic == MagicV1 && size < minMessageV1:
		return Message{}, 0, fmt.Errorf("record: message at offset %d: size %d: %w", offset, size, ErrCorrupt)
	}
	if got, want := crc32.ChecksumIEEE(body[4:]), binary.BigEndian.Uint32(body); got != want {
		return Message{}, 0, fmt.Errorf("record: message at offset %d: crc %08x, message says %08x: %w", offset, got, want, ErrCorrupt)
	}
	r := reader{b: body[5:]}
	m.Attributes = r.int8()
	if m.Magic == MagicV1 {
		m.Timestamp = r.int64()
	}
	m.Key = r.bytes32()
	m.Value = r.bytes32()
	if !r.complete() {
		return Message{}, 0, fmt.Errorf("record: message at offset %d: key and value do not fill size %d: %w", offset, size, ErrInvalidRecord)
	}
	return m, logOverhead + int(size), nil
}

// ParseMessageSet decodes a v0/v1 message set, replacing each compressed
// wrapper message by its inner messages (decompressed with at most
// maxDecompressed bytes each) with absolute offsets, as Kafka's
// AbstractLegacyRecordBatch computes them: the inner offsets of a v1 wrapper
// are relative and the wrapper carries the absolute offset of the last one;
// those of a v0 wrapper are absolute (and so are v1 inner offsets if the
// wrapper's offset is below the last of them). Inner messages of a LogAppendTime
// wrapper take its timestamp. A partial message at the end of b (a fetch
// response cut at its byte limit) is ignored. The broker itself converts
// with ConvertMessageSet; this is the reader for what it serves (tests of
// down-converted fetches read with it).
func ParseMessageSet(b []byte, maxDecompressed int) ([]Message, error) {
	var out []Message
	for len(b) > 0 {
		m, n, err := readMessage(b)
		if errors.Is(err, ErrShortBuffer) {
			break
		}
		if err != nil {
			return nil, err
		}
		b = b[n:]
		if m.Codec() == CodecNone {
			out = append(out, m)
			continue
		}
		inner, err := expandWrapper(&m, maxDecompressed)
		if err != nil {
			return nil, err
		}
		out = append(out, inner...)
	}
	return out, nil
}

// expandWrapper decompresses a wrapper message and returns its inner
// messages with absolute offsets. Inner messages must be complete, have the
// wrapper's magic and no compression of their own, and there must be at
// least one, as Kafka requires.
func expandWrapper(w *Message, maxDecompressed int) ([]Message, error) {
	c := w.Codec()
	if c > CodecLZ4 {
		return nil, fmt.Errorf("record: message at offset %d: magic %d cannot carry %w", w.Offset, w.Magic, c.unsupported())
	}
	if w.Value == nil {
		return nil, fmt.Errorf("record: wrapper message at offset %d: null value: %w", w.Offset, ErrInvalidRecord)
	}
	data, err := decompress(c, w.Value, maxDecompressed, w.Magic == MagicV0, nil)
	if err != nil {
		return nil, fmt.Errorf("record: wrapper message at offset %d: %w", w.Offset, err)
	}
	inner := make([]Message, 0, len(data)/minMessageEntry)
	for len(data) > 0 {
		m, n, err := readMessage(data)
		if err != nil {
			if errors.Is(err, ErrShortBuffer) {
				err = fmt.Errorf("%w: %v", ErrCorrupt, err)
			}
			return nil, fmt.Errorf("record: wrapper message at offset %d: inner message: %w", w.Offset, err)
		}
		data = data[n:]
		switch {
		case m.Magic != w.Magic:
			return nil, fmt.Errorf("record: wrapper message at offset %d: inner magic %d, wrapper %d: %w", w.Offset, m.Magic, w.Magic, ErrInvalidRecord)
		case m.Codec() != CodecNone:
			return nil, fmt.Errorf("record: wrapper message at offset %d: nested compression: %w", w.Offset, ErrInvalidRecord)
		}
		inner = append(inner, m)
	}
	if len(inner) == 0 {
		return nil, fmt.Errorf("record: wrapper message at offset %d: no inner messages: %w", w.Offset, ErrInvalidRecord)
	}
	// A negative base (some producers wrote wrapper offset 0) leaves the
	// inner offsets as they are, as Kafka's consumer does.
	if base := w.Offset - inner[len(inner)-1].Offset; w.Magic == MagicV1 && base >= 0 {
		for i := range inner {
			inner[i].Offset += base
		}
	}
	if w.LogAppendTime() {
		for i := range inner {
			inner[i].Timestamp = w.Timestamp
			inner[i].Attributes |= attrLogAppendTime
		}
	}
	return inner, nil
}

// appendMessage appends one message set entry.
func appendMessage(dst []byte, magic int8, offset int64, attrs int8, ts int64, key, value []byte) []byte {
	size := minMessageV0 + len(key) + len(value)
	if magic == MagicV1 {
		size += 8
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(offset))
	dst = binary.BigEndian.AppendUint32(dst, uint32(size))
	crcAt := len(dst)
	dst = append(dst, 0, 0, 0, 0, byte(magic), byte(attrs))
	if magic == MagicV1 {
		dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	}
	dst = appendBytes32(dst, key)
	dst = appendBytes32(dst, value)
	binary.BigEndian.PutUint32(dst[crcAt:], crc32.ChecksumIEEE(dst[crcAt+4:]))
	return dst
}

func appendBytes32(dst, b []byte) []byte {
	if b == nil {
		return binary.BigEndian.AppendUint32(dst, 0xFFFFFFFF)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}
