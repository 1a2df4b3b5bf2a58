package server

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// benchClient sends pre-encoded heartbeat frames and reads replies with a
// reused buffer, so the numbers are mostly the server's.
func benchClient(b *testing.B) (*rawClient, []byte) {
	ts := startServer(b, Config{Logger: slog.New(slog.DiscardHandler), MaxInFlight: 256}, nil)
	c := dial(b, ts.addr)
	return c, frame(c.f, heartbeat(1), 4, 1)
}

func (c *rawClient) discardReplies(n int, buf []byte) []byte {
	var size [4]byte
	for range n {
		if _, err := io.ReadFull(c.conn, size[:]); err != nil {
			c.t.Fatal(err)
		}
		need := int(binary.BigEndian.Uint32(size[:]))
		if cap(buf) < need {
			buf = make([]byte, need)
		}
		if _, err := io.ReadFull(c.conn, buf[:need]); err != nil {
			c.t.Fatal(err)
		}
	}
	return buf
}

// BenchmarkRoundTrip: one request in flight at a time over loopback.
func BenchmarkRoundTrip(b *testing.B) {
	c, req := benchClient(b)
	var buf []byte
	b.SetBytes(int64(len(req)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.conn.Write(req); err != nil {
			b.Fatal(err)
		}
		buf = c.discardReplies(1, buf)
	}
}

// BenchmarkRoundTripPipelined: batches of 64 requests per write; replies
// share flushes.
func BenchmarkRoundTripPipelined(b *testing.B) {
	const batch = 64
	c, req := benchClient(b)
	var all []byte
	for range batch {
		all = append(all, req...)
	}
	var buf []byte
	b.SetBytes(int64(len(all)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.conn.Write(all); err != nil {
			b.Fatal(err)
		}
		buf = c.discardReplies(batch, buf)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/request")
}

func BenchmarkParseRequest(b *testing.B) {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench"))
	fr := body(f, heartbeat(1), 4, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(fr, testRanges); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduce: produce requests with 64 KiB to 1 MiB of records, one in
// flight at a time, at a handler that copies the records out (as the log's
// write does) and answers at once. Frames of 64 KiB and more are read into
// buffers from internal/bufpool and given back when Handle returns, so
// B/op shows whether they are reused.
func BenchmarkProduce(b *testing.B) {
	for _, size := range []int{64 << 10, 256 << 10, 1 << 20} {
		b.Run(fmt.Sprintf("records=%dKiB", size>>10), func(b *testing.B) {
			sink := make([]byte, size)
			h := &fakeHandler{handle: func(_ context.Context, req *Request) (*Reply, error) {
				p, ok := req.Msg.(*kmsg.ProduceRequest)
				if !ok {
					return nil, nil
				}
				copy(sink, p.Topics[0].Partitions[0].Records)
				return &Reply{Response: p.ResponseKind()}, nil
			}}
			ts := startServer(b, Config{Logger: slog.New(slog.DiscardHandler)}, h)
			c := dial(b, ts.addr)
			req := produceFrame(c.f, size, 1)
			var buf []byte
			b.SetBytes(int64(len(req)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.conn.Write(req); err != nil {
					b.Fatal(err)
				}
				buf = c.discardReplies(1, buf)
			}
		})
	}
}
