package handler

import (
	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// ACLConfig turns authorization on (authorizer.class.name set to Kafka's
// StandardAuthorizer) with super.users and allow.everyone.if.no.acl.found.
type ACLConfig struct {
	Enabled              bool
	SuperUsers           []string
	AllowEveryoneIfNoACL bool
}

// StandardAuthorizerNames are the authorizer.class.name values that turn
// ACLs on: Kafka's KRaft authorizer, and its ZooKeeper-era one, whose
// semantics are the same.
var StandardAuthorizerNames = []string{"org.apache.kafka.metadata.authorizer.StandardAuthorizer", "kafka.security.authorizer.AclAuthorizer"}

// authzCache is the authorizer built over one security snapshot.
type authzCache struct {
	sec *metadata.Security
	a   *acl.Authorizer
}

// authorizer returns the authorizer over the current ACLs, rebuilt only
// when the snapshot changed. No lock: a race builds it twice.
func (h *Handler) authorizer() *acl.Authorizer {
	sec := h.c.Security()
	if c := h.authz.Load(); c != nil && c.sec == sec {
		return c.a
	}
	c := &authzCache{sec: sec, a: acl.NewAuthorizer(sec.ACLs(), h.cfg.ACLs.SuperUsers, h.cfg.ACLs.AllowEveryoneIfNoACL)}
	h.authz.Store(c)
	return c.a
}

func principalOf(req *server.Request) string {
	if s := req.Conn.Session; s != nil {
		return s.Principal()
	}
	return server.Anonymous
}

// allowed reports whether req's principal may do op on (typ, name); always
// true without an authorizer.
func (h *Handler) allowed(req *server.Request, op acl.Operation, typ acl.ResourceType, name string) bool {
	if !h.cfg.ACLs.Enabled {
		return true
	}
	return h.authorizer().Authorize(principalOf(req), req.Conn.RemoteIP, op, typ, name)
}

// allowedCluster is allowed on the cluster resource.
func (h *Handler) allowedCluster(req *server.Request, op acl.Operation) bool {
	return h.allowed(req, op, acl.ResourceCluster, acl.ClusterName)
}

// allowedAnyTopic reports whether the principal may do op on some topic.
func (h *Handler) allowedAnyTopic(req *server.Request, op acl.Operation) bool {
	if !h.cfg.ACLs.Enabled {
		return true
	}
	return h.authorizer().AnyAllowed(principalOf(req), req.Conn.RemoteIP, op, acl.ResourceTopic)
}

// authorizedOps is the authorized-operations bit field of a resource for
// req's principal: of the operations in all (the resource type's), those
// the authorizer allows; all itself without an authorizer (Kafka answers
// the same then).
func (h *Handler) authorizedOps(req *server.Request, typ acl.ResourceType, name string, all int32) int32 {
	if !h.cfg.ACLs.Enabled {
		return all
	}
	var bits int32
	for op := acl.OpRead; op <= acl.OpIdempotentWrite; op++ {
		if all&(1<<op) != 0 && h.allowed(req, op, typ, name) {
			bits |= 1 << op
		}
	}
	return bits
}
