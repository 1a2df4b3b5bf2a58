package handler

import (
	"bytes"
	"context"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/server"
)

// JoinGroup: a member joins a classic consumer group (or rejoins it for a
// rebalance). The group coordinator (internal/coordinator/group) owns the
// rebalance; this handler translates.
//
// Behavior:
//   - The answer waits (in Reply.Finish, so the connection's reader goes
//     on) until the rebalance's join phase completes: every member has
//     rejoined, or the rebalance timeout passed, or — for a new group — the
//     initial rebalance delay (group.initial.rebalance.delay.ms).
//   - A new dynamic member at v4+ is given a member id with
//     MEMBER_ID_REQUIRED and must join again with it (KIP-394).
//   - The leader's answer lists every member with its metadata for the
//     chosen protocol (the one all members support that most prefer).
//   - Static members (group.instance.id, v5+): a known instance joining
//     without a member id replaces its old member id (which is fenced,
//     FENCED_INSTANCE_ID) and the group rebalances only if it must. A
//     restarted static leader is told to skip the assignment at v9
//     (KIP-814); before v9 it is given the old leader id instead.
//   - Errors: INVALID_GROUP_ID (empty or too long), INVALID_SESSION_TIMEOUT
//     (outside group.min/max.session.timeout.ms), INCONSISTENT_GROUP_PROTOCOL
//     (protocol type or protocols the group cannot use), UNKNOWN_MEMBER_ID,
//     FENCED_INSTANCE_ID, NOT_COORDINATOR while the broker shuts down.
//
// Version notes: v1 rebalance timeout (v0 uses the session timeout); v2
// throttle; v4 MEMBER_ID_REQUIRED; v5 group.instance.id; v6+ flexible; v7
// protocol type in the response; v8 reason; v9 skip-assignment.
func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	resp.MemberID = r.MemberID
	if h.groups == nil {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp)
	}
	jr := group.JoinRequest{
		Group: r.Group, MemberID: r.MemberID, InstanceID: derefStr(r.InstanceID),
		ClientID: req.ClientID, ClientHost: clientHost(req),
		ProtocolType:           r.ProtocolType,
		SessionTimeout:         millis(r.SessionTimeoutMillis),
		RebalanceTimeout:       millis(r.RebalanceTimeoutMillis),
		RequireKnownMemberID:   req.Version >= 4,
		SupportsSkipAssignment: req.Version >= 9,
		Reason:                 derefStr(r.Reason),
	}
	if req.Version == 0 {
		jr.RebalanceTimeout = jr.SessionTimeout
	}
	for _, p := range r.Protocols {
		// Copied: the group keeps it for the member's life, and the
		// request's bytes would pin the whole frame (server.Request).
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	call := h.groups.JoinGroup(jr)
	memberID := r.MemberID // not r: the wait may be long, the request need not live that long
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		res, err := call.Wait(ctx)
		if err != nil {
			res = group.JoinResult{Err: err, MemberID: memberID, Generation: -1}
		}
		resp.ErrorCode = errorCode(res.Err)
		resp.MemberID = res.MemberID
		resp.Generation = res.Generation
		resp.LeaderID = res.Leader
		resp.SkipAssignment = res.SkipAssignment
		if res.Err == nil {
			resp.ProtocolType = kmsg.StringPtr(res.ProtocolType)
			resp.Protocol = kmsg.StringPtr(res.Protocol)
		}
		for _, m := range res.Members {
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID, rm.ProtocolMetadata = m.MemberID, optStr(m.InstanceID), m.Metadata
			resp.Members = append(resp.Members, rm)
		}
		return resp
	}}, nil
}

// The helpers below are shared by the group handlers.

func millis(ms int32) time.Duration { return time.Duration(ms) * time.Millisecond }

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// optStr is nil for "" (an absent instance id).
func optStr(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// clientHost is the client's address as Kafka shows it in DescribeGroups:
// "/" and the IP, without the port.
func clientHost(req *server.Request) string {
	if req.Conn.RemoteAddr == nil {
		return ""
	}
	a := req.Conn.RemoteAddr.String()
	if i := strings.LastIndexByte(a, ':'); i >= 0 && !strings.HasSuffix(a, "]") {
		a = a[:i]
	}
	return "/" + strings.Trim(a, "[]")
}
