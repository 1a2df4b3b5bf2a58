package handler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteRecords(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "dr", 1, map[string]string{"segment.bytes": "2000"})
	cl := b.client(t, kgo.DefaultProduceTopic("dr"))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range 100 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%03d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := b.Cluster.Partition("dr", 0)
	segs := p.NumSegments()

	adm := b.admin(t)
	del := func(offset int64) kadm.DeleteRecordsResponse {
		t.Helper()
		var os kadm.Offsets
		os.AddOffset("dr", 0, offset, -1)
		resps, err := adm.DeleteRecords(ctx, os)
		if err != nil {
			t.Fatal(err)
		}
		r, ok := resps.Lookup("dr", 0)
		if !ok {
			t.Fatalf("no answer for dr-0: %+v", resps)
		}
		return r
	}
	if r := del(40); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete to 40: %+v", r)
	}
	if p.NumSegments() >= segs {
		t.Errorf("no segment deleted: %d before, %d after", segs, p.NumSegments())
	}
	if r := del(10); r.Err != nil || r.LowWatermark != 40 {
		t.Fatalf("delete below the start: %+v", r)
	}
	if r := del(101); !errors.Is(r.Err, kerr.OffsetOutOfRange) {
		t.Fatalf("delete past the high watermark: %+v", r)
	}
	starts, err := adm.ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup("dr", 0); s.Offset != 40 {
		t.Fatalf("start offset %+v after deleting to 40", s)
	}

	// A fetch below the start is out of range; consumers reset to it.
	dc := dpDial(t, b.Addr)
	if sp := dpFetch(t, dc, 12, "dr", 0, 10, 0); sp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the start: code %d", sp.ErrorCode)
	}
	if sp := dpFetch(t, dc, 12, "dr", 0, 40, 0); sp.ErrorCode != 0 || sp.LogStartOffset != 40 {
		t.Fatalf("fetch at the start: %+v", sp)
	}
	if got := dpConsume(t, b, "dr", 60); got[0].Offset != 40 || string(got[0].Value) != "v040" {
		t.Fatalf("first record after delete: %q at %d", got[0].Value, got[0].Offset)
	}
	rc := b.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"dr": {0: kgo.NewOffset().At(10)}}),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	fs := rc.PollFetches(ctx)
	if recs := fs.Records(); len(recs) == 0 || recs[0].Offset != 40 {
		t.Fatalf("consumer at a deleted offset: %d records, errors %v", len(recs), fs.Errors())
	}
	rc.Close()

	// -1 means the high watermark; the raw answer carries it.
	req := kmsg.NewPtrDeleteRecordsRequest()
	req.Version = 2
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = "dr"
	for _, o := range []struct {
		p   int32
		off int64
	}{{0, -1}, {7, 1}} {
		rp := kmsg.NewDeleteRecordsRequestTopicPartition()
		rp.Partition, rp.Offset = o.p, o.off
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	resp := dpDo[*kmsg.DeleteRecordsResponse](dc, req)
	if got := resp.Topics[0].Partitions; got[0].ErrorCode != 0 || got[0].LowWatermark != 100 || got[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("delete to -1 and to an unknown partition: %+v", got)
	}

	// The start offset survives a restart.
	cl.Close()
	b.Stop(t)
	b2 := startBroker(t, b.dir, nil)
	starts, err = b2.admin(t).ListStartOffsets(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := starts.Lookup("dr", 0); s.Offset != 100 {
		t.Fatalf("start offset %+v after a restart, want 100", s)
	}
}
