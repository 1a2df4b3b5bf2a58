package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// Heartbeat: a member says it is alive; the answer tells it whether to
// rejoin.
//
// Behavior:
//   - Resets the member's session timeout.
//   - REBALANCE_IN_PROGRESS while the group rebalances: the member must
//     rejoin. UNKNOWN_MEMBER_ID for a member (or group) the coordinator
//     does not know, ILLEGAL_GENERATION for an old generation,
//     FENCED_INSTANCE_ID for a replaced static member.
//
// Version notes: v1 throttle; v3 group.instance.id; v4+ flexible.
func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	call := h.groups.Heartbeat(group.HeartbeatRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID), Generation: r.Generation,
	})
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res = err
		}
		resp.ErrorCode = errorCode(res)
		return resp
	}}, nil
}
