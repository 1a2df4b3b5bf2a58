package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// CreateAcls: store ACL bindings in the metadata store.
//
// Behavior:
//   - Needs ALTER on the cluster: CLUSTER_AUTHORIZATION_FAILED for every
//     creation otherwise; SECURITY_DISABLED without an authorizer.
//   - A binding that cannot be stored (ANY or MATCH values, an operation
//     its resource type lacks, a principal not of the form Type:name, a
//     cluster resource not named kafka-cluster) is INVALID_REQUEST with the
//     reason; the others are written in one rewrite of the store before
//     the answer. A binding already stored is accepted once.
//
// Version notes: v0 bindings are LITERAL; v1 pattern types; v2+ flexible.
func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.CreateACLsRequest)
	resp := r.ResponseKind().(*kmsg.CreateACLsResponse)
	code := int16(0)
	var msg *string
	switch {
	case !h.cfg.ACLs.Enabled:
		code, msg = kerr.SecurityDisabled.Code, kmsg.StringPtr("no authorizer is configured (authorizer.class.name)")
	case !h.allowedCluster(req, acl.OpAlter):
		code = kerr.ClusterAuthorizationFailed.Code
	}
	bs := make([]acl.Binding, len(r.Creations))
	for i, c := range r.Creations {
		pattern := acl.PatternType(c.ResourcePatternType)
		if req.Version == 0 {
			pattern = acl.PatternLiteral
		}
		bs[i] = acl.Binding{ResourceType: acl.ResourceType(c.ResourceType), ResourceName: c.ResourceName, PatternType: pattern,
			Principal: c.Principal, Host: c.Host, Operation: acl.Operation(c.Operation), Permission: acl.Permission(c.PermissionType)}
	}
	var errs []error
	if code == 0 {
		var err error
		errs, err = h.c.CreateACLs(bs)
		if err != nil {
			code, msg = kerr.UnknownServerError.Code, kmsg.StringPtr(err.Error())
		}
	}
	for i := range r.Creations {
		res := kmsg.NewCreateACLsResponseResult()
		res.ErrorCode, res.ErrorMessage = code, msg
		if code == 0 && errs[i] != nil {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(errs[i].Error())
		}
		resp.Results = append(resp.Results, res)
	}
	return now(resp)
}
