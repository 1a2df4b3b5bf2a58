package handler

import (
	"context"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// ListGroups: every group on this broker (the coordinator of all of them).
//
// Behavior:
//   - States filter (v4+): only groups in one of the states, matched
//     without regard to case, as Kafka does; empty means all.
//   - Types filter (v5+): "classic" or "consumer" (KIP-848 groups),
//     without regard to case.
//   - Groups that only commit offsets have protocol type "".
//
// Version notes: v1 throttle; v3+ flexible; v4 states filter and state;
// v5 types filter and type.
func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ListGroupsRequest)
	resp := r.ResponseKind().(*kmsg.ListGroupsResponse)
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	matches := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	for _, g := range h.groups.ListGroups() {
		if !matches(r.StatesFilter, g.State) || !matches(r.TypesFilter, g.Type) {
			continue
		}
		rg := kmsg.NewListGroupsResponseGroup()
		rg.Group, rg.ProtocolType, rg.GroupState, rg.GroupType = g.Group, g.ProtocolType, g.State, g.Type
		resp.Groups = append(resp.Groups, rg)
	}
	return now(resp)
}
