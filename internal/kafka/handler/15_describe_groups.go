package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeGroups: the state, protocol and members of groups.
//
// Behavior:
//   - A group that does not exist is described as Dead with no members and
//     no error (up to v5, as Kafka does); an empty group id is
//     INVALID_GROUP_ID.
//   - Members' metadata and assignments, and the protocol, are given only
//     while the group is Stable (Kafka's rule).
//   - Authorized operations (v3+), when asked for, are every group
//     operation (no ACLs yet); otherwise INT32_MIN.
//
// Version notes: v1 throttle; v3 authorized operations; v4 instance ids;
// v5+ flexible. v6 (GROUP_ID_NOT_FOUND for unknown groups, error
// messages) is not served.
func init() { register(15, 0, 5, handleDescribeGroups) }

// groupOperations is the authorized-operations bit set for a group: READ
// (3), DELETE (6) and DESCRIBE (8).
const groupOperations = 1<<3 | 1<<6 | 1<<8

func handleDescribeGroups(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeGroupsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeGroupsResponse)
	calls := make([]*group.Call[group.Description], len(r.Groups))
	for i, id := range r.Groups {
		if h.groups == nil {
			calls[i] = group.Done(group.Description{Err: group.ErrCoordinatorNotAvailable, Group: id})
			continue
		}
		calls[i] = h.groups.DescribeGroup(id)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		for i, call := range calls {
			d, err := call.Wait(ctx)
			if err != nil {
				d = group.Description{Err: err}
			}
			rg := kmsg.NewDescribeGroupsResponseGroup()
			rg.Group = r.Groups[i]
			rg.ErrorCode = errorCode(d.Err)
			rg.State, rg.ProtocolType, rg.Protocol = d.State, d.ProtocolType, d.Protocol
			if d.Err != nil {
				rg.State = ""
			}
			if r.IncludeAuthorizedOperations {
				rg.AuthorizedOperations = h.authorizedOps(req, acl.ResourceGroup, rg.Group, groupOperations)
			}
			for _, m := range d.Members {
				rm := kmsg.NewDescribeGroupsResponseGroupMember()
				rm.MemberID, rm.InstanceID, rm.ClientID, rm.ClientHost = m.MemberID, optStr(m.InstanceID), m.ClientID, m.ClientHost
				rm.ProtocolMetadata, rm.MemberAssignment = orEmpty(m.Metadata), orEmpty(m.Assignment)
				rg.Members = append(rg.Members, rm)
			}
			resp.Groups = append(resp.Groups, rg)
		}
		return resp
	}}, nil
}

func orEmpty(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
