package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
)

// TestProduceKeylessToCompactedTopic: a record without a key is refused on
// a compacted topic with INVALID_RECORD and a message that says why; on a
// delete-policy topic, and with a key, it is accepted.
func TestProduceKeylessToCompactedTopic(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "compacted", 1, map[string]string{"cleanup.policy": "compact"})
	dpTopic(t, b, "both", 1, map[string]string{"cleanup.policy": "compact,delete"})
	dpTopic(t, b, "plain", 1, nil)
	keyless, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Key: []byte("k"), Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("b")}})
	if err != nil {
		t.Fatal(err)
	}
	dc := dpDial(t, b.Addr)
	for _, topic := range []string{"compacted", "both"} {
		p := dpProducePart(t, dc, dpProduceReq(9, 1, topic, 0, append([]byte(nil), keyless...)))
		if err := kerr.ErrorForCode(p.ErrorCode); !errors.Is(err, kerr.InvalidRecord) || p.ErrorMessage == nil || !strings.Contains(*p.ErrorMessage, "without a key") {
			t.Fatalf("%s: keyless produce: %v %v", topic, err, p.ErrorMessage)
		}
		if p := dpProducePart(t, dc, dpProduceReq(9, 1, topic, 0, dpBatch(t, record.CodecNone, -1, -1, -1, "x"))); p.ErrorCode != 0 {
			t.Fatalf("%s: keyed produce: %v", topic, kerr.ErrorForCode(p.ErrorCode))
		}
	}
	if p := dpProducePart(t, dc, dpProduceReq(9, 1, "plain", 0, append([]byte(nil), keyless...))); p.ErrorCode != 0 {
		t.Fatalf("plain: keyless produce: %v", kerr.ErrorForCode(p.ErrorCode))
	}
}

// TestCompactedTopicReadsLatestPerKey: a compacted topic written with many
// updates of few keys, rolled into small segments, is cleaned by the
// broker's cleaner; a consumer from the start reads each key's latest
// value, across the offset gaps.
func TestCompactedTopicReadsLatestPerKey(t *testing.T) {
	b := startBroker(t, "", map[string]string{"log.cleaner.backoff.ms": "10"})
	dpTopic(t, b, "scores", 1, map[string]string{"cleanup.policy": "compact", "segment.bytes": "1024", "min.cleanable.dirty.ratio": "0.01"})
	cl := b.client(t, kgo.DefaultProduceTopic("scores"), kgo.ProducerLinger(0))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n, keys = 400, 10
	for i := range n {
		r := &kgo.Record{Key: []byte(fmt.Sprint("user-", i%keys)), Value: []byte(fmt.Sprint(i))}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// The cleaner runs on its own: poll until the log shrank.
	deadline := time.Now().Add(30 * time.Second)
	for {
		st := b.Cluster.CleanerStates()
		if len(st) == 1 && st[0].Passes > 0 && st[0].LastErr == "" && st[0].DirtyBytes == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cleaner did not clean: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}
	// Everything below the active segment is cleaned; read to the end.
	recs := dpConsumeUntil(t, b, "scores", n-1)
	latest := map[string]string{}
	prev := int64(-1)
	for _, r := range recs {
		if r.Offset <= prev {
			t.Fatalf("offset %d after %d", r.Offset, prev)
		}
		prev = r.Offset
		latest[string(r.Key)] = string(r.Value)
	}
	for k := range keys {
		if want := fmt.Sprint(n - keys + k); latest[fmt.Sprint("user-", k)] != want {
			t.Fatalf("user-%d reads %q, want %s", k, latest[fmt.Sprint("user-", k)], want)
		}
	}
	if len(recs) >= n/2 {
		t.Fatalf("%d of %d records read: nothing was compacted", len(recs), n)
	}
}

// dpConsumeUntil reads topic from the start until it has the record at
// offset last.
func dpConsumeUntil(t *testing.T, b *testBroker, topic string, last int64) []*kgo.Record {
	t.Helper()
	cl := b.client(t, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) == 0 || out[len(out)-1].Offset < last {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records of %s: %v", len(out), topic, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch %s-%d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		out = append(out, fs.Records()...)
	}
	return out
}
