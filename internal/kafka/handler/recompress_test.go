package handler

import (
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/stromhq/strom/internal/record"
)

// TestProduceRecompresses: on a topic with compression.type=zstd a gzip
// batch of an idempotent producer is stored as zstd with its producer id,
// epoch, base sequence and timestamps; its retry is still recognised as a
// duplicate; a zstd batch is stored as it came. compression.type=producer
// keeps the codec. With compression.type=uncompressed a batch that only
// fits max.message.bytes compressed is MESSAGE_TOO_LARGE (the size is
// checked again after recompression).
func TestProduceRecompresses(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "z", 1, map[string]string{"compression.type": "zstd", "compression.zstd.level": "9"})
	dpTopic(t, b, "keep", 1, nil)
	dpTopic(t, b, "raw", 1, map[string]string{"compression.type": "uncompressed", "max.message.bytes": "2000"})
	dc := dpDial(t, b.Addr)

	gz := dpBatch(t, record.CodecGzip, 42, 3, 0, "a", "b", "c")
	sent, _ := record.ReadBatchHeader(gz)
	for _, topic := range []string{"z", "keep"} {
		for try := range 2 {
			p := dpProducePart(t, dc, dpProduceReq(9, -1, topic, 0, append([]byte(nil), gz...)))
			if p.ErrorCode != 0 || p.BaseOffset != 0 {
				t.Fatalf("%s: produce try %d: %v base %d", topic, try, kerr.ErrorForCode(p.ErrorCode), p.BaseOffset)
			}
		}
		sp := dpFetch(t, dc, 12, topic, 0, 0, 0)
		h, recs, err := record.Records(sp.RecordBatches, 1<<20)
		if err != nil || sp.HighWatermark != 3 {
			t.Fatalf("%s: stored batch: %v, hw %d", topic, err, sp.HighWatermark)
		}
		want := record.CodecZstd
		if topic == "keep" {
			want = record.CodecGzip
		}
		if h.Codec() != want || h.ProducerID != 42 || h.ProducerEpoch != 3 || h.BaseSequence != 0 || h.LastOffsetDelta != 2 ||
			h.BaseTimestamp != sent.BaseTimestamp || h.MaxTimestamp != sent.MaxTimestamp || len(recs) != 3 || string(recs[2].Value) != "c" {
			t.Fatalf("%s: stored %+v with %d records, sent %+v", topic, h, len(recs), sent)
		}
	}

	// 200 records of 20 equal bytes: ~5 KB raw, far less gzipped.
	vals := make([]string, 200)
	for i := range vals {
		vals[i] = strings.Repeat("x", 20)
	}
	big := dpBatch(t, record.CodecGzip, -1, -1, -1, vals...)
	if len(big) > 2000 {
		t.Fatalf("the gzip batch is %d bytes: not under the limit", len(big))
	}
	p := dpProducePart(t, dc, dpProduceReq(9, 1, "raw", 0, big))
	if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("a batch over max.message.bytes once uncompressed: %v", err)
	}
}
