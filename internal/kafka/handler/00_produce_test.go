package handler

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
)

// dpConn speaks the protocol at exactly the versions a test asks for (kgo
// would negotiate them up).
type dpConn struct {
	t    *testing.T
	c    net.Conn
	corr int32
}

func dpDial(t *testing.T, addr string) *dpConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &dpConn{t: t, c: c}
}

// send writes req and returns its correlation id without reading the reply.
func (dc *dpConn) send(req kmsg.Request) int32 {
	dc.t.Helper()
	dc.corr++
	b := make([]byte, 4, 256)
	b = binary.BigEndian.AppendUint16(b, uint16(req.Key()))
	b = binary.BigEndian.AppendUint16(b, uint16(req.GetVersion()))
	b = binary.BigEndian.AppendUint32(b, uint32(dc.corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len("dp-test")))
	b = append(b, "dp-test"...)
	if req.IsFlexible() {
		b = append(b, 0) // no tagged fields
	}
	b = req.AppendTo(b)
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := dc.c.Write(b); err != nil {
		dc.t.Fatal(err)
	}
	return dc.corr
}

// readFrame reads one response frame (after a 30s deadline: an error).
func (dc *dpConn) readFrame() ([]byte, error) {
	dc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var size [4]byte
	if _, err := io.ReadFull(dc.c, size[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(size[:]))
	_, err := io.ReadFull(dc.c, b)
	return b, err
}

// read reads the response to req, sent with correlation id corr.
func (dc *dpConn) read(req kmsg.Request, corr int32) kmsg.Response {
	dc.t.Helper()
	b, err := dc.readFrame()
	if err != nil {
		dc.t.Fatalf("reading response to key %d: %v", req.Key(), err)
	}
	if got := int32(binary.BigEndian.Uint32(b)); got != corr {
		dc.t.Fatalf("correlation id %d, want %d", got, corr)
	}
	b = b[4:]
	if req.IsFlexible() && req.Key() != 18 {
		b = b[1:] // empty tagged fields of the v1 response header
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(b); err != nil {
		dc.t.Fatalf("decoding response to key %d v%d: %v", req.Key(), req.GetVersion(), err)
	}
	return resp
}

func dpDo[T kmsg.Response](dc *dpConn, req kmsg.Request) T {
	dc.t.Helper()
	return dc.read(req, dc.send(req)).(T)
}

// dpTopic creates a topic directly in the cluster.
func dpTopic(t *testing.T, b *testBroker, name string, partitions int32, configs map[string]string) metadata.Topic {
	t.Helper()
	tp, err := b.Cluster.CreateTopic(name, partitions, configs, false)
	if err != nil {
		t.Fatal(err)
	}
	return tp
}

// dpBatch builds one v2 batch of values (keys k0, k1, ...).
func dpBatch(t *testing.T, codec record.Codec, pid int64, epoch int16, seq int32, values ...string) []byte {
	t.Helper()
	recs := make([]record.Record, len(values))
	for i, v := range values {
		recs[i] = record.Record{OffsetDelta: int32(i), TimestampDelta: int64(i), Key: fmt.Appendf(nil, "k%d", i), Value: []byte(v)}
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, Codec: codec, BaseTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
	}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func dpProduceReq(version, acks int16, topic string, partition int32, data []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Version, req.Acks, req.TimeoutMillis = version, acks, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition, rp.Records = partition, data
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func dpProducePart(t *testing.T, dc *dpConn, req *kmsg.ProduceRequest) kmsg.ProduceResponseTopicPartition {
	t.Helper()
	resp := dpDo[*kmsg.ProduceResponse](dc, req)
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("produce response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

// dpConsume reads want records of topic from the start with a group-less
// kgo consumer.
func dpConsume(t *testing.T, b *testBroker, topic string, want int, opts ...kgo.Opt) []*kgo.Record {
	t.Helper()
	cl := b.client(t, append([]kgo.Opt{kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}, opts...)...)
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(out), want, topic, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) != want {
		t.Fatalf("consumed %d records, want %d", len(out), want)
	}
	return out
}

func TestProduceCodecsAndAcks(t *testing.T) {
	b := startBroker(t, "", nil)
	codecs := map[string]kgo.CompressionCodec{
		"none": kgo.NoCompression(), "gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(),
		"lz4": kgo.Lz4Compression(), "zstd": kgo.ZstdCompression(),
	}
	acks := map[string]kgo.Acks{"0": kgo.NoAck(), "1": kgo.LeaderAck(), "all": kgo.AllISRAcks()}
	for cname, codec := range codecs {
		for aname, ack := range acks {
			t.Run(cname+"/acks="+aname, func(t *testing.T) {
				topic := "codec-" + cname + "-" + aname
				dpTopic(t, b, topic, 2, nil)
				opts := []kgo.Opt{kgo.ProducerBatchCompression(codec), kgo.RequiredAcks(ack), kgo.DefaultProduceTopic(topic)}
				if aname != "all" {
					opts = append(opts, kgo.DisableIdempotentWrite())
				}
				cl := b.client(t, opts...)
				const n = 300
				var recs []*kgo.Record
				for i := range n {
					recs = append(recs, &kgo.Record{
						Key:     fmt.Appendf(nil, "key-%d", i%7),
						Value:   bytes.Repeat(fmt.Appendf(nil, "value-%d-", i), 1+i%5),
						Headers: []kgo.RecordHeader{{Key: "h", Value: fmt.Appendf(nil, "%d", i)}},
					})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
					t.Fatal(err)
				}
				got := dpConsume(t, b, topic, n)
				want := map[string]bool{}
				for _, r := range recs {
					want[string(r.Key)+"/"+string(r.Value)+"/"+string(r.Headers[0].Value)] = true
				}
				for _, r := range got {
					k := string(r.Key) + "/" + string(r.Value) + "/" + string(r.Headers[0].Value)
					if !want[k] {
						t.Fatalf("unexpected or duplicate record %q at %d", k, r.Offset)
					}
					delete(want, k)
				}
			})
		}
	}
}

func TestProduceIdempotentRetry(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "idem", 1, nil)
	dc := dpDial(t, b.Addr)
	ipr := kmsg.NewPtrInitProducerIDRequest()
	ipr.Version = 4
	ip := dpDo[*kmsg.InitProducerIDResponse](dc, ipr)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 || ip.ProducerEpoch != 0 {
		t.Fatalf("init producer id: %+v", ip)
	}
	pid := ip.ProducerID

	batch := dpBatch(t, record.CodecNone, pid, 0, 0, "a", "b", "c")
	first := dpProducePart(t, dc, dpProduceReq(9, -1, "idem", 0, batch))
	if first.ErrorCode != 0 || first.BaseOffset != 0 {
		t.Fatalf("first produce: %+v", first)
	}
	retry := dpProducePart(t, dc, dpProduceReq(9, -1, "idem", 0, batch))
	if retry.ErrorCode != 0 || retry.BaseOffset != first.BaseOffset {
		t.Fatalf("retried produce: %+v, want success at offset %d", retry, first.BaseOffset)
	}
	p, _ := b.Cluster.Partition("idem", 0)
	if end := p.HighWatermark(); end != 3 {
		t.Fatalf("high watermark %d after a retried batch of 3, want 3", end)
	}

	next := dpProducePart(t, dc, dpProduceReq(9, -1, "idem", 0, dpBatch(t, record.CodecNone, pid, 0, 3, "d")))
	if next.ErrorCode != 0 || next.BaseOffset != 3 {
		t.Fatalf("in-order produce: %+v", next)
	}
	gap := dpProducePart(t, dc, dpProduceReq(9, -1, "idem", 0, dpBatch(t, record.CodecNone, pid, 0, 10, "e")))
	if gap.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Fatalf("sequence gap: code %d, want OUT_OF_ORDER_SEQUENCE_NUMBER", gap.ErrorCode)
	}
	if gap.ErrorMessage == nil {
		t.Fatal("v8+ error without a message")
	}
	got := dpConsume(t, b, "idem", 4)
	for i, want := range []string{"a", "b", "c", "d"} {
		if string(got[i].Value) != want || got[i].Offset != int64(i) {
			t.Fatalf("record %d: %q at %d, want %q", i, got[i].Value, got[i].Offset, want)
		}
	}
}

// dpMessage builds one v0/v1 message set entry.
func dpMessage(magic int8, offset int64, codec int8, ts int64, key, value []byte) []byte {
	var b []byte
	if magic == 0 {
		m := kmsg.MessageV0{Offset: offset, Magic: 0, Attributes: codec, Key: key, Value: value}
		b = m.AppendTo(nil)
	} else {
		m := kmsg.MessageV1{Offset: offset, Magic: 1, Attributes: codec, Timestamp: ts, Key: key, Value: value}
		b = m.AppendTo(nil)
	}
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

func TestProduceMessageSets(t *testing.T) {
	b := startBroker(t, "", nil)
	for _, tc := range []struct {
		produce, fetch int16
		magic          int8
	}{{0, 0, 0}, {2, 2, 1}, {1, 1, 0}} {
		t.Run(fmt.Sprintf("produce-v%d-fetch-v%d", tc.produce, tc.fetch), func(t *testing.T) {
			topic := fmt.Sprintf("msgset-%d", tc.produce)
			dpTopic(t, b, topic, 1, nil)
			ts := time.Now().UnixMilli()
			var set []byte
			set = append(set, dpMessage(tc.magic, 0, 0, ts, []byte("k0"), []byte("plain-0"))...)
			set = append(set, dpMessage(tc.magic, 1, 0, ts+1, nil, []byte("plain-1"))...)
			var inner []byte
			for i := range 3 {
				off := int64(i) // v1 inner offsets are relative; v0 ones absolute, any will do
				inner = append(inner, dpMessage(tc.magic, off, 0, ts+2+int64(i), fmt.Appendf(nil, "ik%d", i), fmt.Appendf(nil, "inner-%d", i))...)
			}
			gz, err := record.Compress(record.CodecGzip, nil, inner)
			if err != nil {
				t.Fatal(err)
			}
			set = append(set, dpMessage(tc.magic, 2, int8(record.CodecGzip), ts+4, nil, gz)...)
			set = append(set, dpMessage(tc.magic, 0, 0, ts+5, []byte("k5"), []byte("plain-5"))...)

			dc := dpDial(t, b.Addr)
			pr := dpProducePart(t, dc, dpProduceReq(tc.produce, 1, topic, 0, set))
			if pr.ErrorCode != 0 || pr.BaseOffset != 0 {
				t.Fatalf("produce: %+v", pr)
			}
			want := []string{"plain-0", "plain-1", "inner-0", "inner-1", "inner-2", "plain-5"}

			for _, from := range []int64{0, 3} {
				fr := dpFetch(t, dc, tc.fetch, topic, 0, from, 0)
				if fr.ErrorCode != 0 || fr.HighWatermark != 6 {
					t.Fatalf("fetch: code %d hw %d", fr.ErrorCode, fr.HighWatermark)
				}
				msgs, err := record.ParseMessageSet(fr.RecordBatches, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				// A compressed wrapper holding from comes whole.
				first := from
				if from == 3 {
					first = 2
				}
				if len(msgs) != len(want)-int(first) {
					t.Fatalf("fetched %d messages from %d, want %d", len(msgs), from, len(want)-int(first))
				}
				for i, m := range msgs {
					o := first + int64(i)
					if m.Offset != o || string(m.Value) != want[o] || m.Magic != tc.magic {
						t.Fatalf("message %d: offset %d magic %d value %q", o, m.Offset, m.Magic, m.Value)
					}
					if tc.magic == 1 && m.Timestamp != ts+o {
						t.Fatalf("message %d: timestamp %d, want %d", o, m.Timestamp, ts+o)
					}
				}
			}
			// Modern clients read the same records as batches.
			got := dpConsume(t, b, topic, len(want))
			for i, r := range got {
				if string(r.Value) != want[i] || r.Offset != int64(i) {
					t.Fatalf("kgo record %d: %q at %d", i, r.Value, r.Offset)
				}
			}
		})
	}
}

func TestProduceValidation(t *testing.T) {
	b := startBroker(t, "", nil)
	tp := dpTopic(t, b, "valid", 1, nil)
	dpTopic(t, b, "isr2", 1, map[string]string{"min.insync.replicas": "2"})
	dpTopic(t, b, "small", 1, map[string]string{"max.message.bytes": "1000"})
	dc := dpDial(t, b.Addr)
	plain := func(vals ...string) []byte { return dpBatch(t, record.CodecNone, -1, -1, -1, vals...) }

	twoBatches := append(plain("a"), plain("b")...)
	legacy := dpMessage(1, 0, 0, 1, nil, []byte("x"))
	for _, tc := range []struct {
		name string
		req  *kmsg.ProduceRequest
		code int16
	}{
		{"unknown topic", dpProduceReq(7, 1, "nope", 0, plain("a")), kerr.UnknownTopicOrPartition.Code},
		{"unknown partition", dpProduceReq(7, 1, "valid", 5, plain("a")), kerr.UnknownTopicOrPartition.Code},
		{"invalid acks", dpProduceReq(7, 2, "valid", 0, plain("a")), kerr.InvalidRequiredAcks.Code},
		{"message set at v3", dpProduceReq(3, 1, "valid", 0, legacy), kerr.InvalidRecord.Code},
		{"two batches at v9", dpProduceReq(9, 1, "valid", 0, twoBatches), kerr.InvalidRecord.Code},
		{"no records", dpProduceReq(9, 1, "valid", 0, nil), kerr.InvalidRecord.Code},
		{"zstd before v7", dpProduceReq(6, 1, "valid", 0, dpBatch(t, record.CodecZstd, -1, -1, -1, "z")), kerr.UnsupportedCompressionType.Code},
		{"corrupt batch", dpProduceReq(9, 1, "valid", 0, func() []byte { b := plain("a"); b[len(b)-1] ^= 0xff; return b }()), kerr.CorruptMessage.Code},
		{"min.insync.replicas", dpProduceReq(9, -1, "isr2", 0, plain("a")), kerr.NotEnoughReplicas.Code},
		{"min.insync.replicas acks=1", dpProduceReq(9, 1, "isr2", 0, plain("a")), 0},
		{"max.message.bytes", dpProduceReq(9, 1, "small", 0, plain(string(make([]byte, 2000)))), kerr.MessageTooLarge.Code},
	} {
		got := dpProducePart(t, dc, tc.req)
		if got.ErrorCode != tc.code {
			t.Errorf("%s: code %d (%v), want %d", tc.name, got.ErrorCode, kerr.ErrorForCode(got.ErrorCode), tc.code)
		}
		if tc.code != 0 && got.BaseOffset != -1 {
			t.Errorf("%s: base offset %d on error", tc.name, got.BaseOffset)
		}
	}

	// v13 addresses topics by id and answers with it.
	req := dpProduceReq(13, -1, "", 0, plain("by-id"))
	req.Topics[0].TopicID = tp.ID
	resp := dpDo[*kmsg.ProduceResponse](dc, req)
	if got := resp.Topics[0]; got.TopicID != tp.ID || got.Partitions[0].ErrorCode != 0 || got.Partitions[0].LogStartOffset != 0 {
		t.Fatalf("produce by id: %+v", got)
	}
	req.Topics[0].TopicID = [16]byte{1}
	if got := dpProducePart(t, dc, req); got.ErrorCode != kerr.UnknownTopicID.Code {
		t.Fatalf("unknown topic id: code %d", got.ErrorCode)
	}

	// acks=0: nothing comes back, the next reply is the next request's.
	dc.send(dpProduceReq(9, 0, "valid", 0, plain("silent")))
	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 4
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "valid"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	if end := dpDo[*kmsg.ListOffsetsResponse](dc, lo).Topics[0].Partitions[0].Offset; end != 2 {
		t.Fatalf("end offset %d after an acks=0 produce, want 2", end)
	}
	// acks=0 with an error: Kafka closes the connection.
	dc.send(dpProduceReq(9, 0, "nope", 0, plain("lost")))
	if _, err := dc.readFrame(); err == nil {
		t.Fatal("connection still open after a failed acks=0 produce")
	}

	// kgo surfaces MESSAGE_TOO_LARGE.
	cl := b.client(t, kgo.DefaultProduceTopic("small"), kgo.ProducerBatchCompression(kgo.NoCompression()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: make([]byte, 2000)}).FirstErr(); !errors.Is(err, kerr.MessageTooLarge) {
		t.Fatalf("kgo produce of a batch over max.message.bytes: %v", err)
	}
}

func TestProduceRestartKeepsAckedData(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "durable", 3, nil)
	cl := b.client(t, kgo.DefaultProduceTopic("durable"))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for i := range 1000 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, "v%04d", i)})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	b.Stop(t)

	b2 := startBroker(t, b.dir, nil)
	got := dpConsume(t, b2, "durable", len(recs))
	seen := map[string]bool{}
	for _, r := range got {
		seen[string(r.Value)] = true
	}
	for _, r := range recs {
		if !seen[string(r.Value)] {
			t.Fatalf("acknowledged record %q lost over a restart", r.Value)
		}
	}
}

func TestProduceAcksAllTimeout(t *testing.T) {
	var stall atomic.Bool
	release := make(chan struct{})
	var unstall sync.Once
	diskBack := func() { unstall.Do(func() { stall.Store(false); close(release) }) }
	fsys := errorfs.Wrap(vfs.Default, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpSync && stall.Load() && strings.HasSuffix(name, ".log") {
			<-release // a disk that does not answer
		}
		return nil
	}))
	c, err := cluster.Open(cluster.Config{DataDir: t.TempDir(), FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Cleanup(diskBack)
	if _, err := c.CreateTopic("slow", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	h := New(c, Config{})
	produce := func(timeoutMs int32, value string) kmsg.ProduceResponseTopicPartition {
		t.Helper()
		req := dpProduceReq(9, -1, "slow", 0, dpBatch(t, record.CodecNone, -1, -1, -1, value))
		req.TimeoutMillis = timeoutMs
		reply, err := h.Handle(context.Background(), &server.Request{Key: 0, Version: 9, Msg: req})
		if err != nil || reply.Finish == nil {
			t.Fatalf("acks=-1 produce: no wait for fsync (err %v)", err)
		}
		done := make(chan kmsg.Response, 1)
		go func() { done <- reply.Finish(context.Background()) }()
		select {
		case resp := <-done:
			return resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
		case <-time.After(20 * time.Second):
			t.Fatal("acks=-1 produce ignored its timeout while the fsync hung")
			return kmsg.ProduceResponseTopicPartition{}
		}
	}
	stall.Store(true)
	if got := produce(200, "stuck"); got.ErrorCode != kerr.RequestTimedOut.Code {
		t.Fatalf("produce while fsync hangs: code %d, want REQUEST_TIMED_OUT", got.ErrorCode)
	}
	diskBack()
	if got := produce(10_000, "after"); got.ErrorCode != 0 || got.BaseOffset != 1 {
		t.Fatalf("produce after the disk recovered: %+v (the timed-out record stays written)", got)
	}
}

// TestProduceFromRecycledFrames: produce frames of 64 KiB and more are given
// back to bufpool when Handle returns, and the next frame is read into them
// (race builds first overwrite them with 0xa5). Pipelined requests of each
// kind (record batches at v3 and v9, message sets at v2, which are
// converted; acks 1, and acks -1 whose Finish runs after later frames were
// read) must all be answered with consecutive offsets and read back intact,
// each with its own value: a handler that used a frame's bytes after Handle
// would append or answer with another request's bytes, or with 0xa5.
func TestProduceFromRecycledFrames(t *testing.T) {
	const (
		reqs = 24
		size = 100 << 10 // each frame above bufpool.MinSize
	)
	b := startBroker(t, "", nil)
	dpTopic(t, b, "recycled", 2, nil)
	dc := dpDial(t, b.Addr)
	value := func(i int) []byte { return bytes.Repeat([]byte{'a' + byte(i)}, size) }
	type sent struct {
		corr int32
		req  *kmsg.ProduceRequest
	}
	var all []sent
	for i := range reqs {
		var data []byte
		version := []int16{3, 9, 2}[i%3]
		if version == 2 {
			data = dpMessage(1, 0, 0, time.Now().UnixMilli(), nil, value(i))
		} else {
			data = dpBatch(t, record.CodecNone, -1, -1, -1, string(value(i)))
		}
		acks := []int16{1, -1}[i%2]
		req := dpProduceReq(version, acks, "recycled", int32(i/2%2), data)
		all = append(all, sent{dc.send(req), req})
	}
	next := map[int32]int64{}
	for i, s := range all {
		resp := dc.read(s.req, s.corr).(*kmsg.ProduceResponse)
		if len(resp.Topics) != 1 || resp.Topics[0].Topic != "recycled" || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("request %d: response %+v", i, resp)
		}
		p := resp.Topics[0].Partitions[0]
		if want := int32(i / 2 % 2); p.Partition != want || p.ErrorCode != 0 || p.BaseOffset != next[want] {
			t.Fatalf("request %d: partition %d error %d base offset %d, want partition %d offset %d", i, p.Partition, p.ErrorCode, p.BaseOffset, want, next[want])
		}
		next[p.Partition]++
	}
	seen := map[byte]bool{}
	for _, r := range dpConsume(t, b, "recycled", reqs) {
		i := int(r.Value[0] - 'a')
		if i < 0 || i >= reqs || seen[r.Value[0]] || !bytes.Equal(r.Value, value(i)) {
			t.Fatalf("record at %d-%d: %d bytes starting %q, not one of the values sent, or twice", r.Partition, r.Offset, len(r.Value), r.Value[:min(len(r.Value), 8)])
		}
		seen[r.Value[0]] = true
	}
}
