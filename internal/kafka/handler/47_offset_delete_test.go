package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestOffsetDeleteRaw deletes single offsets of an empty group; errors at
// the top for the group, per partition for the partitions.
func TestOffsetDeleteRaw(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "od", 2, nil)
	dc := dpDial(t, b.Addr)
	for p := int32(0); p < 2; p++ {
		if code := dpCommit(dc, 2, "od-group", -1, "", "od", p, 10+int64(p), -1, nil); code != 0 {
			t.Fatal(kerr.ErrorForCode(code))
		}
	}
	req := kmsg.NewPtrOffsetDeleteRequest()
	req.Group = "od-group"
	rt := kmsg.NewOffsetDeleteRequestTopic()
	rt.Topic = "od"
	rt.Partitions = []kmsg.OffsetDeleteRequestTopicPartition{{Partition: 0}, {Partition: 5}}
	req.Topics = append(req.Topics, rt)
	resp := dpDo[*kmsg.OffsetDeleteResponse](dc, req)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != 0 ||
		resp.Topics[0].Partitions[1].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("offset delete: %+v", resp)
	}
	if got := dpFetchOffset(dc, 5, "od-group", "od", 0); got.Offset != -1 {
		t.Errorf("deleted offset: %+v", got)
	}
	if got := dpFetchOffset(dc, 5, "od-group", "od", 1); got.Offset != 11 {
		t.Errorf("kept offset: %+v", got)
	}
	for _, c := range []struct {
		group string
		want  *kerr.Error
	}{{"no-such-group", kerr.GroupIDNotFound}, {"", kerr.InvalidGroupID}} {
		req.Group = c.group
		if resp := dpDo[*kmsg.OffsetDeleteResponse](dc, req); resp.ErrorCode != c.want.Code {
			t.Errorf("group %q: %v, want %v", c.group, kerr.ErrorForCode(resp.ErrorCode), c.want)
		}
	}
}
