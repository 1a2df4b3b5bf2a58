package metadata

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/stromhq/strom/internal/acl"
)

// Errors of security metadata.
var (
	ErrUnknownScramUser     = errors.New("no such SCRAM credential")
	ErrUnacceptableCred     = errors.New("unacceptable SCRAM credential")
	ErrUnsupportedMechanism = errors.New("unsupported SCRAM mechanism")
)

// SCRAM mechanisms whose credentials the store keeps, and Kafka's bounds on
// their iteration counts (KIP-554).
const (
	ScramSHA256        = "SCRAM-SHA-256"
	ScramSHA512        = "SCRAM-SHA-512"
	MinScramIterations = 4096
	MaxScramIterations = 16384
)

// ScramCredential is one user's credential for one mechanism: salt,
// iteration count and the keys derived from the salted password (RFC
// 5802). The password is never stored.
type ScramCredential struct {
	Salt       []byte `json:"salt"`
	StoredKey  []byte `json:"stored_key"`
	ServerKey  []byte `json:"server_key"`
	Iterations int    `json:"iterations"`
}

// ScramAlteration is one change of AlterScram: an upsert of Credential, or
// a deletion.
type ScramAlteration struct {
	User       string          `json:"user"`
	Mechanism  string          `json:"mechanism"`
	Delete     bool            `json:"delete,omitempty"`
	Credential ScramCredential `json:"credential,omitzero"`
}

// Security is an immutable snapshot of the security metadata (SCRAM
// credentials): request paths read it without a lock; every change stores a
// new one (Store.Security).
type Security struct {
	scram map[string]map[string]ScramCredential // user -> mechanism -> credential
	acls  []acl.Binding                         // never modified: changes build a new slice
	// tokens are the delegation tokens by id; never modified.
	tokens map[string]DelegationToken
}

// ACLs returns the ACL bindings. The slice is shared: callers must not
// modify it.
func (s *Security) ACLs() []acl.Binding { return s.acls }

// ScramCredential returns user's credential for mechanism.
func (s *Security) ScramCredential(user, mechanism string) (ScramCredential, bool) {
	c, ok := s.scram[user][mechanism]
	return c, ok
}

// ScramUsers lists the users with a SCRAM credential, sorted.
func (s *Security) ScramUsers() []string {
	return slices.Sorted(maps.Keys(s.scram))
}

// ScramMechanisms lists user's mechanisms with their iteration counts.
func (s *Security) ScramMechanisms(user string) map[string]int {
	out := map[string]int{}
	for m, c := range s.scram[user] {
		out[m] = c.Iterations
	}
	return out
}

// validScramMechanism reports whether the store keeps credentials for m.
func validScramMechanism(m string) bool { return m == ScramSHA256 || m == ScramSHA512 }

func checkScramAlteration(a ScramAlteration) error {
	if a.User == "" {
		return fmt.Errorf("%w: empty user name", ErrUnacceptableCred)
	}
	if !validScramMechanism(a.Mechanism) {
		return fmt.Errorf("%w: %q", ErrUnsupportedMechanism, a.Mechanism)
	}
	if a.Delete {
		return nil
	}
	c := a.Credential
	if c.Iterations < MinScramIterations || c.Iterations > MaxScramIterations {
		return fmt.Errorf("%w: %d iterations: want %d to %d", ErrUnacceptableCred, c.Iterations, MinScramIterations, MaxScramIterations)
	}
	if len(c.Salt) == 0 || len(c.StoredKey) == 0 || len(c.ServerKey) == 0 {
		return fmt.Errorf("%w: empty salt or key", ErrUnacceptableCred)
	}
	return nil
}

// Security returns the current security snapshot (never nil). It takes no
// lock.
func (s *Store) Security() *Security {
	if p := s.security.Load(); p != nil {
		return p
	}
	return &Security{}
}

// AlterScram validates, persists and applies SCRAM credential changes, as
// AlterUserScramCredentials asks, as one record (RecAlterScram). A user's
// changes are applied together or not at all: errs[i] says why alts[i] was
// refused (ErrUnacceptableCred, ErrUnsupportedMechanism,
// ErrUnknownScramUser for a deletion of nothing) and then every other
// change of that user is refused too, with the same error. The accepted
// changes are durable (the local file, or the metadata quorum) before they
// are visible. A failed commit refuses them all with err.
func (s *Store) AlterScram(alts []ScramAlteration) (errs []error, err error) {
	v, err := s.commit(Record{Type: RecAlterScram, Scram: alts})
	if err != nil {
		return nil, err
	}
	return v.([]error), nil
}

// applyScramLocked applies a RecAlterScram record to st; mu must be held.
// It returns the per-alteration errors (see AlterScram).
func applyScramLocked(st *state, alts []ScramAlteration) []error {
	errs := make([]error, len(alts))
	failed := map[string]error{}
	for i, a := range alts {
		errs[i] = checkScramAlteration(a)
		if errs[i] == nil && a.Delete {
			if _, ok := st.scram[a.User][a.Mechanism]; !ok {
				errs[i] = fmt.Errorf("%w: %s %s", ErrUnknownScramUser, a.User, a.Mechanism)
			}
		}
		if errs[i] != nil && failed[a.User] == nil {
			failed[a.User] = errs[i]
		}
	}
	next := make(map[string]map[string]ScramCredential, len(st.scram))
	for u, m := range st.scram {
		next[u] = maps.Clone(m)
	}
	for i, a := range alts {
		if f := failed[a.User]; f != nil {
			errs[i] = f
			continue
		}
		if a.Delete {
			delete(next[a.User], a.Mechanism)
			if len(next[a.User]) == 0 {
				delete(next, a.User)
			}
			continue
		}
		if next[a.User] == nil {
			next[a.User] = map[string]ScramCredential{}
		}
		next[a.User][a.Mechanism] = a.Credential
	}
	st.scram = next
	return errs
}

// publishSecurityLocked stores a new snapshot of the security metadata; mu
// must be held (for writing). The maps given to the snapshot are never
// modified after: records build new ones.
func (s *Store) publishSecurityLocked() {
	s.security.Store(&Security{scram: s.st.scram, acls: s.st.acls, tokens: s.st.tokens})
}

// CreateACLs validates, persists and applies new ACL bindings (CreateAcls)
// as one record (RecCreateACLs): errs[i] is acl.ErrInvalid (wrapped) for a
// binding that cannot be stored; a binding already stored is accepted and
// kept once. A failed commit refuses all with err.
func (s *Store) CreateACLs(bs []acl.Binding) (errs []error, err error) {
	v, err := s.commit(Record{Type: RecCreateACLs, ACLs: bs})
	if err != nil {
		return nil, err
	}
	return v.([]error), nil
}

func applyCreateACLsLocked(st *state, bs []acl.Binding) []error {
	errs := make([]error, len(bs))
	next := slices.Clone(st.acls)
	for i, b := range bs {
		if errs[i] = b.Validate(); errs[i] != nil {
			continue
		}
		if !slices.Contains(next, b) {
			next = append(next, b)
		}
	}
	st.acls = next
	return errs
}

// DeleteACLs removes the bindings each filter selects (DeleteAcls) as one
// record (RecDeleteACLs) and returns them per filter (a binding two filters
// select is listed for both).
func (s *Store) DeleteACLs(fs []acl.Filter) (deleted [][]acl.Binding, err error) {
	v, err := s.commit(Record{Type: RecDeleteACLs, Filters: fs})
	if err != nil {
		return make([][]acl.Binding, len(fs)), err
	}
	return v.([][]acl.Binding), nil
}

func applyDeleteACLsLocked(st *state, fs []acl.Filter) [][]acl.Binding {
	deleted := make([][]acl.Binding, len(fs))
	var next []acl.Binding
	for _, b := range st.acls {
		hit := false
		for i, f := range fs {
			if f.Matches(b) {
				deleted[i] = append(deleted[i], b)
				hit = true
			}
		}
		if !hit {
			next = append(next, b)
		}
	}
	st.acls = next
	return deleted
}
