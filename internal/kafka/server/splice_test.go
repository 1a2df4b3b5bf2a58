package server

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// randomFetchResponse has topics with partitions of every size class:
// none, small (copied), large (spliced), with aborted transactions and
// errors in between, so that the markers sit among every kind of field.
func randomFetchResponse(r *rand.Rand) *kmsg.FetchResponse {
	resp := kmsg.NewPtrFetchResponse()
	resp.SessionID = r.Int32()
	for t := range 1 + r.IntN(3) {
		rt := kmsg.NewFetchResponseTopic()
		rt.Topic = fmt.Sprintf("topic-%d", t)
		rt.TopicID[0] = byte(t + 1)
		for p := range 1 + r.IntN(5) {
			rp := kmsg.NewFetchResponseTopicPartition()
			rp.Partition = int32(p)
			rp.HighWatermark = r.Int64()
			rp.LogStartOffset = r.Int64N(1000)
			if r.IntN(4) == 0 {
				at := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
				at.ProducerID = r.Int64()
				rp.AbortedTransactions = append(rp.AbortedTransactions, at)
			}
			switch r.IntN(4) {
			case 0:
				rp.ErrorCode = 1
			case 1:
				rp.RecordBatches = make([]byte, r.IntN(spliceMinBytes))
			default:
				rp.RecordBatches = make([]byte, spliceMinBytes+r.IntN(200_000))
			}
			for i := range rp.RecordBatches {
				rp.RecordBatches[i] = byte(r.Uint32())
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// TestSpliceMatchesPlainEncoding: at every version, the spliced buffers
// are byte for byte kmsg's own encoding of the frame, and the response is
// left as it was.
func TestSpliceMatchesPlainEncoding(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s splicer
	spliced := 0
	for version := int16(0); version <= kmsg.NewPtrFetchResponse().MaxVersion(); version++ {
		for range 20 {
			resp := randomFetchResponse(r)
			resp.SetVersion(version)
			want := appendResponse(nil, 42, resp)
			bufs := s.encode(42, resp)
			if after := appendResponse(nil, 42, resp); !bytes.Equal(after, want) {
				t.Fatalf("v%d: encode changed the response", version)
			}
			large := false
			for _, rt := range resp.Topics {
				for _, rp := range rt.Partitions {
					large = large || len(rp.RecordBatches) >= spliceMinBytes
				}
			}
			if bufs == nil {
				if large {
					t.Fatalf("v%d: a response with large records was not spliced", version)
				}
				continue
			}
			spliced++
			if got := bytes.Join(bufs, nil); !bytes.Equal(got, want) {
				t.Fatalf("v%d: spliced frame of %d bytes differs from the plain one of %d", version, len(got), len(want))
			}
		}
	}
	if spliced == 0 {
		t.Fatal("nothing was spliced")
	}
}

// TestSpliceLeavesOtherResponses: small fetches and other keys are encoded
// plainly.
func TestSpliceLeavesOtherResponses(t *testing.T) {
	var s splicer
	small := kmsg.NewPtrFetchResponse()
	rt := kmsg.NewFetchResponseTopic()
	rp := kmsg.NewFetchResponseTopicPartition()
	rp.RecordBatches = make([]byte, spliceMinBytes-1)
	rt.Partitions = append(rt.Partitions, rp)
	small.Topics = append(small.Topics, rt)
	if s.encode(1, small) != nil {
		t.Fatal("a small fetch was spliced")
	}
	if s.encode(1, kmsg.NewPtrMetadataResponse()) != nil {
		t.Fatal("a metadata response was spliced")
	}
}

// TestSpliceOverTheWire: a client reading a spliced fetch response off a
// real connection decodes the records that were sent.
func TestSpliceOverTheWire(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	resp := randomFetchResponse(rand.New(rand.NewPCG(3, 4)))
	resp.Topics[0].Partitions[0].RecordBatches = bytes.Repeat([]byte("batch"), spliceMinBytes)
	resp.SetVersion(12)
	var s splicer
	bufs := s.encode(7, resp)
	if bufs == nil {
		t.Fatal("not spliced")
	}
	go func() {
		defer b.Close()
		bufs.WriteTo(b)
	}()
	frame, err := io.ReadAll(a)
	if err != nil {
		t.Fatal(err)
	}
	got := kmsg.NewPtrFetchResponse()
	got.SetVersion(12)
	// size (4), correlation id (4), empty header tags (1)
	if err := got.ReadFrom(frame[9:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Topics[0].Partitions[0].RecordBatches, resp.Topics[0].Partitions[0].RecordBatches) {
		t.Fatal("records differ after the wire")
	}
}
