package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/record"
)

func TestOffsetForLeaderEpoch(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "ep", 1, nil)
	dc := dpDial(t, b.Addr)
	if pr := dpProducePart(t, dc, dpProduceReq(9, 1, "ep", 0, dpBatch(t, record.CodecNone, -1, -1, -1, "a", "b", "c", "d"))); pr.ErrorCode != 0 {
		t.Fatalf("produce: %+v", pr)
	}
	ask := func(version int16, topic string, partition, current, epoch int32) kmsg.OffsetForLeaderEpochResponseTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.Version, req.ReplicaID = version, -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = topic
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.CurrentLeaderEpoch, rp.LeaderEpoch = partition, current, epoch
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return dpDo[*kmsg.OffsetForLeaderEpochResponse](dc, req).Topics[0].Partitions[0]
	}
	for _, tc := range []struct {
		name                    string
		version                 int16
		topic                   string
		partition, current, req int32
		code                    int16
		epoch                   int32
		end                     int64
	}{
		{"our epoch", 4, "ep", 0, 0, 0, 0, 0, 4},
		{"our epoch, v0", 0, "ep", 0, -1, 0, 0, -1, 4},
		{"our epoch, no current", 3, "ep", 0, -1, 0, 0, 0, 4},
		{"newer epoch", 4, "ep", 0, 0, 1, 0, -1, -1},
		{"undefined epoch", 4, "ep", 0, 0, -1, 0, -1, -1},
		{"newer current epoch", 4, "ep", 0, 2, 0, kerr.UnknownLeaderEpoch.Code, -1, -1},
		{"unknown topic", 4, "nope", 0, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
		{"unknown partition", 4, "ep", 1, -1, 0, kerr.UnknownTopicOrPartition.Code, -1, -1},
	} {
		got := ask(tc.version, tc.topic, tc.partition, tc.current, tc.req)
		if got.ErrorCode != tc.code || got.LeaderEpoch != tc.epoch || got.EndOffset != tc.end {
			t.Errorf("%s: %+v, want code %d epoch %d end %d", tc.name, got, tc.code, tc.epoch, tc.end)
		}
	}
}
