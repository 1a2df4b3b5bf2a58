package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DeleteAcls: remove the bindings each filter selects and list them.
//
// Behavior:
//   - Needs ALTER on the cluster: CLUSTER_AUTHORIZATION_FAILED for every
//     filter otherwise; SECURITY_DISABLED without an authorizer.
//   - Every filter's matches are removed in one rewrite of the store.
//
// Version notes: v0 filters are LITERAL; v1 pattern types; v2+ flexible.
func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DeleteACLsRequest)
	resp := r.ResponseKind().(*kmsg.DeleteACLsResponse)
	code := int16(0)
	var msg *string
	switch {
	case !h.cfg.ACLs.Enabled:
		code, msg = kerr.SecurityDisabled.Code, kmsg.StringPtr("no authorizer is configured (authorizer.class.name)")
	case !h.allowedCluster(req, acl.OpAlter):
		code = kerr.ClusterAuthorizationFailed.Code
	}
	fs := make([]acl.Filter, len(r.Filters))
	for i, f := range r.Filters {
		pattern := acl.PatternType(f.ResourcePatternType)
		if req.Version == 0 {
			pattern = acl.PatternLiteral
		}
		fs[i] = acl.Filter{ResourceType: acl.ResourceType(f.ResourceType), ResourceName: f.ResourceName, PatternType: pattern,
			Principal: f.Principal, Host: f.Host, Operation: acl.Operation(f.Operation), Permission: acl.Permission(f.PermissionType)}
	}
	var deleted [][]acl.Binding
	if code == 0 {
		var err error
		if deleted, err = h.c.DeleteACLs(fs); err != nil {
			code, msg = kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())
		}
	}
	for i := range r.Filters {
		res := kmsg.NewDeleteACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = code, msg
		if code == 0 {
			for _, b := range deleted[i] {
				m := kmsg.NewDeleteACLsResponseResultMatchingACL()
				m.ResourceType, m.ResourceName, m.ResourcePatternType = kmsg.ACLResourceType(b.ResourceType), b.ResourceName, kmsg.ACLResourcePatternType(b.PatternType)
				m.Principal, m.Host, m.Operation, m.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
				res.MatchingACLs = append(res.MatchingACLs, m)
			}
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp)
}
