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

// roundTrip writes req and reads its response into resp. Only versions
// with the fixed-size response header (correlation id only) are supported:
// every version of ApiVersions, and the non-flexible versions of the rest.
func roundTrip(conn net.Conn, req kmsg.Request, resp kmsg.Response, correlationID int32) error {
	if req.IsFlexible() && req.Key() != kmsg.ApiVersions.Int16() {
		return fmt.Errorf("version %d of key %d has a flexible response header", req.GetVersion(), req.Key())
	}
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
	if size < 4 || size > 16<<20 {
		return fmt.Errorf("response size %d", size)
	}
	body := make([]byte, size-4)
	if _, err := io.ReadFull(conn, body); err != nil {
		return err
	}
	resp.SetVersion(req.GetVersion())
	return resp.ReadFrom(body)
}
