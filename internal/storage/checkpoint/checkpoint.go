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
// Writes are atomic: the new content goes to <name>.tmp, which is fsynced,
// renamed over <name>, and the directory is fsynced. A reader sees the old
// file or the new one, never a mix; a file that fails its checks is
// ErrCorrupt, and the caller falls back to full recovery.
package checkpoint

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"sort"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrCorrupt is returned for a file that is not a valid checkpoint.
var ErrCorrupt = errors.New("checkpoint: corrupt file")

const (
	magic      = "STCK"
	version    = 1
	headerSize = 4 + 2 + 4 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Partition names one partition of a topic.
type Partition struct {
	Topic     string
	Partition int32
}

// Encode returns the file content for entries, sorted for stable output.
func Encode(entries map[Partition]int64) []byte {
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
	out := make([]byte, 0, headerSize+len(payload))
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint16(out, version)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(payload, castagnoli))
	out = binary.BigEndian.AppendUint32(out, uint32(len(payload)))
	return append(out, payload...)
}

// Decode parses file content. It never panics and never allocates more than
// the input's size.
func Decode(b []byte) (map[Partition]int64, error) {
	if len(b) < headerSize || string(b[:4]) != magic {
		return nil, fmt.Errorf("%w: bad header", ErrCorrupt)
	}
	if v := binary.BigEndian.Uint16(b[4:]); v != version {
		return nil, fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	sum := binary.BigEndian.Uint32(b[6:])
	n := binary.BigEndian.Uint32(b[10:])
	payload := b[headerSize:]
	if uint64(n) != uint64(len(payload)) {
		return nil, fmt.Errorf("%w: length %d, have %d", ErrCorrupt, n, len(payload))
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
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

// Write atomically replaces the file at path with entries. When it fails
// before the rename, the temporary file is removed (best effort): on a full
// disk a half-written one would only hold space.
func Write(fs vfs.FS, path string, entries map[Partition]int64) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := writeSync(f, Encode(entries)); err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := fs.Rename(tmp, path); err != nil {
		_ = fs.Remove(tmp)
		return fmt.Errorf("checkpoint %s: rename: %w", path, err)
	}
	if err := fs.SyncDir(filepath.Dir(path)); err != nil {
		return fmt.Errorf("checkpoint %s: sync dir: %w", path, err)
	}
	return nil
}

// writeSync writes b to f, syncs and closes it.
func writeSync(f vfs.File, b []byte) error {
	if _, err := f.Write(b); err != nil {
		f.Close()
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return nil
}

// Read returns the entries of the file at path. A missing file is an error
// satisfying errors.Is(err, fs.ErrNotExist).
func Read(fs vfs.FS, path string) (map[Partition]int64, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if size > 1<<30 {
		return nil, fmt.Errorf("checkpoint %s: %w: %d bytes", path, ErrCorrupt, size)
	}
	b := make([]byte, size)
	if _, err := f.ReadAt(b, 0); err != nil && size > 0 {
		return nil, fmt.Errorf("checkpoint %s: read: %w", path, err)
	}
	m, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return m, nil
}
