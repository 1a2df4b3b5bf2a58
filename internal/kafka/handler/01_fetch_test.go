package handler

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

func dpFetchReq(version int16, topic string, id [16]byte, partition int32, offset int64, maxWaitMs int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.Version = version
	req.MaxWaitMillis, req.MinBytes, req.MaxBytes = maxWaitMs, 1, 50<<20
	req.SessionEpoch = -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, offset, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// dpFetch fetches one partition without waiting and returns its answer.
func dpFetch(t *testing.T, dc *dpConn, version int16, topic string, partition int32, offset int64, maxWaitMs int32) kmsg.FetchResponseTopicPartition {
	t.Helper()
	resp := dpDo[*kmsg.FetchResponse](dc, dpFetchReq(version, topic, [16]byte{}, partition, offset, maxWaitMs))
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		t.Fatalf("fetch response shape: %+v", resp)
	}
	return resp.Topics[0].Partitions[0]
}

func TestFetch100kRecordsExactly(t *testing.T) {
	b := startBroker(t, "", nil)
	const n, parts = 100_000, 8
	dpTopic(t, b, "bulk", parts, nil)
	cl := b.client(t, kgo.DefaultProduceTopic("bulk"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	want := make([][]*kgo.Record, parts)
	var (
		mu       sync.Mutex
		firstErr error
	)
	for i := range n {
		r := &kgo.Record{Partition: int32(i % parts), Value: fmt.Appendf(nil, "value-%06d", i)}
		if i%3 != 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%1000)
		}
		for h := range i % 3 {
			r.Headers = append(r.Headers, kgo.RecordHeader{Key: fmt.Sprintf("h%d", h), Value: fmt.Appendf(nil, "hv-%d", i)})
		}
		want[r.Partition] = append(want[r.Partition], r)
		cl.Produce(ctx, r, func(_ *kgo.Record, err error) {
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}

	got := make([][]*kgo.Record, parts)
	for _, r := range dpConsume(t, b, "bulk", n) {
		got[r.Partition] = append(got[r.Partition], r)
	}
	for p := range parts {
		if len(got[p]) != len(want[p]) {
			t.Fatalf("partition %d: %d records, want %d", p, len(got[p]), len(want[p]))
		}
		for i, g := range got[p] {
			w := want[p][i]
			if g.Offset != int64(i) || !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Value, w.Value) || len(g.Headers) != len(w.Headers) {
				t.Fatalf("partition %d offset %d: got key %q value %q, want key %q value %q", p, g.Offset, g.Key, g.Value, w.Key, w.Value)
			}
			for h := range g.Headers {
				if g.Headers[h].Key != w.Headers[h].Key || !bytes.Equal(g.Headers[h].Value, w.Headers[h].Value) {
					t.Fatalf("partition %d offset %d: header %d differs", p, g.Offset, h)
				}
			}
		}
	}
}

func TestFetchLongPoll(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "poll", 1, nil)
	p, _ := b.Cluster.Partition("poll", 0)

	t.Run("wire", func(t *testing.T) {
		dc := dpDial(t, b.Addr)
		const maxWait = 5 * time.Second
		req := dpFetchReq(12, "poll", [16]byte{}, 0, p.HighWatermark(), int32(maxWait.Milliseconds()))
		start := time.Now()
		corr := dc.send(req)
		cl := b.client(t, kgo.DefaultProduceTopic("poll"))
		ctx, cancel := context.WithTimeout(context.Background(), maxWait)
		defer cancel()
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("wake")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		resp := dc.read(req, corr).(*kmsg.FetchResponse)
		if len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Fatal("long poll returned without the record produced meanwhile")
		}
		if el := time.Since(start); el >= maxWait {
			t.Fatalf("long poll answered after %v, MaxWait %v", el, maxWait)
		}
	})

	// In process, the wait itself is observable: Handle returns a Finish
	// when there is nothing to read, and an append must wake it.
	h := New(b.Cluster, Config{})
	handle := func(maxWaitMs int32) server.Reply {
		t.Helper()
		req := dpFetchReq(12, "poll", [16]byte{}, 0, p.HighWatermark(), maxWaitMs)
		reply, err := h.Handle(context.Background(), &server.Request{Key: 1, Version: 12, Msg: req})
		if err != nil || reply.Finish == nil {
			t.Fatalf("fetch at the end with MaxWait %dms: no wait (err %v)", maxWaitMs, err)
		}
		return reply
	}
	finish := func(ctx context.Context, reply server.Reply) <-chan *kmsg.FetchResponse {
		done := make(chan *kmsg.FetchResponse, 1)
		go func() { done <- reply.Finish(ctx).(*kmsg.FetchResponse) }()
		return done
	}
	within := func(done <-chan *kmsg.FetchResponse, what string) *kmsg.FetchResponse {
		t.Helper()
		select {
		case resp := <-done:
			return resp
		case <-time.After(20 * time.Second):
			t.Fatalf("long poll not answered after %s", what)
			return nil
		}
	}

	done := finish(context.Background(), handle(60_000))
	if _, err := p.Append(dpBatch(t, record.CodecNone, -1, -1, -1, "appended"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	if resp := within(done, "an append"); len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatal("woken long poll returned no data")
	}

	ctx, cancel := context.WithCancel(context.Background())
	done = finish(ctx, handle(60_000))
	cancel()
	within(done, "its context was cancelled")

	resp := within(finish(context.Background(), handle(50)), "MaxWait")
	if sp := resp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || len(sp.RecordBatches) != 0 || sp.HighWatermark != p.HighWatermark() {
		t.Fatalf("timed-out long poll: %+v", sp)
	}
}

func TestFetchInsideBatch(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "inside", 1, nil)
	dc := dpDial(t, b.Addr)
	vals := []string{"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"}
	if pr := dpProducePart(t, dc, dpProduceReq(9, 1, "inside", 0, dpBatch(t, record.CodecLZ4, -1, -1, -1, vals...))); pr.ErrorCode != 0 {
		t.Fatalf("produce: %+v", pr)
	}
	sp := dpFetch(t, dc, 12, "inside", 0, 5, 0)
	h, err := record.ReadBatchHeader(sp.RecordBatches)
	if err != nil || h.BaseOffset != 0 || h.NumRecords != 10 || h.Size() != len(sp.RecordBatches) {
		t.Fatalf("fetch at offset 5: batch %+v (%v), %d bytes; want the whole batch from 0", h, err, len(sp.RecordBatches))
	}

	cl := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"inside": {0: kgo.NewOffset().At(5)}}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) < 5 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		got = append(got, fs.Records()...)
	}
	for i, r := range got {
		if r.Offset != int64(5+i) || string(r.Value) != vals[5+i] {
			t.Fatalf("record %d: %q at %d", i, r.Value, r.Offset)
		}
	}
}

func TestFetchErrorsAndSessions(t *testing.T) {
	b := startBroker(t, "", nil)
	tp := dpTopic(t, b, "fe", 1, nil)
	dpTopic(t, b, "fz", 1, nil)
	dpTopic(t, b, "noconv", 1, map[string]string{"message.downconversion.enable": "false"})
	dc := dpDial(t, b.Addr)
	for _, topic := range []string{"fe", "noconv"} {
		if pr := dpProducePart(t, dc, dpProduceReq(9, 1, topic, 0, dpBatch(t, record.CodecGzip, -1, -1, -1, "a", "b", "c"))); pr.ErrorCode != 0 {
			t.Fatalf("produce: %+v", pr)
		}
	}
	if pr := dpProducePart(t, dc, dpProduceReq(9, 1, "fz", 0, dpBatch(t, record.CodecZstd, -1, -1, -1, "z"))); pr.ErrorCode != 0 {
		t.Fatalf("produce zstd: %+v", pr)
	}

	check := func(name string, sp kmsg.FetchResponseTopicPartition, code int16) {
		t.Helper()
		if sp.ErrorCode != code {
			t.Errorf("%s: code %d (%v), want %d", name, sp.ErrorCode, kerr.ErrorForCode(sp.ErrorCode), code)
		}
		if code != 0 && (sp.HighWatermark != -1 || len(sp.RecordBatches) != 0) {
			t.Errorf("%s: errored partition with hw %d and %d bytes", name, sp.HighWatermark, len(sp.RecordBatches))
		}
	}
	check("past the high watermark", dpFetch(t, dc, 12, "fe", 0, 4, 0), kerr.OffsetOutOfRange.Code)
	check("negative offset", dpFetch(t, dc, 12, "fe", 0, -1, 0), kerr.OffsetOutOfRange.Code)
	check("unknown topic", dpFetch(t, dc, 12, "nope", 0, 0, 0), kerr.UnknownTopicOrPartition.Code)
	check("unknown partition", dpFetch(t, dc, 12, "fe", 3, 0, 0), kerr.UnknownTopicOrPartition.Code)
	// zstd is down-converted to gzip for the message-set versions.
	if sp := dpFetch(t, dc, 2, "fz", 0, 0, 0); sp.ErrorCode != 0 || len(sp.RecordBatches) == 0 {
		t.Errorf("zstd at v2: code %d, %d bytes", sp.ErrorCode, len(sp.RecordBatches))
	}
	check("zstd at v10", dpFetch(t, dc, 10, "fz", 0, 0, 0), 0)
	check("down-conversion disabled", dpFetch(t, dc, 3, "noconv", 0, 0, 0), kerr.UnsupportedVersion.Code)
	check("no down-conversion needed", dpFetch(t, dc, 4, "noconv", 0, 0, 0), 0)
	if sp := dpFetch(t, dc, 12, "fe", 0, 3, 0); sp.ErrorCode != 0 || sp.HighWatermark != 3 || sp.LastStableOffset != 3 || sp.LogStartOffset != 0 || sp.PreferredReadReplica != -1 {
		t.Errorf("fetch at the end: %+v", sp)
	}

	req := dpFetchReq(12, "fe", [16]byte{}, 0, 0, 0)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 1
	check("newer leader epoch", dpDo[*kmsg.FetchResponse](dc, req).Topics[0].Partitions[0], kerr.UnknownLeaderEpoch.Code)
	req.Topics[0].Partitions[0].CurrentLeaderEpoch = 0
	req.IsolationLevel = 1
	if sp := dpDo[*kmsg.FetchResponse](dc, req).Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.LastStableOffset != 3 || len(sp.RecordBatches) == 0 {
		t.Errorf("read_committed fetch: %+v", sp)
	}

	// Sessions: none are made, and none can be named.
	for _, s := range []struct{ id, epoch int32 }{{0, 0}, {0, -1}, {9, 0}, {9, -1}} {
		req := dpFetchReq(12, "fe", [16]byte{}, 0, 0, 0)
		req.SessionID, req.SessionEpoch = s.id, s.epoch
		resp := dpDo[*kmsg.FetchResponse](dc, req)
		if resp.ErrorCode != 0 || resp.SessionID != 0 || len(resp.Topics[0].Partitions[0].RecordBatches) == 0 {
			t.Errorf("session %d epoch %d: code %d, session %d", s.id, s.epoch, resp.ErrorCode, resp.SessionID)
		}
	}
	for _, s := range []struct{ id, epoch int32 }{{0, 1}, {9, 1}, {9, 5}} {
		req := dpFetchReq(12, "fe", [16]byte{}, 0, 0, 0)
		req.SessionID, req.SessionEpoch = s.id, s.epoch
		if resp := dpDo[*kmsg.FetchResponse](dc, req); resp.ErrorCode != kerr.FetchSessionIDNotFound.Code || len(resp.Topics) != 0 {
			t.Errorf("session %d epoch %d: code %d, %d topics", s.id, s.epoch, resp.ErrorCode, len(resp.Topics))
		}
	}

	// v13+ by topic id.
	for _, v := range []int16{13, 16, 18} {
		resp := dpDo[*kmsg.FetchResponse](dc, dpFetchReq(v, "", tp.ID, 0, 0, 0))
		if got := resp.Topics[0]; got.TopicID != tp.ID || got.Partitions[0].ErrorCode != 0 || len(got.Partitions[0].RecordBatches) == 0 {
			t.Errorf("fetch v%d by id: %+v", v, got)
		}
	}
	resp := dpDo[*kmsg.FetchResponse](dc, dpFetchReq(13, "", [16]byte{7}, 0, 0, 0))
	check("unknown topic id", resp.Topics[0].Partitions[0], kerr.UnknownTopicID.Code)
}

func TestFetchMaxBytes(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "mb", 2, nil)
	dc := dpDial(t, b.Addr)
	big := string(bytes.Repeat([]byte("x"), 3000))
	var batchLen int
	for p := range int32(2) {
		for range 2 {
			batch := dpBatch(t, record.CodecNone, -1, -1, -1, big)
			batchLen = len(batch)
			if pr := dpProducePart(t, dc, dpProduceReq(9, 1, "mb", p, batch)); pr.ErrorCode != 0 {
				t.Fatalf("produce: %+v", pr)
			}
		}
	}
	fetch := func(maxBytes, partMaxBytes int32) [2]int {
		t.Helper()
		req := dpFetchReq(12, "mb", [16]byte{}, 0, 0, 0)
		req.MaxBytes = maxBytes
		req.Topics[0].Partitions[0].PartitionMaxBytes = partMaxBytes
		p1 := req.Topics[0].Partitions[0]
		p1.Partition = 1
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, p1)
		resp := dpDo[*kmsg.FetchResponse](dc, req)
		return [2]int{len(resp.Topics[0].Partitions[0].RecordBatches), len(resp.Topics[0].Partitions[1].RecordBatches)}
	}
	// The first partition with data gets one whole batch over the limits
	// (KIP-74); the next gets only what the limits leave.
	if got := fetch(1000, 1<<20); got != [2]int{batchLen, 0} {
		t.Errorf("MaxBytes 1000: got %v bytes, want [%d 0]", got, batchLen)
	}
	if got := fetch(1<<20, 100); got != [2]int{batchLen, 0} {
		t.Errorf("PartitionMaxBytes 100: got %v bytes, want [%d 0]", got, batchLen)
	}
	if got := fetch(int32(3*batchLen), 1<<20); got != [2]int{2 * batchLen, batchLen} {
		t.Errorf("MaxBytes of 3 batches: got %v bytes, want [%d %d]", got, 2*batchLen, batchLen)
	}
}

// fetch.max.bytes caps a response whatever MaxBytes the request asks for
// (a consumer catching up holds the broker's memory for at most that much
// per response), and a request below it is honoured as before.
func TestFetchMaxBytesBrokerCap(t *testing.T) {
	b := startBroker(t, "", map[string]string{"fetch.max.bytes": "8000"})
	dpTopic(t, b, "cap", 1, nil)
	dc := dpDial(t, b.Addr)
	big := string(bytes.Repeat([]byte("x"), 3000))
	var batchLen int
	for range 5 {
		batch := dpBatch(t, record.CodecNone, -1, -1, -1, big)
		batchLen = len(batch)
		if pr := dpProducePart(t, dc, dpProduceReq(9, 1, "cap", 0, batch)); pr.ErrorCode != 0 {
			t.Fatalf("produce: %+v", pr)
		}
	}
	fetch := func(maxBytes int32) int {
		t.Helper()
		req := dpFetchReq(12, "cap", [16]byte{}, 0, 0, 0)
		req.MaxBytes = maxBytes
		req.Topics[0].Partitions[0].PartitionMaxBytes = 1 << 20
		resp := dpDo[*kmsg.FetchResponse](dc, req)
		return len(resp.Topics[0].Partitions[0].RecordBatches)
	}
	if got, want := fetch(50<<20), 8000/batchLen*batchLen; got != want {
		t.Errorf("MaxBytes 50 MiB with fetch.max.bytes 8000: got %d bytes, want %d (whole batches within the cap)", got, want)
	}
	if got := fetch(int32(batchLen)); got != batchLen {
		t.Errorf("MaxBytes of one batch: got %d bytes, want %d", got, batchLen)
	}
}
