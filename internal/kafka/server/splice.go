package server

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/bufpool"
)

// spliceMinBytes is the smallest record payload sent from its own buffer
// instead of being copied into the encoded response: below it, a copy is
// cheaper than one more iovec.
const spliceMinBytes = 16 << 10

// markerLen is the length of the stand-in records a partition carries while
// its response is encoded.
const markerLen = 16

// markerPrefix makes the stand-ins unlike anything else in a response: 12
// random bytes chosen at start-up, then the partition's ordinal.
var markerPrefix = func() [markerLen - 4]byte {
	var p [markerLen - 4]byte
	if _, err := rand.Read(p[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return p
}()

// splicer encodes fetch responses without copying their records: kmsg
// encodes the response with a 16-byte marker standing in for each large
// partition's records, and the encoding is then cut at each marker so that
// the records go to the socket from the buffer the log read them into, in
// one vectored write. Everything but the records' length prefixes is kmsg's
// own encoding. A splicer belongs to one connection's writer.
type splicer struct {
	head  []byte // the encoded response with markers; reused
	spans [][]byte
	// files[i] is the file range spans[i] stands for (a RecordsFromFile
	// placeholder), nil for records in memory.
	files []*FileRecords
	bufs  net.Buffers
	// fileAt lists the file ranges' slots in bufs (nil buffers): the
	// writer sends spans[span]'s file there.
	fileAt []fileSlot
}

type fileSlot struct{ buf, span int }

// encode returns the frame of resp (size, header, body) as buffers to write
// in order, or nil when resp is not a fetch response with records large
// enough to splice; the buffers are valid until the next call.
func (s *splicer) encode(corr int32, resp kmsg.Response) net.Buffers {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return nil
	}
	s.spans, s.files = s.spans[:0], s.files[:0]
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			fr := filePlaceholder(p.RecordBatches)
			if fr == nil && len(p.RecordBatches) < spliceMinBytes {
				continue
			}
			s.spans = append(s.spans, p.RecordBatches)
			s.files = append(s.files, fr)
			marker := make([]byte, markerLen)
			copy(marker, markerPrefix[:])
			binary.BigEndian.PutUint32(marker[markerLen-4:], uint32(len(s.spans)-1))
			p.RecordBatches = marker
		}
	}
	if len(s.spans) == 0 {
		return nil
	}
	s.head = appendResponse(s.head[:0], corr, resp)
	// Put the records back: the response stays as the handler made it.
	n := 0
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			if len(p.RecordBatches) == markerLen && bytes.HasPrefix(p.RecordBatches, markerPrefix[:]) {
				p.RecordBatches = s.spans[n]
				n++
			}
		}
	}
	bufs := s.cut(resp.IsFlexible())
	if bufs == nil {
		// The caller encodes plainly: file ranges must be bytes then.
		s.materialize(f)
	}
	return bufs
}

// materialize replaces every file placeholder of f by the bytes it stands
// for (read from the file; an unreadable range becomes no records, which
// the client fetches again) and releases the files.
func (s *splicer) materialize(f *kmsg.FetchResponse) {
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			fr := filePlaceholder(p.RecordBatches)
			if fr == nil {
				continue
			}
			buf := make([]byte, fr.Len)
			if n, _ := fr.File.ReadAt(buf, fr.Off); n < fr.Len {
				buf = buf[:0]
			}
			ReleaseRecords(p.RecordBatches)
			p.RecordBatches = buf
		}
	}
	s.spans, s.files = s.spans[:0], s.files[:0]
}

// release gives the records of the last spliced response to bufpool, for
// the log's next reads, and the file ranges back to the log; they have
// been written (or the connection failed) and the response is dropped
// after this.
func (s *splicer) release() {
	for i, span := range s.spans {
		if s.files[i] != nil {
			ReleaseRecords(span)
		} else {
			bufpool.Put(span)
		}
		s.spans[i], s.files[i] = nil, nil
	}
	s.spans, s.files = s.spans[:0], s.files[:0]
}

// write writes the buffers of the last encode, sending each file range at
// its slot.
func (s *splicer) write(c *conn) error {
	start := 0
	for _, fa := range s.fileAt {
		if fa.buf > start {
			if err := c.writeBuffers(s.bufs[start:fa.buf]); err != nil {
				return err
			}
		}
		if err := c.writeFile(s.files[fa.span]); err != nil {
			return err
		}
		start = fa.buf + 1
	}
	if start < len(s.bufs) {
		return c.writeBuffers(s.bufs[start:])
	}
	return nil
}

// cut splits head at each marker, replacing the marker and its length
// prefix with the records' own prefix and the records; nil if a marker is
// not where the encoding must have put it (then the caller encodes plainly).
func (s *splicer) cut(flexible bool) net.Buffers {
	s.bufs, s.fileAt = s.bufs[:0], s.fileAt[:0]
	head := s.head
	size := len(head) - 4 // the frame's size field counts what follows it
	emitted, search := 0, 4
	// The markers' own length prefix: int32 16, or for flexible versions
	// (compact nullable bytes) the uvarint of 16+1.
	oldPrefix := []byte{0, 0, 0, markerLen}
	if flexible {
		oldPrefix = []byte{markerLen + 1}
	}
	var marker [markerLen]byte
	copy(marker[:], markerPrefix[:])
	for i, span := range s.spans {
		binary.BigEndian.PutUint32(marker[markerLen-4:], uint32(i))
		at := bytes.Index(head[search:], marker[:])
		if at < 0 {
			return nil
		}
		at += search
		start := at - len(oldPrefix)
		if start < search || !bytes.Equal(head[start:at], oldPrefix) {
			return nil
		}
		spanLen := len(span)
		if fr := s.files[i]; fr != nil {
			spanLen = fr.Len
		}
		var prefix []byte
		if flexible {
			prefix = binary.AppendUvarint(nil, uint64(spanLen)+1)
		} else {
			prefix = binary.BigEndian.AppendUint32(nil, uint32(spanLen))
		}
		if s.files[i] != nil {
			s.bufs = append(s.bufs, head[emitted:start], prefix, nil)
			s.fileAt = append(s.fileAt, fileSlot{buf: len(s.bufs) - 1, span: i})
		} else {
			s.bufs = append(s.bufs, head[emitted:start], prefix, span)
		}
		size += len(prefix) + spanLen - len(oldPrefix) - markerLen
		emitted, search = at+markerLen, at+markerLen
	}
	s.bufs = append(s.bufs, head[emitted:])
	binary.BigEndian.PutUint32(head, uint32(size))
	return s.bufs
}
