package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerGroupDescribeVersions: v0 and v1 describe a KIP-848 group;
// a classic group is GROUP_ID_NOT_FOUND.
func TestConsumerGroupDescribeVersions(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "cgd", 3, nil)
	dc := dpDial(t, b.Addr)
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = 1, "cgd-group", "member-1", 10000
	hb.SubscribedTopicRegex = kmsg.StringPtr("cg.*")
	hb.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
	hb.InstanceID, hb.RackID = kmsg.StringPtr("inst"), kmsg.StringPtr("rack-a")
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, hb); r.ErrorCode != 0 || r.Assignment == nil {
		t.Fatalf("join: %+v", r)
	}
	if j := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(0, "classic-cgd", "", nil, "range")); j.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(j.ErrorCode))
	}
	for v := int16(0); v <= 1; v++ {
		req := kmsg.NewPtrConsumerGroupDescribeRequest()
		req.Version, req.Groups, req.IncludeAuthorizedOperations = v, []string{"cgd-group", "classic-cgd"}, true
		resp := dpDo[*kmsg.ConsumerGroupDescribeResponse](dc, req)
		g := resp.Groups[0]
		if g.ErrorCode != 0 || g.State != "Stable" || g.AssignorName != "uniform" || len(g.Members) != 1 || g.AuthorizedOperations == -2147483648 {
			t.Fatalf("v%d: %+v", v, g)
		}
		m := g.Members[0]
		if m.MemberID != "member-1" || *m.InstanceID != "inst" || *m.RackID != "rack-a" || *m.SubscribedTopicRegex != "cg.*" ||
			len(m.Assignment.TopicPartitions) != 1 || len(m.TargetAssignment.TopicPartitions[0].Partitions) != 3 {
			t.Errorf("v%d member: %+v", v, m)
		}
		if resp.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code {
			t.Errorf("v%d classic group: %+v", v, resp.Groups[1])
		}
	}
}
