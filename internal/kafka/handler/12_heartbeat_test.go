package handler

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHeartbeatSession: heartbeats keep a member past its session
// timeout; without them the coordinator removes it and the group empties.
func TestHeartbeatSession(t *testing.T) {
	b := startBroker(t, "", map[string]string{"group.min.session.timeout.ms": "100"})
	dc := dpDial(t, b.Addr)
	req := dpJoin(0, "hb", "", nil, "range")
	req.SessionTimeoutMillis = 300
	j := dpDo[*kmsg.JoinGroupResponse](dc, req)
	if j.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(j.ErrorCode))
	}
	if r := dpDo[*kmsg.SyncGroupResponse](dc, dpSync(0, "hb", j.MemberID, 1, map[string]string{j.MemberID: "a"})); r.ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(r.ErrorCode))
	}
	// Ten heartbeats 100ms apart: a second, over three session timeouts.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i := 0; i < 10; i++ {
		<-tick.C
		if r := dpDo[*kmsg.HeartbeatResponse](dc, dpHeartbeat(4, "hb", j.MemberID, 1)); r.ErrorCode != 0 {
			t.Fatalf("heartbeat %d: %v", i, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	// Silence: the session ends and the member is gone.
	deadline := time.Now().Add(10 * time.Second)
	for {
		<-tick.C
		d := dpDo[*kmsg.DescribeGroupsResponse](dc, &kmsg.DescribeGroupsRequest{Groups: []string{"hb"}})
		if d.Groups[0].State == "Empty" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("member still there: %+v", d.Groups[0])
		}
	}
	if r := dpDo[*kmsg.HeartbeatResponse](dc, dpHeartbeat(0, "hb", j.MemberID, 1)); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("heartbeat after expiry: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
