// Package acl is Strom's authorizer: ACL bindings, the filters of
// DescribeAcls and DeleteAcls, and the decision of Kafka's
// StandardAuthorizer (org.apache.kafka.metadata.authorizer.StandardAuthorizer)
// for a principal, a host, an operation and a resource.
//
// It is pure: no protocol codes (the handlers map its answers to Kafka's
// error codes), no I/O, no locks. The bindings live in the metadata store,
// which hands out immutable snapshots; an Authorizer decides over one.
//
// Semantics (Kafka's, KIP-11 and the StandardAuthorizer):
//   - A super user (super.users) is allowed everything.
//   - A binding matches a resource when its type is the resource's and its
//     pattern is LITERAL with the resource's name or "*", or PREFIXED with a
//     prefix of the name; and the principal when it is the principal or
//     "User:*"; and the host when it is the client's address or "*".
//   - DENY beats ALLOW: a matching DENY binding for the operation (or ALL)
//     refuses, whatever ALLOW bindings say.
//   - ALLOW of the operation or ALL allows; ALLOW of READ, WRITE, DELETE or
//     ALTER also allows DESCRIBE, and ALLOW of ALTER_CONFIGS allows
//     DESCRIBE_CONFIGS (implication only on ALLOW, as Kafka).
//   - When no binding at all exists for the resource (whoever it names),
//     allow.everyone.if.no.acl.found decides (false by default). A binding
//     for another principal counts as existing: only then is "no ACL
//     found" true (the trap of KAFKA-14435).
//
// Numeric values are Kafka's wire values, so that handlers convert with a
// cast.
package acl

import (
	"errors"
	"fmt"
	"strings"
)

// ResourceType is what a binding is about.
type ResourceType int8

// Kafka's resource types (AclResourceType).
const (
	ResourceAny             ResourceType = 1 // filters only
	ResourceTopic           ResourceType = 2
	ResourceGroup           ResourceType = 3
	ResourceCluster         ResourceType = 4
	ResourceTransactionalID ResourceType = 5
	ResourceDelegationToken ResourceType = 6
	ResourceUser            ResourceType = 7 // KIP-373: whose delegation tokens one may create or describe
)

// PatternType says how a binding's name matches.
type PatternType int8

// Kafka's pattern types (PatternType).
const (
	PatternAny      PatternType = 1 // filters only
	PatternMatch    PatternType = 2 // filters only: what would apply to a name
	PatternLiteral  PatternType = 3
	PatternPrefixed PatternType = 4
)

// Operation is what a principal does to a resource.
type Operation int8

// Kafka's operations (AclOperation).
const (
	OpAny             Operation = 1 // filters only
	OpAll             Operation = 2
	OpRead            Operation = 3
	OpWrite           Operation = 4
	OpCreate          Operation = 5
	OpDelete          Operation = 6
	OpAlter           Operation = 7
	OpDescribe        Operation = 8
	OpClusterAction   Operation = 9
	OpDescribeConfigs Operation = 10
	OpAlterConfigs    Operation = 11
	OpIdempotentWrite Operation = 12
	OpCreateTokens    Operation = 13 // on a User: create delegation tokens owned by it (KIP-373)
	OpDescribeTokens  Operation = 14 // on a User: describe its delegation tokens
)

// Permission is ALLOW or DENY.
type Permission int8

// Kafka's permission types.
const (
	PermissionAny   Permission = 1 // filters only
	PermissionDeny  Permission = 2
	PermissionAllow Permission = 3
)

// ClusterName is the cluster resource's only name.
const ClusterName = "kafka-cluster"

// Wildcard matches every name, principal or host.
const Wildcard = "*"

// Binding is one ACL.
type Binding struct {
	ResourceType ResourceType `json:"resource_type"`
	ResourceName string       `json:"resource_name"`
	PatternType  PatternType  `json:"pattern_type"`
	Principal    string       `json:"principal"`
	Host         string       `json:"host"`
	Operation    Operation    `json:"operation"`
	Permission   Permission   `json:"permission"`
}

// ErrInvalid marks a binding that cannot be stored.
var ErrInvalid = errors.New("invalid ACL binding")

// validOps are the operations each resource type has (Kafka's
// AclEntry.supportedOperations), ALL included.
var validOps = map[ResourceType][]Operation{
	ResourceTopic:           {OpAll, OpRead, OpWrite, OpCreate, OpDescribe, OpDelete, OpAlter, OpDescribeConfigs, OpAlterConfigs},
	ResourceGroup:           {OpAll, OpRead, OpDescribe, OpDelete},
	ResourceCluster:         {OpAll, OpCreate, OpClusterAction, OpDescribeConfigs, OpAlterConfigs, OpIdempotentWrite, OpAlter, OpDescribe},
	ResourceTransactionalID: {OpAll, OpDescribe, OpWrite},
	ResourceDelegationToken: {OpAll, OpDescribe},
	ResourceUser:            {OpAll, OpCreateTokens, OpDescribeTokens},
}

// Validate checks that b names a concrete resource, pattern, operation and
// permission, a principal of the form Type:name, and an operation the
// resource type has.
func (b Binding) Validate() error {
	ops, ok := validOps[b.ResourceType]
	switch {
	case !ok:
		return fmt.Errorf("%w: resource type %d", ErrInvalid, b.ResourceType)
	case b.ResourceName == "":
		return fmt.Errorf("%w: empty resource name", ErrInvalid)
	case b.PatternType != PatternLiteral && b.PatternType != PatternPrefixed:
		return fmt.Errorf("%w: pattern type %d: want LITERAL or PREFIXED", ErrInvalid, b.PatternType)
	case b.ResourceType == ResourceCluster && (b.ResourceName != ClusterName || b.PatternType != PatternLiteral):
		return fmt.Errorf("%w: the cluster resource is LITERAL %s", ErrInvalid, ClusterName)
	case b.Permission != PermissionAllow && b.Permission != PermissionDeny:
		return fmt.Errorf("%w: permission %d: want ALLOW or DENY", ErrInvalid, b.Permission)
	case b.Host == "":
		return fmt.Errorf("%w: empty host (use *)", ErrInvalid)
	}
	if typ, name, ok := strings.Cut(b.Principal, ":"); !ok || typ == "" || name == "" {
		return fmt.Errorf("%w: principal %q: want Type:name, as User:alice", ErrInvalid, b.Principal)
	}
	for _, op := range ops {
		if op == b.Operation {
			return nil
		}
	}
	return fmt.Errorf("%w: operation %d does not apply to resource type %d", ErrInvalid, b.Operation, b.ResourceType)
}

// Filter selects bindings (DescribeAcls, DeleteAcls). Nil strings match
// anything; Any values match any value.
type Filter struct {
	ResourceType ResourceType
	ResourceName *string
	PatternType  PatternType
	Principal    *string
	Host         *string
	Operation    Operation
	Permission   Permission
}

// Matches reports whether f selects b. PatternMatch selects the bindings
// that would apply to the filter's name: LITERAL ones with that name or
// "*", and PREFIXED ones whose prefix begins it.
func (f Filter) Matches(b Binding) bool {
	if f.ResourceType != ResourceAny && f.ResourceType != b.ResourceType {
		return false
	}
	if f.Operation != OpAny && f.Operation != b.Operation {
		return false
	}
	if f.Permission != PermissionAny && f.Permission != b.Permission {
		return false
	}
	if f.Principal != nil && *f.Principal != b.Principal {
		return false
	}
	if f.Host != nil && *f.Host != b.Host {
		return false
	}
	switch f.PatternType {
	case PatternAny:
		return f.ResourceName == nil || *f.ResourceName == b.ResourceName
	case PatternMatch:
		return f.ResourceName == nil || nameMatches(b, *f.ResourceName)
	default:
		return f.PatternType == b.PatternType && (f.ResourceName == nil || *f.ResourceName == b.ResourceName)
	}
}

// nameMatches reports whether b's pattern covers name.
func nameMatches(b Binding, name string) bool {
	if b.PatternType == PatternPrefixed {
		return strings.HasPrefix(name, b.ResourceName)
	}
	return b.ResourceName == name || b.ResourceName == Wildcard
}

// Authorizer decides over one snapshot of bindings. It is immutable.
type Authorizer struct {
	bindings             []Binding
	superUsers           map[string]bool
	allowEveryoneIfNoACL bool
}

// NewAuthorizer decides over bindings (not copied: the caller never
// modifies them), with super.users and allow.everyone.if.no.acl.found.
func NewAuthorizer(bindings []Binding, superUsers []string, allowEveryoneIfNoACL bool) *Authorizer {
	a := &Authorizer{bindings: bindings, superUsers: map[string]bool{}, allowEveryoneIfNoACL: allowEveryoneIfNoACL}
	for _, u := range superUsers {
		a.superUsers[u] = true
	}
	return a
}

// ParseSuperUsers splits super.users ("User:admin;User:ops").
func ParseSuperUsers(s string) []string {
	var out []string
	for _, u := range strings.Split(s, ";") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// Authorize reports whether principal, connected from host, may do op on
// the resource (typ, name).
func (a *Authorizer) Authorize(principal, host string, op Operation, typ ResourceType, name string) bool {
	if a.superUsers[principal] {
		return true
	}
	found, allowed := false, false
	for _, b := range a.bindings {
		if b.ResourceType != typ || !nameMatches(b, name) {
			continue
		}
		found = true
		if b.Principal != principal && b.Principal != "User:"+Wildcard {
			continue
		}
		if b.Host != host && b.Host != Wildcard {
			continue
		}
		if b.Permission == PermissionDeny {
			if b.Operation == op || b.Operation == OpAll {
				return false // deny wins
			}
			continue
		}
		if implies(b.Operation, op) {
			allowed = true
		}
	}
	if allowed {
		return true
	}
	return !found && a.allowEveryoneIfNoACL
}

// implies reports whether an ALLOW of granted allows op.
func implies(granted, op Operation) bool {
	switch {
	case granted == op || granted == OpAll:
		return true
	case op == OpDescribe:
		return granted == OpRead || granted == OpWrite || granted == OpDelete || granted == OpAlter
	case op == OpDescribeConfigs:
		return granted == OpAlterConfigs
	}
	return false
}

// AnyAllowed reports whether principal may do op on some resource of typ
// (used where Kafka asks "any topic": an idempotent producer with WRITE on
// a topic needs no IDEMPOTENT_WRITE on the cluster, KIP-679). It looks for
// an ALLOW binding the principal and host match that no DENY of the same
// pattern cancels; super users always may.
func (a *Authorizer) AnyAllowed(principal, host string, op Operation, typ ResourceType) bool {
	if a.superUsers[principal] {
		return true
	}
	for _, b := range a.bindings {
		if b.ResourceType != typ || b.Permission != PermissionAllow || !implies(b.Operation, op) {
			continue
		}
		if (b.Principal == principal || b.Principal == "User:"+Wildcard) && (b.Host == host || b.Host == Wildcard) {
			if b.PatternType == PatternLiteral && b.ResourceName != Wildcard && !a.Authorize(principal, host, op, typ, b.ResourceName) {
				continue
			}
			return true
		}
	}
	return false
}
