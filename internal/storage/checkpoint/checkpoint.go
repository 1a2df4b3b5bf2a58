// Package checkpoint reads and writes the small per-data-directory files
// that record, for every partition, one offset: the recovery point (all
// offsets below it were fsynced) or the log start offset.
//
// File layout (big-endian):
//
//	+-----------+-------------+----------------+---------------+
//	| magic (4) | version (2) | CRC-32C (4)    | length (4)    |
//	| "STCK"    | 1           | of the payload | of the payload|
//	+-----------+-------------+----------------+---------------+
//	| payload: count (4), then count entries:                  |
//	|   topic length (2) | topic bytes | partition (4) | offset (8) |
//	+----------------------------------------------------------+
//
// The header is package atomicfile's, which also writes the file: a reader
// sees the old file or the new one, never a mix; a file that fails its
// checks is ErrCorrupt, and the caller falls back to full recovery.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrCorrupt is returned for a file that is not a valid checkpoint.
var ErrCorrupt = errors.New("checkpoint: corrupt file")

const (
	magic   = "STCK"
	version = 1
)

// Partition names one partition of a topic.
type Partition struct {
	Topic     string
	Partition int32
}

// encodePayload lays out entries, sorted for stable output.
func encodePayload(entries map[Partition]int64) []byte {
	keys := make([]Partition, 0, len(entries))
	for k := range entries {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].Topic != keys[j].Topic {
			return keys[i].Topic < keys[j].Topic
		}
		return keys[i].Partition < keys[j].Partition
	})
	payload := binary.BigEndian.AppendUint32(nil, uint32(len(keys)))
	for _, k := range keys {
		payload = binary.BigEndian.AppendUint16(payload, uint16(len(k.Topic)))
		payload = append(payload, k.Topic...)
		payload = binary.BigEndian.AppendUint32(payload, uint32(k.Partition))
		payload = binary.BigEndian.AppendUint64(payload, uint64(entries[k]))
	}
	return payload
}

// Decode parses file content. It never panics and never allocates more than
// the input's size.
func Decode(b []byte) (map[Partition]int64, error) {
	v, payload, err := atomicfile.Decode(b, magic)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return decodePayload(v, payload)
}

func decodePayload(v uint16, payload []byte) (map[Partition]int64, error) {
	if v != version {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	if len(payload) < 4 {
		return nil, fmt.Errorf("%w: short payload", ErrCorrupt)
	}
	count := binary.BigEndian.Uint32(payload)
	p := payload[4:]
	// Each entry takes at least 14 bytes: bound the map before allocating.
	if uint64(count)*14 > uint64(len(p)) {
		return nil, fmt.Errorf("%w: %d entries cannot fit", ErrCorrupt, count)
	}
	out := make(map[Partition]int64, count)
	for i := uint32(0); i < count; i++ {
		if len(p) < 2 {
			return nil, fmt.Errorf("%w: truncated entry", ErrCorrupt)
		}
		tl := int(binary.BigEndian.Uint16(p))
		if len(p) < 2+tl+12 {
			return nil, fmt.Errorf("%w: truncated entry", ErrCorrupt)
		}
		k := Partition{Topic: string(p[2 : 2+tl]), Partition: int32(binary.BigEndian.Uint32(p[2+tl:]))}
		out[k] = int64(binary.BigEndian.Uint64(p[2+tl+4:]))
		p = p[2+tl+12:]
	}
	if len(p) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrCorrupt, len(p))
	}
	return out, nil
}

// Write atomically replaces the file at path with entries (package
// atomicfile).
func Write(fs vfs.FS, path string, entries map[Partition]int64) error {
	if err := atomicfile.Write(fs, path, magic, version, encodePayload(entries)); err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return nil
}

// Read returns the entries of the file at path. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist).
func Read(fs vfs.FS, path string) (map[Partition]int64, error) {
	b, err := atomicfile.ReadBytes(fs, path, 1<<30)
	if errors.Is(err, atomicfile.ErrCorrupt) {
		err = fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	var m map[Partition]int64
	if err == nil {
		m, err = Decode(b)
	}
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return m, nil
}
