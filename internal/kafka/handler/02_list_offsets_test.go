package handler

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func dpListOffsetsReq(version int16, topic string, ts int64, partitions ...int32) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.Version = version
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	for _, p := range partitions {
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition, rp.Timestamp = p, ts
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

func TestListOffsets(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "lo", 2, nil)
	dpTopic(t, b, "lo-empty", 1, nil)
	cl := b.client(t, kgo.DefaultProduceTopic("lo"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	base := time.Now().Add(-time.Hour).UnixMilli()
	// Partition 0: 10 records one second apart, produced one by one (one
	// batch each); the largest timestamp is in the middle (offset 7).
	for i := range 10 {
		ts := base + int64(i)*1000
		if i == 7 {
			ts = base + 100_000
		}
		r := &kgo.Record{Partition: 0, Value: []byte{byte(i)}, Timestamp: time.UnixMilli(ts)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	adm := b.admin(t)

	starts, err := adm.ListStartOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	ends, err := adm.ListEndOffsets(ctx, "lo")
	if err != nil {
		t.Fatal(err)
	}
	for p, want := range map[int32][2]int64{0: {0, 10}, 1: {0, 0}} {
		s, _ := starts.Lookup("lo", p)
		e, _ := ends.Lookup("lo", p)
		if s.Err != nil || e.Err != nil || s.Offset != want[0] || e.Offset != want[1] {
			t.Errorf("partition %d: start %+v end %+v, want %v", p, s, e, want)
		}
	}
	after, err := adm.ListOffsetsAfterMilli(ctx, base+2500, "lo")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := after.Lookup("lo", 0); o.Err != nil || o.Offset != 3 || o.Timestamp != base+3000 {
		t.Errorf("after %d: %+v, want offset 3 at %d", base+2500, o, base+3000)
	}

	dc := dpDial(t, b.Addr)
	one := func(req *kmsg.ListOffsetsRequest) kmsg.ListOffsetsResponseTopicPartition {
		t.Helper()
		return dpDo[*kmsg.ListOffsetsResponse](dc, req).Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		name          string
		version       int16
		topic         string
		ts            int64
		offset, stamp int64
		epoch         int32
		code          int16
	}{
		{"earliest", 4, "lo", -2, 0, -1, 0, 0},
		{"latest", 4, "lo", -1, 10, -1, 0, 0},
		{"max timestamp", 7, "lo", -3, 7, base + 100_000, 0, 0},
		{"max timestamp, empty log", 7, "lo-empty", -3, -1, -1, -1, 0},
		{"earliest local", 8, "lo", -4, 0, -1, 0, 0},
		{"latest tiered", 9, "lo", -5, -1, -1, -1, 0},
		{"by timestamp", 10, "lo", base + 5000, 5, base + 5000, 0, 0},
		{"by timestamp, first record", 1, "lo", 0, 0, base, -1, 0},
		{"by timestamp, after all", 4, "lo", base + 200_000, -1, -1, -1, 0},
		{"unknown topic", 4, "nope", -1, -1, -1, -1, kerr.UnknownTopicOrPartition.Code},
	} {
		got := one(dpListOffsetsReq(tc.version, tc.topic, tc.ts, 0))
		wantEpoch := tc.epoch
		if tc.version < 4 {
			wantEpoch = -1 // not in the response
		}
		if got.ErrorCode != tc.code || got.Offset != tc.offset || got.Timestamp != tc.stamp || got.LeaderEpoch != wantEpoch {
			t.Errorf("%s: %+v, want offset %d timestamp %d epoch %d code %d", tc.name, got, tc.offset, tc.stamp, wantEpoch, tc.code)
		}
	}

	// v0: a list of offsets.
	v0 := dpListOffsetsReq(0, "lo", -1, 0)
	if got := one(v0); got.ErrorCode != 0 || len(got.OldStyleOffsets) != 1 || got.OldStyleOffsets[0] != 10 {
		t.Errorf("v0 latest: %+v", got)
	}
	v0.Topics[0].Partitions[0].Timestamp = -2
	if got := one(v0); got.ErrorCode != 0 || len(got.OldStyleOffsets) != 1 || got.OldStyleOffsets[0] != 0 {
		t.Errorf("v0 earliest: %+v", got)
	}

	// read_committed latest is the last stable offset.
	rc := dpListOffsetsReq(2, "lo", -1, 0)
	rc.IsolationLevel = 1
	if got := one(rc); got.Offset != 10 {
		t.Errorf("read_committed latest: %+v", got)
	}
	// A newer leader epoch than ours; a partition listed twice.
	fenced := dpListOffsetsReq(4, "lo", -1, 0)
	fenced.Topics[0].Partitions[0].CurrentLeaderEpoch = 3
	if got := one(fenced); got.ErrorCode != kerr.UnknownLeaderEpoch.Code {
		t.Errorf("newer leader epoch: %+v", got)
	}
	dup := dpDo[*kmsg.ListOffsetsResponse](dc, dpListOffsetsReq(4, "lo", -1, 0, 1, 0))
	for i, want := range []int16{kerr.InvalidRequest.Code, 0, kerr.InvalidRequest.Code} {
		if got := dup.Topics[0].Partitions[i].ErrorCode; got != want {
			t.Errorf("duplicate partitions: entry %d code %d, want %d", i, got, want)
		}
	}
}
