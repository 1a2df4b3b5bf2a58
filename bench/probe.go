package bench

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// probe opens a connection to a broker and makes the two requests every
// client starts with, ApiVersions and Metadata, by hand: a kgo client would
// add its own dial back-off to the start-up time it is used to measure.
func probe(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	versions := kmsg.NewPtrApiVersionsRequest()
	versions.SetVersion(0)
	vr := kmsg.NewPtrApiVersionsResponse()
	if err := roundTrip(conn, versions, vr, 1); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	if err := kerr.ErrorForCode(vr.ErrorCode); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	meta := kmsg.NewPtrMetadataRequest()
	meta.SetVersion(1)
	mr := kmsg.NewPtrMetadataResponse()
	if err := roundTrip(conn, meta, mr, 2); err != nil {
		return fmt.Errorf("Metadata: %w", err)
	}
	if len(mr.Brokers) == 0 {
		return errors.New("Metadata: no brokers")
	}
	return nil
}

var formatter = kmsg.NewRequestFormatter(kmsg.FormatterClientID("strombench"))

// roundTrip writes req and reads its response into resp.
func roundTrip(conn net.Conn, req kmsg.Request, resp kmsg.Response, correlationID int32) error {
	return roundTripInto(conn, req, resp, correlationID, nil)
}

// maxResponse bounds a response's size field (a Fetch asks up to 50 MiB).
const maxResponse = 64 << 20

// roundTripInto is roundTrip reading the response into *buf, grown as
// needed and kept for the next call (resp's byte fields alias it until
// then), or into a new buffer when buf is nil. A flexible version's
// response header must carry no tagged fields (ApiVersions' has none).
func roundTripInto(conn net.Conn, req kmsg.Request, resp kmsg.Response, correlationID int32, buf *[]byte) error {
	if _, err := conn.Write(formatter.AppendRequest(nil, req, correlationID)); err != nil {
		return err
	}
	var head [8]byte // size, correlation id
	if _, err := io.ReadFull(conn, head[:]); err != nil {
		return err
	}
	size := int32(binary.BigEndian.Uint32(head[:4]))
	if got := int32(binary.BigEndian.Uint32(head[4:])); got != correlationID {
		return fmt.Errorf("correlation id %d, want %d", got, correlationID)
	}
	if size < 4 || size > maxResponse {
		return fmt.Errorf("response size %d", size)
	}
	var body []byte
	if buf == nil {
		body = make([]byte, size-4)
	} else {
		if cap(*buf) < int(size-4) {
			*buf = make([]byte, size-4)
		}
		body = (*buf)[:size-4]
	}
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		// Response header v1: tagged fields, a count of 0 expected.
		if len(body) == 0 || body[0] != 0 {
			return fmt.Errorf("tagged fields in the response header of key %d", req.Key())
		}
		body = body[1:]
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body)
}
