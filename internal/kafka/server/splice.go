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
	bufs  net.Buffers
}

// encode returns the frame of resp (size, header, body) as buffers to write
// in order, or nil when resp is not a fetch response with records large
// enough to splice; the buffers are valid until the next call.
func (s *splicer) encode(corr int32, resp kmsg.Response) net.Buffers {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return nil
	}
	s.spans = s.spans[:0]
	for i := range f.Topics {
		for j := range f.Topics[i].Partitions {
			p := &f.Topics[i].Partitions[j]
			if len(p.RecordBatches) < spliceMinBytes {
				continue
			}
			s.spans = append(s.spans, p.RecordBatches)
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
	return s.cut(resp.IsFlexible())
}

// release gives the records of the last spliced response to bufpool, for
// the log's next reads; they have been written (or the connection failed)
// and the response is dropped after this.
func (s *splicer) release() {
	for i, span := range s.spans {
		bufpool.Put(span)
		s.spans[i] = nil
	}
	s.spans = s.spans[:0]
}

// cut splits head at each marker, replacing the marker and its length
// prefix with the records' own prefix and the records; nil if a marker is
// not where the encoding must have put it (then the caller encodes plainly).
func (s *splicer) cut(flexible bool) net.Buffers {
	s.bufs = s.bufs[:0]
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
		var prefix []byte
		if flexible {
			prefix = binary.AppendUvarint(nil, uint64(len(span))+1)
		} else {
			prefix = binary.BigEndian.AppendUint32(nil, uint32(len(span)))
		}
		s.bufs = append(s.bufs, head[emitted:start], prefix, span)
		size += len(prefix) + len(span) - len(oldPrefix) - markerLen
		emitted, search = at+markerLen, at+markerLen
	}
	s.bufs = append(s.bufs, head[emitted:])
	binary.BigEndian.PutUint32(head, uint32(size))
	return s.bufs
}
