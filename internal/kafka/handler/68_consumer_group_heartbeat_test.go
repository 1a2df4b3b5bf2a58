package handler

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestConsumerGroup848 runs franz-go's KIP-848 consumer (server-side
// assignment) against the coordinator: consume, commit, describe with
// ConsumerGroupDescribe, DescribeGroups and ListGroups, lag through kadm,
// and a broker restart that the member rides through in its epoch.
func TestConsumerGroup848(t *testing.T) {
	dir := t.TempDir()
	props := map[string]string{"group.consumer.session.timeout.ms": "6000", "group.consumer.heartbeat.interval.ms": "200"}
	b := startBroker(t, dir, props)
	addr := b.Addr
	admCreate(t, b.admin(t), "kip848", 4, nil)
	groupProduce(t, b, "kip848", "a", 200)
	l := newLedger()
	m := startMember(t, b, "m848", "g848", "kip848", l, kgo.RangeBalancer(), kgo.ServerSideBalancer())
	l.waitFor(t, 200, "848 consumer")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	req := kmsg.NewPtrConsumerGroupDescribeRequest()
	req.Groups = []string{"g848", "missing", ""}
	resp := admRaw[*kmsg.ConsumerGroupDescribeResponse](t, b.client(t), req)
	g := resp.Groups[0]
	if g.ErrorCode != 0 || g.State != "Stable" || g.AssignorName != "range" || len(g.Members) != 1 {
		t.Fatalf("describe: %+v", g)
	}
	mem := g.Members[0]
	if len(mem.Assignment.TopicPartitions) != 1 || len(mem.Assignment.TopicPartitions[0].Partitions) != 4 ||
		mem.Assignment.TopicPartitions[0].Topic != "kip848" || mem.MemberEpoch != g.Epoch || mem.MemberType != 1 {
		t.Errorf("member: %+v", mem)
	}
	if resp.Groups[1].ErrorCode != kerr.GroupIDNotFound.Code || resp.Groups[2].ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("missing and empty: %+v %+v", resp.Groups[1], resp.Groups[2])
	}
	adm := b.admin(t)
	lg, err := adm.ListGroupsByType(ctx, []string{"consumer"})
	if err != nil || lg["g848"].ProtocolType != "consumer" || lg["g848"].State != "Stable" {
		t.Errorf("list consumer groups: %+v %v", lg, err)
	}
	lags, err := adm.Lag(ctx, "g848")
	if err != nil || lags.Error() != nil {
		t.Fatalf("lag: %v %v", err, lags.Error())
	}
	var total int64
	for _, ps := range lags["g848"].Lag {
		for _, pl := range ps {
			total += pl.Lag
		}
	}
	if total != 0 || len(lags["g848"].Members) != 1 {
		t.Errorf("lag of a caught-up 848 group: %d, members %+v", total, lags["g848"].Members)
	}

	// The broker restarts; the member carries on in its epoch.
	b.Stop(t)
	b = startBrokerAt(t, dir, addr, props)
	groupProduce(t, b, "kip848", "b", 200)
	l.waitFor(t, 400, "after the restart")
	m.stop()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k, who := range l.processed {
		if len(who) != 1 {
			t.Errorf("record %s processed by %v", k, who)
		}
	}
	if len(l.failed) > 0 {
		t.Errorf("failed commits: %v", l.failed)
	}
}

// TestConsumerGroupHeartbeatRaw checks the request rules Kafka applies
// (v0 member ids made by the coordinator, v1 by the member) and the errors.
func TestConsumerGroupHeartbeatRaw(t *testing.T) {
	b := startBroker(t, "", nil)
	dpTopic(t, b, "raw848", 2, nil)
	dc := dpDial(t, b.Addr)
	join := func(version int16, member string) *kmsg.ConsumerGroupHeartbeatRequest {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Version, req.Group, req.MemberID = version, "raw848", member
		req.RebalanceTimeoutMillis = 10000
		req.SubscribedTopicNames = []string{"raw848"}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		return req
	}
	r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, join(0, ""))
	if r.ErrorCode != 0 || r.MemberID == nil || *r.MemberID == "" || r.MemberEpoch != 1 || r.Assignment == nil ||
		len(r.Assignment.Topics) != 1 || len(r.Assignment.Topics[0].Partitions) != 2 || r.HeartbeatIntervalMillis != 5000 {
		t.Fatalf("v0 join: %+v", r)
	}
	topic, _ := b.Cluster.Topic("raw848")
	if r.Assignment.Topics[0].TopicID != topic.ID {
		t.Errorf("assignment names topic id %x, Metadata %x", r.Assignment.Topics[0].TopicID, topic.ID)
	}
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, join(1, "")); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("v1 join without a member id: %+v", r)
	}
	bad := join(1, "x")
	bad.ServerAssignor = kmsg.StringPtr("nope")
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, bad); r.ErrorCode != kerr.UnsupportedAssignor.Code {
		t.Errorf("unknown assignor: %+v", r)
	}
	re := join(1, "y")
	re.SubscribedTopicNames, re.SubscribedTopicRegex = nil, kmsg.StringPtr("[")
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, re); r.ErrorCode != kerr.InvalidRegularExpression.Code {
		t.Errorf("bad regex: %+v", r)
	}
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Version, hb.Group, hb.MemberID, hb.MemberEpoch = 1, "raw848", *r.MemberID, 99
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, hb); r.ErrorCode != kerr.FencedMemberEpoch.Code {
		t.Errorf("wrong epoch: %+v", r)
	}
	hb.MemberID, hb.MemberEpoch = "stranger", 3
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, hb); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("stranger: %+v", r)
	}
	hb.Group = ""
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, hb); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Errorf("empty group id: %+v", r)
	}
	// A classic group with members is not a consumer group.
	if j := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(0, "classic-g", "", nil, "range")); j.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(j.ErrorCode))
	}
	cj := join(1, "z")
	cj.Group = "classic-g"
	if r := dpDo[*kmsg.ConsumerGroupHeartbeatResponse](dc, cj); r.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Errorf("848 join of a classic group: %+v", r)
	}
	// OffsetCommit before v9 from a KIP-848 member.
	if code := dpCommit(dc, 8, "raw848", r.MemberEpoch, *r.MemberID, "raw848", 0, 1, -1, nil); code != kerr.UnsupportedVersion.Code {
		t.Errorf("commit v8 from an 848 member: %v", kerr.ErrorForCode(code))
	}
	if code := dpCommit(dc, 9, "raw848", 1, *r.MemberID, "raw848", 0, 1, -1, nil); code != 0 {
		t.Errorf("commit v9 from an 848 member: %v", kerr.ErrorForCode(code))
	}
}
