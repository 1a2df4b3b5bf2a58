package acl

import "testing"

func b(typ ResourceType, name string, pat PatternType, principal string, op Operation, perm Permission) Binding {
	return Binding{ResourceType: typ, ResourceName: name, PatternType: pat, Principal: principal, Host: "*", Operation: op, Permission: perm}
}

// TestAuthorize: the StandardAuthorizer's rules, one row each.
func TestAuthorize(t *testing.T) {
	alice, bob := "User:alice", "User:bob"
	bindings := []Binding{
		b(ResourceTopic, "orders", PatternLiteral, alice, OpRead, PermissionAllow),
		b(ResourceTopic, "pay-", PatternPrefixed, alice, OpWrite, PermissionAllow),
		b(ResourceTopic, "pay-secret", PatternLiteral, alice, OpAll, PermissionDeny),
		b(ResourceTopic, "public", PatternLiteral, "User:*", OpRead, PermissionAllow),
		b(ResourceTopic, "*", PatternLiteral, bob, OpDescribe, PermissionAllow),
		b(ResourceTopic, "cfg", PatternLiteral, alice, OpAlterConfigs, PermissionAllow),
		b(ResourceTopic, "denyread", PatternLiteral, alice, OpAll, PermissionAllow),
		b(ResourceTopic, "denyread", PatternLiteral, alice, OpRead, PermissionDeny),
		b(ResourceGroup, "g", PatternLiteral, alice, OpRead, PermissionAllow),
		{ResourceType: ResourceTopic, ResourceName: "hosted", PatternType: PatternLiteral, Principal: alice, Host: "10.0.0.1", Operation: OpRead, Permission: PermissionAllow},
		b(ResourceTopic, "othersonly", PatternLiteral, bob, OpRead, PermissionAllow),
	}
	strict := NewAuthorizer(bindings, []string{"User:admin"}, false)
	open := NewAuthorizer(bindings, nil, true)
	for _, tc := range []struct {
		a         *Authorizer
		principal string
		host      string
		op        Operation
		typ       ResourceType
		name      string
		want      bool
	}{
		{strict, alice, "1.2.3.4", OpRead, ResourceTopic, "orders", true},
		{strict, alice, "1.2.3.4", OpDescribe, ResourceTopic, "orders", true}, // READ implies DESCRIBE
		{strict, alice, "1.2.3.4", OpWrite, ResourceTopic, "orders", false},
		{strict, bob, "1.2.3.4", OpRead, ResourceTopic, "orders", false},
		{strict, alice, "1.2.3.4", OpWrite, ResourceTopic, "pay-eu", true},      // prefixed
		{strict, alice, "1.2.3.4", OpWrite, ResourceTopic, "pay-secret", false}, // deny wins
		{strict, alice, "1.2.3.4", OpDescribe, ResourceTopic, "pay-secret", false},
		{strict, bob, "1.2.3.4", OpRead, ResourceTopic, "public", true},       // User:*
		{strict, bob, "1.2.3.4", OpDescribe, ResourceTopic, "anything", true}, // literal *
		{strict, bob, "1.2.3.4", OpRead, ResourceTopic, "anything", false},
		{strict, alice, "1.2.3.4", OpDescribeConfigs, ResourceTopic, "cfg", true}, // ALTER_CONFIGS implies DESCRIBE_CONFIGS
		{strict, alice, "1.2.3.4", OpDescribe, ResourceTopic, "cfg", false},
		{strict, alice, "1.2.3.4", OpRead, ResourceTopic, "denyread", false},
		{strict, alice, "1.2.3.4", OpDescribe, ResourceTopic, "denyread", true}, // a DENY of READ does not deny DESCRIBE
		{strict, alice, "1.2.3.4", OpRead, ResourceGroup, "g", true},
		{strict, alice, "1.2.3.4", OpRead, ResourceGroup, "h", false},
		{strict, alice, "10.0.0.1", OpRead, ResourceTopic, "hosted", true},
		{strict, alice, "10.0.0.2", OpRead, ResourceTopic, "hosted", false},
		{strict, "User:admin", "1.2.3.4", OpDelete, ResourceCluster, ClusterName, true}, // super user
		{strict, alice, "1.2.3.4", OpRead, ResourceTopic, "nobody", false},              // no ACL, default deny
		{open, alice, "1.2.3.4", OpRead, ResourceGroup, "nobody", true},                 // no ACL, allow.everyone
		{open, alice, "1.2.3.4", OpRead, ResourceTopic, "othersonly", false},            // KAFKA-14435: ACLs exist for others
		{open, alice, "1.2.3.4", OpWrite, ResourceTopic, "pay-secret", false},
	} {
		if got := tc.a.Authorize(tc.principal, tc.host, tc.op, tc.typ, tc.name); got != tc.want {
			t.Errorf("%s@%s op %d on %d:%s: %v, want %v", tc.principal, tc.host, tc.op, tc.typ, tc.name, got, tc.want)
		}
	}
	if !strict.AnyAllowed(alice, "1.2.3.4", OpWrite, ResourceTopic) || strict.AnyAllowed(bob, "1.2.3.4", OpWrite, ResourceTopic) {
		t.Error("AnyAllowed")
	}
}

// TestFilter: DescribeAcls/DeleteAcls filters, MATCH included.
func TestFilter(t *testing.T) {
	lit := b(ResourceTopic, "orders", PatternLiteral, "User:a", OpRead, PermissionAllow)
	pre := b(ResourceTopic, "ord", PatternPrefixed, "User:a", OpRead, PermissionAllow)
	star := b(ResourceTopic, "*", PatternLiteral, "User:b", OpWrite, PermissionDeny)
	s := func(v string) *string { return &v }
	for _, tc := range []struct {
		f    Filter
		want [3]bool
	}{
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}, [3]bool{true, true, true}},
		{Filter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternMatch, Operation: OpAny, Permission: PermissionAny}, [3]bool{true, true, true}},
		{Filter{ResourceType: ResourceTopic, ResourceName: s("orders"), PatternType: PatternLiteral, Operation: OpAny, Permission: PermissionAny}, [3]bool{true, false, false}},
		{Filter{ResourceType: ResourceTopic, PatternType: PatternPrefixed, Operation: OpAny, Permission: PermissionAny}, [3]bool{false, true, false}},
		{Filter{ResourceType: ResourceAny, PatternType: PatternAny, Principal: s("User:b"), Operation: OpAny, Permission: PermissionDeny}, [3]bool{false, false, true}},
		{Filter{ResourceType: ResourceGroup, PatternType: PatternAny, Operation: OpAny, Permission: PermissionAny}, [3]bool{false, false, false}},
	} {
		for i, bd := range []Binding{lit, pre, star} {
			if got := tc.f.Matches(bd); got != tc.want[i] {
				t.Errorf("filter %+v on %+v: %v, want %v", tc.f, bd, got, tc.want[i])
			}
		}
	}
}

// TestValidate: bindings that cannot be stored are refused.
func TestValidate(t *testing.T) {
	good := b(ResourceTopic, "t", PatternLiteral, "User:a", OpRead, PermissionAllow)
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []Binding{
		b(ResourceAny, "t", PatternLiteral, "User:a", OpRead, PermissionAllow),
		b(ResourceTopic, "t", PatternMatch, "User:a", OpRead, PermissionAllow),
		b(ResourceTopic, "t", PatternLiteral, "alice", OpRead, PermissionAllow),
		b(ResourceTopic, "t", PatternLiteral, "User:a", OpAny, PermissionAllow),
		b(ResourceTopic, "t", PatternLiteral, "User:a", OpRead, PermissionAny),
		b(ResourceGroup, "g", PatternLiteral, "User:a", OpWrite, PermissionAllow),
		b(ResourceCluster, "other", PatternLiteral, "User:a", OpAlter, PermissionAllow),
		b(ResourceTopic, "", PatternLiteral, "User:a", OpRead, PermissionAllow),
	} {
		if err := bad.Validate(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
