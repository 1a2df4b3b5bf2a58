package handler

import (
	"bytes"
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// SyncGroup: after JoinGroup, the leader sends the assignment it computed
// and every member receives its own.
//
// Behavior:
//   - A follower's answer waits (in Reply.Finish) for the leader's
//     SyncGroup; the leader's waits until the group, with the assignment,
//     is durable in __consumer_offsets. Then the group is Stable.
//   - Members without an assignment from the leader get an empty one.
//   - Errors: UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID, ILLEGAL_GENERATION,
//     REBALANCE_IN_PROGRESS (a rebalance began: rejoin),
//     INCONSISTENT_GROUP_PROTOCOL (v5 protocol type or name mismatch).
//
// Version notes: v1 throttle; v3 group.instance.id; v4+ flexible; v5
// protocol type and name in request and response.
func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	resp.MemberAssignment = []byte{}
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	sr := group.SyncRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID), Generation: r.Generation,
		ProtocolType: derefStr(r.ProtocolType), Protocol: derefStr(r.Protocol),
	}
	if len(r.GroupAssignment) > 0 {
		sr.Assignments = make(map[string][]byte, len(r.GroupAssignment))
		for _, a := range r.GroupAssignment {
			// Copied: the group keeps it, and the request's bytes
			// would pin the whole frame (server.Request).
			sr.Assignments[a.MemberID] = bytes.Clone(a.MemberAssignment)
		}
	}
	call := h.groups.SyncGroup(sr)
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res.Err = err
		}
		resp.ErrorCode = errorCode(res.Err)
		if res.Err == nil {
			resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
			resp.Protocol = kmsg.StringPtr(res.Protocol)
			if res.Assignment != nil {
				resp.MemberAssignment = res.Assignment
			}
		}
		return resp
	}}, nil
}
