package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// DescribeAcls: the ACL bindings a filter selects, grouped by resource.
//
// Behavior:
//   - Needs DESCRIBE on the cluster: CLUSTER_AUTHORIZATION_FAILED otherwise.
//   - Without an authorizer (authorizer.class.name unset):
//     SECURITY_DISABLED, as Kafka.
//   - Pattern MATCH selects what applies to the filter's name (see
//     acl.Filter); v0 filters are LITERAL.
//
// Version notes: v0 filters are LITERAL; v1 pattern types; v2+ flexible;
// v3 changes nothing in the layout (user principals in filters).
func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.DescribeACLsRequest)
	resp := r.ResponseKind().(*kmsg.DescribeACLsResponse)
	switch {
	case !h.cfg.ACLs.Enabled:
		resp.ErrorCode, resp.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr("no authorizer is configured (authorizer.class.name)")
		return now(resp)
	case !h.allowedCluster(req, acl.OpDescribe):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp)
	}
	pattern := acl.PatternType(r.ResourcePatternType)
	if req.Version == 0 {
		pattern = acl.PatternLiteral
	}
	f := acl.Filter{ResourceType: acl.ResourceType(r.ResourceType), ResourceName: r.ResourceName, PatternType: pattern,
		Principal: r.Principal, Host: r.Host, Operation: acl.Operation(r.Operation), Permission: acl.Permission(r.PermissionType)}
	type key struct {
		typ     acl.ResourceType
		name    string
		pattern acl.PatternType
	}
	idx := map[key]int{}
	for _, b := range h.c.Security().ACLs() {
		if !f.Matches(b) {
			continue
		}
		k := key{b.ResourceType, b.ResourceName, b.PatternType}
		i, ok := idx[k]
		if !ok {
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType, res.ResourceName, res.ResourcePatternType = kmsg.ACLResourceType(k.typ), k.name, kmsg.ACLResourcePatternType(k.pattern)
			resp.Resources = append(resp.Resources, res)
			i = len(resp.Resources) - 1
			idx[k] = i
		}
		a := kmsg.NewDescribeACLsResponseResourceACL()
		a.Principal, a.Host, a.Operation, a.PermissionType = b.Principal, b.Host, kmsg.ACLOperation(b.Operation), kmsg.ACLPermissionType(b.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, a)
	}
	return now(resp)
}
