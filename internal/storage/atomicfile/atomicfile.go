package atomicfile

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrCorrupt is what Read and Decode return for content that is not a
// whole file of the expected kind.
var ErrCorrupt = errors.New("corrupt file")

// HeaderSize is the size of the header before the payload.
const HeaderSize = 4 + 2 + 4 + 4

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Encode returns the file content: the header for magic (4 bytes) and
// version, then payload.
func Encode(magic string, version uint16, payload []byte) []byte {
	if len(magic) != 4 {
		panic(fmt.Sprintf("atomicfile: magic %q is not 4 bytes", magic))
	}
	out := make([]byte, 0, HeaderSize+len(payload))
	out = append(out, magic...)
	out = binary.BigEndian.AppendUint16(out, version)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(payload, castagnoli))
	out = binary.BigEndian.AppendUint32(out, uint32(len(payload)))
	return append(out, payload...)
}

// Decode checks content against magic and returns its version and payload
// (a sub-slice of b).
func Decode(b []byte, magic string) (uint16, []byte, error) {
	if len(b) < HeaderSize || string(b[:4]) != magic {
		return 0, nil, fmt.Errorf("%w: not a %q file", ErrCorrupt, magic)
	}
	version := binary.BigEndian.Uint16(b[4:])
	sum := binary.BigEndian.Uint32(b[6:])
	payload := b[HeaderSize:]
	if n := binary.BigEndian.Uint32(b[10:]); uint64(n) != uint64(len(payload)) {
		return 0, nil, fmt.Errorf("%w: length %d, have %d", ErrCorrupt, n, len(payload))
	}
	if crc32.Checksum(payload, castagnoli) != sum {
		return 0, nil, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return version, payload, nil
}

// Write atomically replaces the file at path with the encoded payload.
func Write(fs vfs.FS, path, magic string, version uint16, payload []byte) error {
	return WriteBytes(fs, path, Encode(magic, version, payload))
}

// WriteBytes atomically replaces the file at path with content as it is,
// for a file whose format is someone else's (Kafka's meta.properties).
func WriteBytes(fs vfs.FS, path string, content []byte) error {
	tmp := path + ".tmp"
	f, err := fs.Create(tmp)
	if err != nil {
		return err
	}
	_, err = f.Write(content)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = fs.Rename(tmp, path)
	}
	if err != nil {
		_ = fs.Remove(tmp)
		return err
	}
	return fs.SyncDir(filepath.Dir(path))
}

// ReadBytes reads the whole file at path, refusing one larger than maxSize
// (as corrupt) before reading it, for a caller that decodes it itself. A
// missing file is an error that satisfies errors.Is(err, fs.ErrNotExist).
func ReadBytes(fs vfs.FS, path string, maxSize int64) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	if size > maxSize {
		return nil, fmt.Errorf("%w: %d bytes, at most %d expected", ErrCorrupt, size, maxSize)
	}
	b := make([]byte, size)
	if size > 0 {
		if _, err := f.ReadAt(b, 0); err != nil {
			return nil, err
		}
	}
	return b, nil
}
