package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// LeaveGroup: members leave a group; the rest rebalance.
//
// Behavior:
//   - v0-v2 name one member; its error is the response's error.
//   - v3+ batch members (KIP-345): each is answered on its own; a member
//     given by group.instance.id alone (member id "") is the static member
//     holding it. A group that does not exist answers UNKNOWN_MEMBER_ID
//     for every member, as Kafka does.
//
// Version notes: v1 throttle; v3 batched members; v4+ flexible; v5
// per-member reason.
func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: r.MemberID}}
	} else {
		for _, m := range r.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: derefStr(m.InstanceID), Reason: derefStr(m.Reason)})
		}
	}
	call := h.groups.LeaveGroup(r.Group, members)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res.Err = err
		}
		resp.ErrorCode = errorCode(res.Err)
		if req.Version < 3 {
			if resp.ErrorCode == 0 && len(res.Members) == 1 {
				resp.ErrorCode = errorCode(res.Members[0])
			}
			return resp
		}
		if res.Err != nil {
			return resp
		}
		for i, m := range r.Members {
			rm := kmsg.NewLeaveGroupResponseMember()
			rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
			if i < len(res.Members) {
				rm.ErrorCode = errorCode(res.Members[i])
			}
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}}, nil
}
