package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/bufpool"
)

// Errors returned by ParseRequest and the frame reader. Every one of them
// means the connection is closed; compare with errors.Is.
var (
	// ErrFrameSize is a size prefix below zero or above MaxRequestBytes.
	ErrFrameSize = errors.New("request size out of range")
	// ErrMalformedHeader is a request header that ends early or has an
	// invalid client id or tagged-field section.
	ErrMalformedHeader = errors.New("malformed request header")
	// ErrUnknownKey is an API key that the handler does not serve.
	ErrUnknownKey = errors.New("unknown api key")
	// ErrUnsupportedVersion is a version outside the handler's range; the
	// error is a *VersionError.
	ErrUnsupportedVersion = errors.New("unsupported api version")
	// ErrMalformedBody is a request body that does not decode at its
	// version.
	ErrMalformedBody = errors.New("malformed request body")
)

// VersionError reports a request whose version lies outside [Min, Max].
// It matches ErrUnsupportedVersion with errors.Is.
type VersionError struct {
	Key, Version, Min, Max int16
}

func (e *VersionError) Error() string {
	return fmt.Sprintf("api key %d version %d outside supported range %d-%d", e.Key, e.Version, e.Min, e.Max)
}

// Is makes errors.Is(err, ErrUnsupportedVersion) true.
func (e *VersionError) Is(target error) bool { return target == ErrUnsupportedVersion }

// apiVersionsKey is the key of ApiVersions, the one request answered even at
// a version the server cannot parse.
const (
	produceKey     = 0
	apiVersionsKey = 18
)

// headerMin is the fixed part of every request header: api key (2), api
// version (2), correlation id (4).
const headerMin = 8

// ParseRequest decodes one request frame: the bytes that follow the 4-byte
// size prefix. versions reports the supported range of a key (ok=false for a
// key that is not served).
//
// On success the returned Request has Msg set and Conn zero; Msg may alias
// frame, which the caller must therefore not reuse. On error the Request is
// nil, except for errors matching ErrUnsupportedVersion or ErrMalformedBody,
// where it carries the header fields (Key, Version, CorrelationID, ClientID)
// and a nil Msg, so that the caller can log the request or answer an
// ApiVersions request it cannot parse.
//
// ParseRequest never panics and never allocates more than len(frame) plus
// what the decoded message needs.
func ParseRequest(frame []byte, versions func(key int16) (min, max int16, ok bool)) (*Request, error) {
	if len(frame) < headerMin {
		return nil, fmt.Errorf("%w: %d bytes, need at least %d", ErrMalformedHeader, len(frame), headerMin)
	}
	key := int16(binary.BigEndian.Uint16(frame[0:]))
	version := int16(binary.BigEndian.Uint16(frame[2:]))
	corr := int32(binary.BigEndian.Uint32(frame[4:]))

	lo, hi, ok := versions(key)
	var msg kmsg.Request
	if ok {
		msg = kmsg.RequestForKey(key)
	}
	if msg == nil {
		return nil, fmt.Errorf("%w: %d", ErrUnknownKey, key)
	}
	// Never decode a version the message codec does not know, whatever
	// the caller claims to support.
	hi = min(hi, msg.MaxVersion())

	// Header v1 (and v2) carry a nullable client id, int16 length, even
	// for flexible versions. ControlledShutdown v0 alone uses header v0.
	rest := frame[headerMin:]
	var clientID string
	var idErr error
	if key != 7 || version != 0 {
		clientID, rest, idErr = readClientID(rest)
	}
	req := &Request{Key: key, Version: version, CorrelationID: corr, ClientID: clientID}

	if version < lo || version > hi {
		// The body of a version we do not know cannot be parsed, and
		// neither can its header beyond the correlation id; the caller
		// only needs the fixed fields.
		return req, &VersionError{Key: key, Version: version, Min: lo, Max: hi}
	}
	if idErr != nil {
		return nil, idErr
	}

	msg.SetVersion(version)
	if msg.IsFlexible() {
		var err error
		if rest, err = skipTags(rest); err != nil {
			return nil, err
		}
	}
	if err := msg.ReadFrom(rest); err != nil {
		return req, fmt.Errorf("%w: key %d version %d: %v", ErrMalformedBody, key, version, err)
	}
	req.Msg = msg
	return req, nil
}

// readClientID reads a nullable string with an int16 length; null reads as
// "", as Kafka treats it.
func readClientID(b []byte) (string, []byte, error) {
	if len(b) < 2 {
		return "", nil, fmt.Errorf("%w: client id length cut short", ErrMalformedHeader)
	}
	n := int(int16(binary.BigEndian.Uint16(b)))
	b = b[2:]
	switch {
	case n == -1:
		return "", b, nil
	case n < 0 || n > len(b):
		return "", nil, fmt.Errorf("%w: client id length %d with %d bytes left", ErrMalformedHeader, n, len(b))
	}
	return string(b[:n]), b[n:], nil
}

// skipTags skips a tagged-field section: a uvarint count, then per field a
// uvarint tag, a uvarint size and size bytes. The count is checked against
// the bytes left before looping, so a forged count costs nothing.
func skipTags(b []byte) ([]byte, error) {
	count, b, ok := uvarint(b)
	// Each field takes at least two bytes (tag and size).
	if !ok || count > uint64(len(b))/2 {
		return nil, fmt.Errorf("%w: bad tagged field count", ErrMalformedHeader)
	}
	for range count {
		var size uint64
		if _, b, ok = uvarint(b); !ok {
			return nil, fmt.Errorf("%w: bad tag", ErrMalformedHeader)
		}
		if size, b, ok = uvarint(b); !ok || size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: bad tagged field size", ErrMalformedHeader)
		}
		b = b[size:]
	}
	return b, nil
}

// uvarint reads an unsigned varint of at most 5 bytes (a uint32, as Kafka
// encodes them).
func uvarint(b []byte) (uint64, []byte, bool) {
	var v uint64
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			if i == 4 && c > 0x0f {
				return 0, nil, false // overflows 32 bits
			}
			return v, b[i+1:], true
		}
	}
	return 0, nil, false
}

// minFrameChunk is the smallest piece a frame buffer starts or grows by.
const minFrameChunk = 1 << 10

// readFrame reads one size-prefixed frame and returns it without its prefix.
// The size is checked against limit before anything is allocated. The frame
// is then charged (reserve) and given room as its bytes actually arrive: it
// starts at what r has buffered (at least minFrameChunk) and at most
// doubles, and only once a byte it has no room for is there. So a client
// that claims a large frame and sends little costs little memory and budget:
// a frame is never charged more than twice what its client sent (plus
// minFrameChunk). reserve, if not nil, is called with each growth before it
// is allocated; its error ends the read. With reuse, the last growth, to the
// frame's full size, takes a buffer kept in bufpool, or allocates one at its
// bufpool capacity class so that it can be kept when given back: at most
// twice the frame's charge, as before. Only then, with the whole frame
// charged: a kept buffer taken at the frame's start was held outside the
// budget while the frame waited for bytes or budget, and 64 readers held 64
// of them (TestBudgetBoundsHeap). The smaller buffers before it are left to
// the garbage collector, so bufpool keeps only buffers of whole frames.
func readFrame(r *bufio.Reader, sizeBuf *[4]byte, limit int32, reserve func(n int) error, reuse bool) ([]byte, error) {
	if _, err := io.ReadFull(r, sizeBuf[:]); err != nil {
		return nil, err
	}
	size := int(int32(binary.BigEndian.Uint32(sizeBuf[:])))
	if size < 0 || size > int(limit) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameSize, size, limit)
	}
	var buf []byte
	room := 0 // bytes charged and readable into buf: buf[len(buf):room]
	for len(buf) < size {
		if len(buf) == room {
			if r.Buffered() == 0 {
				if _, err := r.Peek(1); err != nil {
					return nil, unexpectedEOF(err)
				}
			}
			n := min(size, max(2*room, len(buf)+r.Buffered(), minFrameChunk))
			if have := len(buf) + r.Buffered(); reuse && 2*have >= bufpool.MinSize {
				// Below bufpool.MinSize nothing is kept: a large
				// frame's first piece (what happens to be buffered,
				// often a little under 64 KiB) would be a fresh
				// allocation every time. Rounded up only once half
				// of it has arrived, so the charge stays within
				// twice what the client sent: 256 slow-loris
				// frames rounded up at their first byte held 8.9
				// MB (TestIdleConnectionsAndSlowLoris).
				n = min(size, max(n, bufpool.MinSize))
			}
			if reserve != nil {
				if err := reserve(n - room); err != nil {
					return nil, err
				}
			}
			if n > cap(buf) {
				var grown []byte
				if reuse {
					// Each growth is charged before it is taken,
					// so a kept buffer of that size is within the
					// budget (one of the whole frame taken at its
					// start would be held outside it while the
					// frame waits for bytes or budget); the one
					// it replaces goes back to the pool, so a
					// large Produce frame allocates nothing in
					// steady state, not one buffer per doubling.
					grown = bufpool.Get(n)[:len(buf)]
					copy(grown, buf)
					bufpool.Put(buf)
				} else {
					grown = make([]byte, len(buf), n)
					copy(grown, buf)
				}
				buf = grown
			}
			room = n
		}
		n, err := io.ReadFull(r, buf[len(buf):room])
		buf = buf[:len(buf)+n]
		if err != nil {
			return nil, unexpectedEOF(err)
		}
	}
	return buf, nil
}

// unexpectedEOF turns io.EOF inside a frame into io.ErrUnexpectedEOF.
func unexpectedEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// sizeHint estimates the encoded size of responses that carry bulk data
// (fetches), so the writer can allocate once; 0 for the rest, which are
// small. It may overestimate a little, never by much.
func sizeHint(resp kmsg.Response) int {
	f, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range f.Topics {
		t := &f.Topics[i]
		n += len(t.Topic) + 32
		for j := range t.Partitions {
			p := &t.Partitions[j]
			n += len(p.RecordBatches) + 64 + 16*len(p.AbortedTransactions)
		}
	}
	return n
}

// appendResponse appends one response frame: size, header, body. The
// response header is v0 (correlation id) for non-flexible versions and v1
// (correlation id, empty tagged fields) for flexible ones, except that
// ApiVersions always uses v0 so that a client can read it before it knows
// which versions the broker speaks.
func appendResponse(dst []byte, corr int32, resp kmsg.Response) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.BigEndian.AppendUint32(dst, uint32(corr))
	if resp.IsFlexible() && resp.Key() != apiVersionsKey {
		dst = append(dst, 0)
	}
	dst = resp.AppendTo(dst)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// appendRawToken frames a SaslAuthenticate answer for the unframed SASL
// flow: a size prefix and the token, no response header.
func appendRawToken(dst []byte, resp kmsg.Response) []byte {
	var tok []byte
	if r, ok := resp.(*kmsg.SASLAuthenticateResponse); ok {
		tok = r.SASLAuthBytes
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(tok)))
	return append(dst, tok...)
}

// unsupportedApiVersions is the answer to an ApiVersions request at a version
// above ours: UNSUPPORTED_VERSION (35) in the v0 layout, listing only the
// ApiVersions range we serve, as Kafka does (KIP-511), so the client retries
// at a version we know and learns the rest from that answer. A list of every
// range made franz-go take it as the answer (no retry), so it never saw the
// finalized features (transaction.version) on that connection. It must be
// written with the v0 response header.
func unsupportedApiVersions(keys []kmsg.ApiVersionsResponseApiKey) *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.SetVersion(0)
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	for _, k := range keys {
		if k.ApiKey == apiVersionsKey {
			resp.ApiKeys = append(resp.ApiKeys, k)
		}
	}
	return resp
}
