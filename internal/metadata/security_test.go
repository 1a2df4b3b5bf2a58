package metadata

import (
	"errors"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
)

func cred(iters int) ScramCredential {
	return ScramCredential{Salt: []byte("salt"), StoredKey: []byte("sk"), ServerKey: []byte("svk"), Iterations: iters}
}

// TestAlterScram: credentials are validated, a user's changes apply
// together or not at all, they survive a reopen, and the snapshot read
// before a change does not change.
func TestAlterScram(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	before := s.Security()
	errs, err := s.AlterScram([]ScramAlteration{
		{User: "alice", Mechanism: ScramSHA256, Credential: cred(4096)},
		{User: "alice", Mechanism: ScramSHA512, Credential: cred(16384)},
		{User: "bob", Mechanism: ScramSHA256, Credential: cred(4096)},
		{User: "bob", Mechanism: ScramSHA512, Credential: cred(100)},      // too few: bob gets nothing
		{User: "carol", Mechanism: "SCRAM-SHA-1", Credential: cred(4096)}, // unsupported
		{User: "dave", Mechanism: ScramSHA256, Delete: true},              // nothing to delete
		{User: "", Mechanism: ScramSHA256, Credential: cred(4096)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []error{nil, nil, ErrUnacceptableCred, ErrUnacceptableCred, ErrUnsupportedMechanism, ErrUnknownScramUser, ErrUnacceptableCred}
	for i := range want {
		if !errors.Is(errs[i], want[i]) || (want[i] == nil) != (errs[i] == nil) {
			t.Errorf("alteration %d: %v, want %v", i, errs[i], want[i])
		}
	}
	if len(before.ScramUsers()) != 0 {
		t.Fatal("an earlier snapshot changed")
	}
	s2, err := OpenStore(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	sec := s2.Security()
	if users := sec.ScramUsers(); len(users) != 1 || users[0] != "alice" {
		t.Fatalf("users after reopen %v, want [alice]", users)
	}
	if m := sec.ScramMechanisms("alice"); m[ScramSHA256] != 4096 || m[ScramSHA512] != 16384 {
		t.Fatalf("alice's mechanisms %v", m)
	}
	if _, err := s2.AlterScram([]ScramAlteration{{User: "alice", Mechanism: ScramSHA256, Delete: true}, {User: "alice", Mechanism: ScramSHA512, Delete: true}}); err != nil {
		t.Fatal(err)
	}
	if users := s2.Security().ScramUsers(); len(users) != 0 {
		t.Fatalf("users after deleting all %v", users)
	}
}
