package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFetchAll reads every partition of topic on srv from offset 0 to end
// with plain Fetch requests (no fetch session) issued one after another,
// like kgo's consumer with one fetch in flight, but without decoding
// records: only batch headers are read, to advance the offsets. It shows
// what the broker serves when the client costs as little as a reader can:
// it writes each request and reads each response on a TCP connection of
// its own into one reused buffer, as the loopback copy it is compared with
// reads into one (kgo allocates a fresh buffer per response: for 50 MiB
// responses that is a large allocation, its zeroing and the page faults of
// new memory for every response, a cost of the client and not of the
// broker). MB/s counts the record batches' bytes.
func rawFetchAll(ctx context.Context, srv *Server, topic string, partitions int32, end map[int32]int64) (throughput, error) {
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, err
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", srv.Addr)
	if err != nil {
		return throughput{}, fmt.Errorf("raw fetch: %w", err)
	}
	defer conn.Close()
	var buf []byte // every response read into it (roundTripInto)
	next := make([]int64, partitions)
	var corr int32
	var t throughput
	for {
		// Version 12: topics by name, flexible; the broker's sendfile path
		// serves any version from 4.
		req := kmsg.NewPtrFetchRequest()
		req.Version = 12
		req.ReplicaID = -1
		req.MaxWaitMillis = 500
		req.MaxBytes = 50 << 20 // kgo's default FetchMaxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic = topic
		for p := range partitions {
			if next[p] >= end[p] {
				continue
			}
			rp := kmsg.NewFetchRequestTopicPartition()
			rp.Partition = p
			rp.FetchOffset = next[p]
			rp.PartitionMaxBytes = 1 << 20 // kgo's default FetchMaxPartitionBytes
			rt.Partitions = append(rt.Partitions, rp)
		}
		if len(rt.Partitions) == 0 {
			break
		}
		req.Topics = append(req.Topics, rt)
		deadline, _ := ctx.Deadline()
		if dl := time.Now().Add(consumeStall); deadline.IsZero() || dl.Before(deadline) {
			deadline = dl
		}
		_ = conn.SetDeadline(deadline)
		resp := kmsg.NewPtrFetchResponse()
		corr++
		if err := roundTripInto(conn, req, resp, corr, &buf); err != nil {
			return throughput{}, fmt.Errorf("raw fetch: %w", err)
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return throughput{}, fmt.Errorf("raw fetch: %w", err)
		}
		progressed := false
		for _, rt := range resp.Topics {
			for _, rp := range rt.Partitions {
				if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
					return throughput{}, fmt.Errorf("raw fetch %s[%d]: %w", topic, rp.Partition, err)
				}
				t.Bytes += int64(len(rp.RecordBatches))
				for b := rp.RecordBatches; len(b) >= 61; {
					// base offset (8), length (4), ..., last offset delta at 23 (4)
					size := 12 + int(binary.BigEndian.Uint32(b[8:]))
					if size > len(b) {
						break // a partial batch at the end of the response
					}
					last := int64(binary.BigEndian.Uint64(b)) + int64(binary.BigEndian.Uint32(b[23:]))
					t.Records += int64(binary.BigEndian.Uint32(b[57:]))
					if last+1 > next[rp.Partition] {
						next[rp.Partition], progressed = last+1, true
					}
					b = b[size:]
				}
			}
		}
		if !progressed {
			return throughput{}, fmt.Errorf("raw fetch: no progress at %v (ends %v)", next, end)
		}
	}
	if t.Elapsed, t.ClientCPU, t.Broker, err = m.stop(); err != nil {
		return throughput{}, err
	}
	t.BrokerAllocs, t.AllocsKnown = m.brokerAllocs()
	if _, t.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return throughput{}, err
	}
	return t, nil
}
