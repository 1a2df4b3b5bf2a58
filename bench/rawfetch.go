package bench

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// rawFetchAll reads every partition of topic on srv from offset 0 to end
// with plain Fetch requests (no fetch session) issued one
// after another, like kgo's consumer with one fetch in flight, but without
// decoding records: only batch headers are read, to advance the offsets.
// It shows what the broker serves when the client costs nothing per
// record; MB/s counts the record batches' bytes.
func rawFetchAll(ctx context.Context, srv *Server, topic string, partitions int32, end map[int32]int64) (throughput, error) {
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(srv.Addr), kgo.ClientID("strombench-raw"))
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	// kgo sends each request at the highest version both sides speak, where
	// Fetch names topics by ID.
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return throughput{}, fmt.Errorf("raw fetch: metadata: %w", err)
	}
	if len(mresp.Topics) != 1 || mresp.Topics[0].ErrorCode != 0 {
		return throughput{}, fmt.Errorf("raw fetch: no metadata for %s", topic)
	}
	topicID := mresp.Topics[0].TopicID
	next := make([]int64, partitions)
	var t throughput
	for {
		req := kmsg.NewPtrFetchRequest()
		req.MaxWaitMillis = 500
		req.MaxBytes = 50 << 20 // kgo's default FetchMaxBytes
		rt := kmsg.NewFetchRequestTopic()
		rt.Topic, rt.TopicID = topic, topicID
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
		fctx, cancel := context.WithTimeout(ctx, consumeStall)
		resp, err := req.RequestWith(fctx, cl)
		cancel()
		if err != nil {
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
