package metadata

import (
	"errors"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// TestDelegationTokenRecords: tokens are created, renewed (never past
// their max) and removed through records; a taken id and the renewal of a
// gone token are refused and change nothing; the tokens survive a local
// store's reopen, a snapshot's restore, and the import of a single node
// into a cluster.
func TestDelegationTokenRecords(t *testing.T) {
	dir := t.TempDir()
	s, err := OpenStore(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	tok := DelegationToken{ID: "t1", Owner: "User:alice", Requester: "User:alice", Renewers: []string{"User:bob"}, Issued: 1000, Expiry: 5000, Max: 9000}
	if err := s.ChangeTokens(TokenChange{Create: &tok}); err != nil {
		t.Fatal(err)
	}
	if err := s.ChangeTokens(TokenChange{Create: &tok}); !errors.Is(err, ErrTokenExists) {
		t.Fatalf("the same id again: %v", err)
	}
	if err := s.ChangeTokens(TokenChange{ID: "t1", SetExpiry: 20000}); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Security().Token("t1"); got.Expiry != 9000 {
		t.Fatalf("renewed past max: expiry %d", got.Expiry)
	}
	if err := s.ChangeTokens(TokenChange{ID: "nope", SetExpiry: 20000}); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("renew a gone token: %v", err)
	}
	two := DelegationToken{ID: "t2", Owner: "User:carol", Requester: "User:admin", Issued: 1000, Expiry: 2000, Max: 3000}
	if err := s.ChangeTokens(TokenChange{Create: &two}); err != nil {
		t.Fatal(err)
	}
	if exp := s.Security().ExpiredTokens(2000); len(exp) != 1 || exp[0] != "t2" {
		t.Fatalf("expired at 2000: %v", exp)
	}
	reopened, err := OpenStore(vfs.Default, dir)
	if err != nil {
		t.Fatal(err)
	}
	if ts := reopened.Security().Tokens(); len(ts) != 2 || ts[0].Renewers[0] != "User:bob" || ts[0].Expiry != 9000 {
		t.Fatalf("after a reopen: %+v", ts)
	}
	lb := &loopback{}
	rs := NewReplicatedStore(lb, 0)
	lb.s = rs
	for _, r := range s.Import(1) {
		if err := rs.Commit(r); err != nil {
			t.Fatal(err)
		}
	}
	if ts := rs.Security().Tokens(); len(ts) != 2 {
		t.Fatalf("imported into a cluster: %+v", ts)
	}
	if err := rs.ChangeTokens(TokenChange{Remove: []string{"t2", "gone"}}); err != nil {
		t.Fatal(err)
	}
	snap, err := rs.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	other := NewReplicatedStore(lb, 0)
	if err := other.Restore(1, snap); err != nil {
		t.Fatal(err)
	}
	if ts := other.Security().Tokens(); len(ts) != 1 || ts[0].ID != "t1" || ts[0].Owner != "User:alice" {
		t.Fatalf("restored: %+v", ts)
	}
}
