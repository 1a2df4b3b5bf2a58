package record

// Cross-checks against franz-go, an independent implementation of the same
// formats: its encoders must produce what we parse, and its decoders
// (kmsg, and kgo's fetch processing with CRC validation and decompression)
// must accept what we write. franz-go is used in tests only: the package
// itself stays free of protocol imports.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func kgoCodec(c Codec) kgo.CompressionCodec {
	switch c {
	case CodecGzip:
		return kgo.GzipCompression()
	case CodecSnappy:
		return kgo.SnappyCompression()
	case CodecLZ4:
		return kgo.Lz4Compression()
	case CodecZstd:
		return kgo.ZstdCompression()
	}
	return kgo.NoCompression()
}

func TestFranzCodecsInterop(t *testing.T) {
	in := compressible(200 << 10)
	dec := kgo.DefaultDecompressor()
	for _, c := range allCodecs[1:] {
		comp, err := kgo.DefaultCompressor(kgoCodec(c))
		if err != nil {
			t.Fatal(err)
		}
		theirs, typ := comp.Compress(new(bytes.Buffer), in)
		if Codec(typ) != c {
			t.Fatalf("%s: kgo used codec %d", c, typ)
		}
		out, err := Decompress(c, theirs, len(in))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s: decompressing kgo's output: %v", c, err)
		}
		ours, _ := Compress(c, nil, in)
		out, err = dec.Decompress(ours, kgo.CompressionCodecType(c))
		if err != nil || !bytes.Equal(out, in) {
			t.Fatalf("%s: kgo decompressing ours: %v", c, err)
		}
	}
}

// kmsgBatch encodes recs with kmsg and compresses them with kgo's
// compressor.
func kmsgBatch(t testing.TB, c Codec, baseOffset int64, recs []Record) ([]byte, kmsg.RecordBatch) {
	var raw []byte
	for _, r := range recs {
		kr := kmsg.Record{
			Attributes: r.Attributes, TimestampDelta64: r.TimestampDelta, OffsetDelta: r.OffsetDelta,
			Key: r.Key, Value: r.Value,
		}
		for _, h := range r.Headers {
			kr.Headers = append(kr.Headers, kmsg.Header{Key: h.Key, Value: h.Value})
		}
		body := kr.AppendTo(nil) // with Length 0: a one-byte varint
		kr.Length = int32(len(body) - 1)
		raw = kr.AppendTo(raw)
	}
	if c != CodecNone {
		comp, _ := kgo.DefaultCompressor(kgoCodec(c))
		out, _ := comp.Compress(new(bytes.Buffer), raw)
		raw = slices.Clone(out)
	}
	rb := kmsg.RecordBatch{
		FirstOffset: baseOffset, PartitionLeaderEpoch: 9, Magic: 2, Attributes: int16(c),
		LastOffsetDelta: recs[len(recs)-1].OffsetDelta, FirstTimestamp: 1000, MaxTimestamp: 5000,
		ProducerID: 77, ProducerEpoch: 2, FirstSequence: 10, NumRecords: int32(len(recs)), Records: raw,
	}
	b := rb.AppendTo(nil)
	rb.Length = int32(len(b) - 12)
	binary.BigEndian.PutUint32(b[8:], uint32(rb.Length))
	rb.CRC = int32(crc32.Checksum(b[21:], castagnoli))
	binary.BigEndian.PutUint32(b[17:], uint32(rb.CRC))
	return b, rb
}

func TestKmsgBatchParses(t *testing.T) {
	for _, c := range allCodecs {
		recs := genRecords(200, true, 3)
		b, rb := kmsgBatch(t, c, 500, recs)
		h, err := ValidateBatch(b, testMax)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		want := BatchHeader{
			BaseOffset: 500, Length: rb.Length, PartitionLeaderEpoch: 9, Magic: 2, CRC: uint32(rb.CRC),
			Attributes: int16(c), LastOffsetDelta: 199, BaseTimestamp: 1000, MaxTimestamp: 5000,
			ProducerID: 77, ProducerEpoch: 2, BaseSequence: 10, NumRecords: 200,
		}
		if h != want {
			t.Fatalf("%s: header\n got %+v\nwant %+v", c, h, want)
		}
		_, got, err := Records(b, testMax)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, got, recs)
	}
}

func TestAppendBatchReadsWithKmsg(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	for _, c := range allCodecs {
		recs := genRecords(200, true, 4)
		spec := defaultSpec(c)
		spec.BaseOffset, spec.PartitionLeaderEpoch = 1<<33, 4
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 12, 1, 7
		spec.Transactional = true
		b := mustBatch(t, spec, recs)
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatalf("%s: kmsg: %v", c, err)
		}
		if rb.FirstOffset != 1<<33 || rb.PartitionLeaderEpoch != 4 || rb.Magic != 2 || int(rb.Length) != len(b)-12 ||
			rb.Attributes != int16(c)|attrTransactional || rb.LastOffsetDelta != 199 || rb.FirstTimestamp != spec.BaseTimestamp ||
			rb.ProducerID != 12 || rb.ProducerEpoch != 1 || rb.FirstSequence != 7 || rb.NumRecords != 200 {
			t.Fatalf("%s: kmsg sees %+v", c, rb)
		}
		raw, err := dec.Decompress(rb.Records, kgo.CompressionCodecType(c))
		if err != nil {
			t.Fatalf("%s: kgo decompress: %v", c, err)
		}
		for i, want := range recs {
			var kr kmsg.Record
			length, n := binary.Varint(raw)
			if err := kr.ReadFrom(raw[:n+int(length)]); err != nil {
				t.Fatalf("%s: record %d: %v", c, i, err)
			}
			raw = raw[n+int(length):]
			if kr.OffsetDelta != want.OffsetDelta || kr.TimestampDelta64 != want.TimestampDelta ||
				!bytes.Equal(kr.Key, want.Key) || (kr.Key == nil) != (want.Key == nil) ||
				!bytes.Equal(kr.Value, want.Value) || (kr.Value == nil) != (want.Value == nil) || len(kr.Headers) != len(want.Headers) {
				t.Fatalf("%s: record %d: kmsg sees %+v, want %+v", c, i, kr, want)
			}
		}
		if len(raw) != 0 {
			t.Fatalf("%s: %d bytes after the records", c, len(raw))
		}
	}
}

// processFetch runs kgo's fetch-response decoder (CRC validation,
// decompression, message sets and record batches) over b.
func processFetch(t testing.TB, b []byte) []*kgo.Record {
	t.Helper()
	rp := &kmsg.FetchResponseTopicPartition{HighWatermark: 1 << 40, LastStableOffset: 1 << 40, RecordBatches: b}
	fp, _ := kgo.ProcessFetchPartition(kgo.ProcessFetchPartitionOpts{Topic: "t"}, rp, kgo.DefaultDecompressor(), nil)
	if fp.Err != nil {
		t.Fatalf("kgo: %v", fp.Err)
	}
	return fp.Records
}

func TestKgoReadsOurBatches(t *testing.T) {
	log, want := batchesOf(t, CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecZstd)
	got := processFetch(t, log)
	if len(got) != len(want) {
		t.Fatalf("kgo read %d records, want %d", len(got), len(want))
	}
	for i, w := range want {
		g := got[i]
		if g.Offset != w.Offset || g.Timestamp.UnixMilli() != w.Timestamp || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) ||
			(g.Value == nil) != (w.Value == nil) {
			t.Fatalf("record %d: kgo %+v, want %+v", i, g, w)
		}
	}
}

// kgo decodes the message sets DownConvert writes, v1 and v0, plain and
// compressed. (LZ4 in v0 is left out: kgo verifies the frame header
// checksum, so it cannot read the KAFKA-3160 checksum Kafka writes there.)
func TestKgoReadsDownConverted(t *testing.T) {
	for _, magic := range []int8{MagicV0, MagicV1} {
		codecs := []Codec{CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecNone}
		if magic == MagicV0 {
			codecs = slices.DeleteFunc(codecs, func(c Codec) bool { return c == CodecLZ4 })
		}
		log, want := batchesOf(t, codecs...)
		set, err := DownConvert(log, magic, testMax)
		if err != nil {
			t.Fatal(err)
		}
		got := processFetch(t, set)
		if len(got) != len(want) {
			t.Fatalf("v%d: kgo read %d records, want %d", magic, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.Offset != w.Offset || !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) ||
				(magic == MagicV1 && g.Timestamp.UnixMilli() != w.Timestamp) {
				t.Fatalf("v%d record %d: kgo %+v, want %+v", magic, i, g, w)
			}
		}
		// kmsg agrees on every top-level message field and the CRC.
		for rest := set; len(rest) > 0; {
			size := 12 + int(binary.BigEndian.Uint32(rest[8:]))
			var crc int32
			if magic == MagicV1 {
				var m kmsg.MessageV1
				if err := m.ReadFrom(rest[:size]); err != nil {
					t.Fatal(err)
				}
				crc = m.CRC
			} else {
				var m kmsg.MessageV0
				if err := m.ReadFrom(rest[:size]); err != nil {
					t.Fatal(err)
				}
				crc = m.CRC
			}
			if uint32(crc) != crc32.ChecksumIEEE(rest[16:size]) {
				t.Fatalf("v%d: message CRC", magic)
			}
			rest = rest[size:]
		}
	}
}

// A real franz-go client produces to kfake: the batches it sends (captured
// from the Produce requests) validate and decode; batches we build, sent
// with a raw Produce request, are consumed by the client intact.
func TestKgoClientEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kfake cluster")
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	var (
		mu       sync.Mutex
		captured [][]byte
	)
	cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		mu.Lock()
		defer mu.Unlock()
		for _, tp := range req.(*kmsg.ProduceRequest).Topics {
			for _, p := range tp.Partitions {
				captured = append(captured, slices.Clone(p.Records))
			}
		}
		return nil, nil, false // observe only
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	for _, c := range allCodecs {
		t.Run("produce/"+c.String(), func(t *testing.T) {
			cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.DefaultProduceTopic("in"),
				kgo.ProducerBatchCompression(kgoCodec(c)), kgo.ProducerLinger(time.Second))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			mu.Lock()
			captured = nil
			mu.Unlock()
			var wg sync.WaitGroup
			const n = 50
			for i := range n {
				r := &kgo.Record{Value: bytes.Repeat([]byte{byte('a' + i%3)}, 300), Headers: []kgo.RecordHeader{{Key: "i", Value: fmt.Appendf(nil, "%d", i)}}}
				if i%2 == 0 {
					r.Key = fmt.Appendf(nil, "k%d", i)
				}
				wg.Add(1)
				cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						t.Error(err)
					}
				})
			}
			if err := cl.Flush(ctx); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			mu.Lock()
			defer mu.Unlock()
			total := 0
			for _, b := range captured {
				h, err := ValidateBatch(b, testMax)
				if err != nil {
					t.Fatalf("kgo batch: %v", err)
				}
				if h.Codec() != c || h.ProducerID < 0 || h.BaseSequence < 0 {
					t.Fatalf("kgo batch header %+v", h)
				}
				_, recs, err := Records(b, testMax)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					i := total
					if want := bytes.Repeat([]byte{byte('a' + i%3)}, 300); !bytes.Equal(r.Value, want) ||
						len(r.Headers) != 1 || string(r.Headers[0].Value) != fmt.Sprint(i) || (r.Key == nil) != (i%2 == 1) {
						t.Fatalf("record %d: %+v", i, r)
					}
					total++
				}
			}
			if total != n {
				t.Fatalf("captured %d records, want %d", total, n)
			}
		})
	}

	t.Run("consume", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics("out"),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		// Produce v13 names topics by ID.
		mreq := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = kmsg.StringPtr("out")
		mreq.Topics = append(mreq.Topics, mt)
		mresp, err := mreq.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		topicID := mresp.Topics[0].TopicID
		var want []Record
		for _, c := range allCodecs {
			recs := genRecords(30, true, uint64(c))
			want = append(want, recs...)
			req := kmsg.NewPtrProduceRequest()
			req.Acks, req.TimeoutMillis = -1, 5000
			tp := kmsg.NewProduceRequestTopic()
			tp.Topic, tp.TopicID = "out", topicID
			p := kmsg.NewProduceRequestTopicPartition()
			p.Records = mustBatch(t, defaultSpec(c), recs)
			tp.Partitions = append(tp.Partitions, p)
			req.Topics = append(req.Topics, tp)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
				t.Fatalf("%s: produce error code %d", c, code)
			}
		}
		var got []*kgo.Record
		for len(got) < len(want) && ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			if err := fs.Err(); err != nil {
				t.Fatal(err)
			}
			got = append(got, fs.Records()...)
		}
		if len(got) != len(want) {
			t.Fatalf("consumed %d records, want %d", len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if !bytes.Equal(g.Key, w.Key) || !bytes.Equal(g.Value, w.Value) || len(g.Headers) != len(w.Headers) ||
				g.Timestamp.UnixMilli() != defaultSpec(0).BaseTimestamp+w.TimestampDelta {
				t.Fatalf("record %d: consumed %+v, want %+v", i, g, w)
			}
			for j, h := range w.Headers {
				if g.Headers[j].Key != h.Key || !bytes.Equal(g.Headers[j].Value, h.Value) {
					t.Fatalf("record %d header %d: %+v", i, j, g.Headers[j])
				}
			}
		}
	})
}
