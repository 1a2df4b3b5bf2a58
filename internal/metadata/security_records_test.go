package metadata

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// loopback commits a record by applying it at once: a quorum of one
// node, in memory.
type loopback struct{ s *Store }

func (l *loopback) Propose(_ context.Context, payload []byte) (any, error) {
	return l.s.Apply(1, payload), nil
}

// TestSecurityRecordsReplicate: SCRAM credentials and ACLs change through
// records in a replicated store (as the metadata quorum applies them),
// survive a snapshot and a restore, and a single node's store exports them
// when it migrates into a cluster (Import).
func TestSecurityRecordsReplicate(t *testing.T) {
	lb := &loopback{}
	rs := NewReplicatedStore(lb, 0)
	lb.s = rs
	errs, err := rs.AlterScram([]ScramAlteration{{User: "alice", Mechanism: ScramSHA256, Credential: cred(4096)}, {User: "bob", Mechanism: ScramSHA256, Credential: cred(10)}})
	if err != nil || errs[0] != nil || errs[1] == nil {
		t.Fatalf("alter: %v %v", errs, err)
	}
	bind := acl.Binding{ResourceType: acl.ResourceTopic, ResourceName: "t", PatternType: acl.PatternLiteral, Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermissionAllow}
	if errs, err := rs.CreateACLs([]acl.Binding{bind}); err != nil || errs[0] != nil {
		t.Fatalf("create acls: %v %v", errs, err)
	}
	if u := rs.Security().ScramUsers(); len(u) != 1 || u[0] != "alice" || len(rs.Security().ACLs()) != 1 {
		t.Fatalf("after the records: users %v, acls %v", u, rs.Security().ACLs())
	}
	snap, err := rs.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := NewReplicatedStore(lb, 0)
	if err := other.Restore(1, snap); err != nil {
		t.Fatal(err)
	}
	if _, ok := other.Security().ScramCredential("alice", ScramSHA256); !ok || len(other.Security().ACLs()) != 1 {
		t.Fatal("a restored snapshot lost the credentials or ACLs")
	}
	name := "t"
	deleted, err := rs.DeleteACLs([]acl.Filter{{ResourceType: acl.ResourceAny, ResourceName: &name, PatternType: acl.PatternAny, Operation: acl.OpAny, Permission: acl.PermissionAny}})
	if err != nil || len(deleted[0]) != 1 || len(rs.Security().ACLs()) != 0 {
		t.Fatalf("delete acls: %v %v", deleted, err)
	}
}

// TestImportCarriesSecurity: a single node's credentials and ACLs are
// among the records that migrate it into a cluster.
func TestImportCarriesSecurity(t *testing.T) {
	s, err := OpenStore(vfs.Default, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AlterScram([]ScramAlteration{{User: "alice", Mechanism: ScramSHA512, Credential: cred(8192)}}); err != nil {
		t.Fatal(err)
	}
	bind := acl.Binding{ResourceType: acl.ResourceGroup, ResourceName: "g", PatternType: acl.PatternPrefixed, Principal: "User:alice", Host: "*", Operation: acl.OpRead, Permission: acl.PermissionAllow}
	if _, err := s.CreateACLs([]acl.Binding{bind}); err != nil {
		t.Fatal(err)
	}
	var types []RecordType
	for _, r := range s.Import(1) {
		types = append(types, r.Type)
		b, _ := json.Marshal(r)
		var back Record
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
	}
	var scram, acls bool
	for _, ty := range types {
		scram = scram || ty == RecAlterScram
		acls = acls || ty == RecCreateACLs
	}
	if !scram || !acls {
		t.Fatalf("import records %v lack the credentials or ACLs", types)
	}
}
