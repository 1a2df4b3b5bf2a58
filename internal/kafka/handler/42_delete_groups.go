package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DeleteGroups: delete groups and their committed offsets.
//
// Behavior:
//   - A group with members is NON_EMPTY_GROUP; one that does not exist is
//     GROUP_ID_NOT_FOUND; an empty id INVALID_GROUP_ID.
//   - The answer waits until the deletion (tombstones for the group and
//     every offset) is durable in __consumer_offsets.
//
// Version notes: v1 is v0; v2+ flexible. v3 (error messages) is not
// served.
func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DeleteGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteGroupsResponse)
	calls := make([]*group.Call[error], len(r.Groups))
	for i, id := range r.Groups {
		if h.groups == nil {
			calls[i] = group.Done[error](group.ErrCoordinatorNotAvailable)
			continue
		}
		calls[i] = h.groups.DeleteGroup(id)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for i, call := range calls {
			res, err := call.Wait(ctx)
			if err != nil {
				res = err
			}
			rg := kmsg.NewDeleteGroupsResponseGroup()
			rg.Group, rg.ErrorCode = r.Groups[i], errorCode(res)
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}}, nil
}
