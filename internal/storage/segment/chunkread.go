package segment

import (
	"errors"
	"fmt"
	"io"

	"github.com/stromhq/strom/internal/bufpool"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// chunkReader reads a segment's batch headers (and, for a full recovery,
// whole batches) in chunks: one read of chunkBytes brings the headers of
// many small batches, where a read per header cost a system call per
// batch (a recovery of 2 million batches of one small record each, what
// an idempotent acks=all producer writes, took seconds of system time at
// every start after a kill). After a batch of chunkBytes/4 or more the
// next one is likely large too, and reading a chunk would copy mostly
// record data that is skipped (a 10 GiB log of 1 MB batches walked 64 KiB
// per header, 0.7 GB of copies, at every unclean start): its header is
// read alone.
type chunkReader struct {
	f    vfs.File
	base int64 // the segment's, for errors
	size int64 // the segment's bytes: nothing at or past it is read
	buf  []byte
	at   int64 // the position of buf[0]; -1 before the first read
	last int   // the size of the batch just walked (next)
}

const chunkBytes = 64 << 10

// newChunkReader reads f, whose first size bytes are the segment's. Its
// buffer is pooled (a fetch's ReadSection walks a section's headers with
// one: 64 KiB allocated per fetched partition otherwise); release gives it
// back.
func newChunkReader(f vfs.File, base, size int64) *chunkReader {
	return &chunkReader{f: f, base: base, size: size, buf: bufpool.Get(chunkBytes)[:0], at: -1}
}

// release gives the buffer back; r is not used after.
func (r *chunkReader) release() {
	bufpool.Put(r.buf)
	r.buf = nil
}

// header returns the bytes from pos on that the buffer holds, at least
// record.BatchHeaderSize of them unless the file ends (or was short)
// before: the caller checks the length.
func (r *chunkReader) header(pos int64) ([]byte, error) {
	if r.at < 0 || pos < r.at || pos+record.BatchHeaderSize > r.at+int64(len(r.buf)) {
		n := min(int64(chunkBytes), r.size-pos)
		if r.last >= chunkBytes/4 {
			n = min(record.BatchHeaderSize, n)
		}
		if err := r.fill(pos, int(n)); err != nil {
			return nil, err
		}
	}
	return r.buf[pos-r.at:], nil
}

// next records that the batch at the position last asked for is size
// bytes.
func (r *chunkReader) next(size int) { r.last = size }

// batch returns the n bytes at pos, from the buffer when it holds them;
// a batch larger than a chunk is read into *scratch. Short when the file
// is (the caller checks the length).
func (r *chunkReader) batch(pos int64, n int, scratch *[]byte) ([]byte, error) {
	if r.at >= 0 && pos >= r.at && pos+int64(n) <= r.at+int64(len(r.buf)) {
		return r.buf[pos-r.at : pos-r.at+int64(n)], nil
	}
	if n <= chunkBytes {
		if err := r.fill(pos, int(min(int64(chunkBytes), r.size-pos))); err != nil {
			return nil, err
		}
		return r.buf[:min(n, len(r.buf))], nil
	}
	if cap(*scratch) < n {
		*scratch = make([]byte, n)
	}
	b := (*scratch)[:n]
	m, err := r.f.ReadAt(b, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("segment %020d: read at %d: %w", r.base, pos, err)
	}
	return b[:m], nil
}

func (r *chunkReader) fill(pos int64, n int) error {
	r.buf = r.buf[:max(n, 0)]
	m, err := r.f.ReadAt(r.buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("segment %020d: read at %d: %w", r.base, pos, err)
	}
	r.buf, r.at = r.buf[:m], pos
	return nil
}
