package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestLeaveGroup: v0 names one member, v3+ batch members (by member id or,
// for static members, by instance id alone), and each is answered.
func TestLeaveGroup(t *testing.T) {
	b := startBroker(t, "", nil)
	dc := dpDial(t, b.Addr)

	// Three members: two dynamic (v0), one static.
	a := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(0, "leave", "", nil, "range"))
	dc.sendSync(t, a)
	c2 := dpDial(t, b.Addr)
	rb := dpJoin(0, "leave", "", nil, "range")
	cb := c2.send(rb)
	rejoin := dpJoin(0, "leave", a.MemberID, nil, "range")
	if r := dpDo[*kmsg.JoinGroupResponse](dc, rejoin); r.ErrorCode != 0 || r.Generation != 2 {
		t.Fatalf("rejoin: %+v", r)
	}
	bm := c2.read(rb, cb).(*kmsg.JoinGroupResponse)

	// v0: one member; its error is the response's.
	lv := kmsg.NewPtrLeaveGroupRequest()
	lv.Group, lv.MemberID = "leave", "nobody"
	if r := dpDo[*kmsg.LeaveGroupResponse](dc, lv); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("v0 unknown member: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	lv.MemberID = bm.MemberID
	if r := dpDo[*kmsg.LeaveGroupResponse](dc, lv); r.ErrorCode != 0 {
		t.Errorf("v0 leave: %v", kerr.ErrorForCode(r.ErrorCode))
	}

	// v3+: a batch, per-member answers.
	inst := kmsg.StringPtr("static-1")
	sj := dpDo[*kmsg.JoinGroupResponse](dc, dpJoin(5, "leave-static", "", inst, "range"))
	if sj.ErrorCode != 0 {
		t.Fatalf("static join: %+v", sj)
	}
	lv3 := kmsg.NewPtrLeaveGroupRequest()
	lv3.Version, lv3.Group = 5, "leave-static"
	for _, m := range []kmsg.LeaveGroupRequestMember{
		{MemberID: "", InstanceID: inst, Reason: kmsg.StringPtr("shutting down")},
		{MemberID: "ghost"},
		{MemberID: "wrong-id", InstanceID: kmsg.StringPtr("static-2")},
	} {
		lv3.Members = append(lv3.Members, m)
	}
	r := dpDo[*kmsg.LeaveGroupResponse](dc, lv3)
	if r.ErrorCode != 0 || len(r.Members) != 3 || r.Members[0].ErrorCode != 0 ||
		r.Members[1].ErrorCode != kerr.UnknownMemberID.Code || r.Members[2].ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("v5 batch: %+v", r)
	}

	// A group that does not exist: UNKNOWN_MEMBER_ID per member (v3+), at
	// the top (v0-v2).
	lv3.Group = "no-such-group"
	lv3.Members = lv3.Members[:1]
	if r := dpDo[*kmsg.LeaveGroupResponse](dc, lv3); r.ErrorCode != 0 || len(r.Members) != 1 || r.Members[0].ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("v5 unknown group: %+v", r)
	}
	lv.Group = "no-such-group"
	if r := dpDo[*kmsg.LeaveGroupResponse](dc, lv); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Errorf("v0 unknown group: %+v", r)
	}
	lv.Group = ""
	if r := dpDo[*kmsg.LeaveGroupResponse](dc, lv); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Errorf("v0 empty group id: %+v", r)
	}
}

// sendSync completes a lone member's rebalance (leader assigns itself).
func (dc *dpConn) sendSync(t *testing.T, j *kmsg.JoinGroupResponse) {
	t.Helper()
	if r := dpDo[*kmsg.SyncGroupResponse](dc, dpSync(0, "leave", j.MemberID, j.Generation, map[string]string{j.MemberID: "x"})); r.ErrorCode != 0 {
		t.Fatalf("sync: %v", kerr.ErrorForCode(r.ErrorCode))
	}
}
