package metadata

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// Delegation tokens (KIP-48): a token lets a client authenticate as its
// owner with SCRAM, the token's id as the user name and the token's HMAC
// as the password, without the owner's password. The store keeps each
// token's id, owner, renewers and times; never its HMAC, which every
// broker derives from the id and delegation.token.secret.key (so the
// metadata log and its snapshots hold no secret a token could be rebuilt
// from without that key), as Kafka's KRaft brokers do.
//
// Times are Unix milliseconds chosen by the broker that proposes the
// change (applying is deterministic): a token past its Expiry is no longer
// accepted, and is removed from the store by the next change of tokens.

// Errors of delegation tokens.
var (
	ErrTokenNotFound = errors.New("no such delegation token")
	ErrTokenExists   = errors.New("delegation token id taken")
)

// DelegationToken is one token's metadata.
type DelegationToken struct {
	ID        string   `json:"id"`
	Owner     string   `json:"owner"`     // the principal it authenticates as, "User:alice"
	Requester string   `json:"requester"` // the principal that created it
	Renewers  []string `json:"renewers,omitempty"`
	Issued    int64    `json:"issued"`
	Expiry    int64    `json:"expiry"` // not accepted from then on
	Max       int64    `json:"max"`    // renewals never move Expiry past this
}

// TokenChange is a record's change of tokens (RecTokens): Create adds a
// token (its id must be free), SetExpiry moves an existing token's expiry
// (renew and expire), and Remove drops tokens, gone ones ignored (the
// proposer's sweep of expired tokens, and an expiry to the past).
type TokenChange struct {
	Create    *DelegationToken `json:"create,omitempty"`
	ID        string           `json:"id,omitempty"` // with SetExpiry
	SetExpiry int64            `json:"set_expiry,omitempty"`
	Remove    []string         `json:"remove,omitempty"`
}

func (c TokenChange) validate() error {
	if t := c.Create; t != nil {
		if t.ID == "" || t.Owner == "" || t.Expiry <= 0 || t.Max < t.Expiry || t.Issued > t.Expiry {
			return fmt.Errorf("%w: bad delegation token %+v", ErrCorrupt, *t)
		}
	}
	if c.SetExpiry != 0 && c.ID == "" {
		return fmt.Errorf("%w: a token expiry without a token id", ErrCorrupt)
	}
	return nil
}

// applyTokensLocked applies a RecTokens record to st; mu must be held. The
// removals apply first, then the expiry change, then the creation; an
// error (a taken id, a token gone) leaves st as it was.
func applyTokensLocked(st *state, c TokenChange) (any, error) {
	next := maps.Clone(st.tokens)
	if next == nil {
		next = map[string]DelegationToken{}
	}
	for _, id := range c.Remove {
		delete(next, id)
	}
	if c.SetExpiry != 0 {
		t, ok := next[c.ID]
		if !ok {
			return nil, fmt.Errorf("%w: %s", ErrTokenNotFound, c.ID)
		}
		t.Expiry = min(c.SetExpiry, t.Max)
		next[c.ID] = t
	}
	if t := c.Create; t != nil {
		if _, ok := next[t.ID]; ok {
			return nil, fmt.Errorf("%w: %s", ErrTokenExists, t.ID)
		}
		tc := *t
		tc.Renewers = slices.Clone(t.Renewers)
		next[t.ID] = tc
	}
	st.tokens = next
	return nil, nil
}

// ChangeTokens commits one change of the delegation tokens (RecTokens):
// durable (the local file, or the metadata quorum) before it is visible
// in Security.
func (s *Store) ChangeTokens(c TokenChange) error {
	_, err := s.commit(Record{Type: RecTokens, Tokens: &c})
	return err
}

// Token returns the token of id, expired or not.
func (s *Security) Token(id string) (DelegationToken, bool) {
	t, ok := s.tokens[id]
	return t, ok
}

// Tokens lists every token, expired ones included, by id.
func (s *Security) Tokens() []DelegationToken {
	out := make([]DelegationToken, 0, len(s.tokens))
	for _, id := range slices.Sorted(maps.Keys(s.tokens)) {
		out = append(out, s.tokens[id])
	}
	return out
}

// ExpiredTokens lists the ids of the tokens whose expiry is at or before
// nowMs: what a change of tokens removes on the way.
func (s *Security) ExpiredTokens(nowMs int64) []string {
	var out []string
	for id, t := range s.tokens {
		if t.Expiry <= nowMs {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}
