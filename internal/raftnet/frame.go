package raftnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"

	"github.com/stromhq/strom/internal/bufpool"
)

// kindBatch is the frame kind of raft messages (the first byte of a
// frame's body); the handshake's kinds are in handshake.go.
const kindBatch byte = 2

const (
	frameHeader  = 8  // size uint32 + crc uint32
	entryHeader  = 12 // group uint64 + length uint32
	batchMinBody = 5  // kind + count
	// DefaultMaxFrame bounds a frame's size field (CRC and body), checked
	// before the body is allocated.
	DefaultMaxFrame = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadFrame is a frame that does not decode: wrong size, CRC, kind or
// an entry that overruns the frame. The connection carrying it is closed.
var ErrBadFrame = errors.New("raftnet: bad frame")

// entry is one raft message of one group, its bytes as proto.Marshal wrote
// them. In a decoded frame Msg aliases the frame's buffer.
type entry struct {
	Group uint64
	Msg   []byte
}

// appendBatch appends the frame of es to dst.
func appendBatch(dst []byte, es []entry) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0, 0, 0, 0, 0, kindBatch)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(es)))
	for _, e := range es {
		dst = binary.BigEndian.AppendUint64(dst, e.Group)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(e.Msg)))
		dst = append(dst, e.Msg...)
	}
	return sealFrame(dst, start)
}

// sealFrame fills the size and CRC of the frame that starts at start.
func sealFrame(dst []byte, start int) []byte {
	f := dst[start:]
	binary.BigEndian.PutUint32(f[0:4], uint32(len(f)-4))
	binary.BigEndian.PutUint32(f[4:8], crc32.Checksum(f[frameHeader:], castagnoli))
	return dst
}

// readFrame reads one frame from r and returns its body (kind onwards),
// after checking the size against max before allocating and the CRC.
// The body is from bufpool: the caller puts it back once done with it.
func readFrame(r io.Reader, max int) ([]byte, error) {
	var hdr [frameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(hdr[0:4])
	if size < 4+1 || uint64(size) > uint64(max) {
		return nil, fmt.Errorf("%w: size %d outside [5, %d]", ErrBadFrame, size, max)
	}
	body := bufpool.Get(int(size - 4))
	if _, err := io.ReadFull(r, body); err != nil {
		bufpool.Put(body)
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	if got, want := crc32.Checksum(body, castagnoli), binary.BigEndian.Uint32(hdr[4:8]); got != want {
		bufpool.Put(body)
		return nil, fmt.Errorf("%w: crc %08x, header says %08x", ErrBadFrame, got, want)
	}
	return body, nil
}

// decodeBatch decodes a batch frame's body. The entries alias body. The
// count is checked against the bytes left before the slice is allocated.
func decodeBatch(body []byte) ([]entry, error) {
	if len(body) < batchMinBody || body[0] != kindBatch {
		return nil, fmt.Errorf("%w: not a batch", ErrBadFrame)
	}
	count := uint64(binary.BigEndian.Uint32(body[1:5]))
	rest := body[batchMinBody:]
	if count*entryHeader > uint64(len(rest)) {
		return nil, fmt.Errorf("%w: %d entries in %d bytes", ErrBadFrame, count, len(rest))
	}
	es := make([]entry, 0, count)
	for i := uint64(0); i < count; i++ {
		if len(rest) < entryHeader {
			return nil, fmt.Errorf("%w: entry %d truncated", ErrBadFrame, i)
		}
		g := binary.BigEndian.Uint64(rest[0:8])
		n := uint64(binary.BigEndian.Uint32(rest[8:12]))
		rest = rest[entryHeader:]
		if n > uint64(len(rest)) {
			return nil, fmt.Errorf("%w: entry %d of %d bytes, %d left", ErrBadFrame, i, n, len(rest))
		}
		es = append(es, entry{Group: g, Msg: rest[:n:n]})
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", ErrBadFrame, len(rest))
	}
	return es, nil
}
