package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/stromhq/strom/internal/acl"
)

// RecordType names a kind of metadata change.
type RecordType string

// The metadata records. Each is applied by applyLocked; a record's fields
// beyond Type are those its kind uses.
const (
	RecCreateTopics        RecordType = "create_topics"         // Topics (with ids, and replicas in a cluster)
	RecDeleteTopic         RecordType = "delete_topic"          // Name
	RecSetPartitions       RecordType = "set_partitions"        // Name, Partitions, Replicas of the new ones
	RecSetTopicConfigs     RecordType = "set_topic_configs"     // Name, Configs
	RecAllocateProducerIDs RecordType = "allocate_producer_ids" // Count; result: the first id
	RecSetBrokerConfigs    RecordType = "set_broker_configs"    // Resource, Configs
	RecRegisterBroker      RecordType = "register_broker"       // Broker
	RecFenceBroker         RecordType = "fence_broker"          // Broker.ID, Fenced
	RecAlterScram          RecordType = "alter_scram"           // Scram; result: []error, one per alteration
	RecCreateACLs          RecordType = "create_acls"           // ACLs; result: []error, one per binding
	RecDeleteACLs          RecordType = "delete_acls"           // Filters; result: [][]acl.Binding deleted per filter
	RecPartitionLeader     RecordType = "partition_leader"      // Leader (leaders.go)
	RecReassign            RecordType = "reassign_partition"    // Reassign (reassign.go)
	RecReassignDone        RecordType = "reassign_done"         // Reassign: the target the raft group reached
	RecElectPreferred      RecordType = "elect_preferred"       // Elect: a request to the partition's leader
	RecTokens              RecordType = "delegation_tokens"     // Tokens (tokens.go)
	RecBarrier             RecordType = "barrier"               // nothing: see Store.Barrier
)

// Record is one change of the metadata: the unit the metadata log carries
// (JSON, one per raft entry) and the only way the state changes. Applying
// a record is deterministic: everything random (topic ids) or read from
// the world (broker addresses, placement) is chosen before it is proposed.
type Record struct {
	Type       RecordType        `json:"type"`
	Topics     []Topic           `json:"topics,omitempty"`
	Name       string            `json:"name,omitempty"`
	Partitions int32             `json:"partitions,omitempty"`
	Replicas   [][]int32         `json:"replicas,omitempty"`
	Configs    map[string]string `json:"configs,omitempty"`
	Resource   string            `json:"resource,omitempty"`
	Count      int64             `json:"count,omitempty"`
	Broker     *BrokerInfo       `json:"broker,omitempty"`
	Fenced     bool              `json:"fenced,omitempty"`
	Scram      []ScramAlteration `json:"scram,omitempty"`
	ACLs       []acl.Binding     `json:"acls,omitempty"`
	Filters    []acl.Filter      `json:"filters,omitempty"`
	Leader     *PartitionLeader  `json:"leader,omitempty"`
	Reassign   *ReassignChange   `json:"reassign,omitempty"`
	Elect      *ElectPreferred   `json:"elect,omitempty"`
	Tokens     *TokenChange      `json:"tokens,omitempty"`
}

// Proposer commits a record's bytes through the metadata quorum and returns
// the value Apply gave for it on this node (a raftgroup.Group).
type Proposer interface {
	Propose(ctx context.Context, payload []byte) (any, error)
}

// applied is what Apply returns for a record: its value or its error.
type applied struct {
	v   any
	err error
}

// validate checks what can be checked without the state (names, counts,
// config values), so that a proposal that can never apply is refused
// before it reaches the log.
func (r Record) validate() error {
	switch r.Type {
	case RecCreateTopics:
		for _, t := range r.Topics {
			if err := ValidTopicName(t.Name); err != nil {
				return err
			}
			if t.Partitions <= 0 {
				return fmt.Errorf("%w: %d", ErrInvalidPartitions, t.Partitions)
			}
			if t.Replicas != nil && int32(len(t.Replicas)) != t.Partitions {
				return fmt.Errorf("%w: topic %q: %d partitions, %d replica lists", ErrInvalidPartitions, t.Name, t.Partitions, len(t.Replicas))
			}
			for k, v := range t.Configs {
				if err := ValidateTopicConfig(k, v); err != nil {
					return err
				}
			}
		}
	case RecSetTopicConfigs:
		for k, v := range r.Configs {
			if err := ValidateTopicConfig(k, v); err != nil {
				return err
			}
		}
	case RecSetBrokerConfigs:
		for k, v := range r.Configs {
			if err := ValidateDynamicBrokerConfig(k, v); err != nil {
				return err
			}
		}
	case RecPartitionLeader:
		if r.Leader == nil {
			return fmt.Errorf("metadata: %s record without a leader", r.Type)
		}
	case RecReassign, RecReassignDone:
		if r.Reassign == nil {
			return fmt.Errorf("metadata: %s record without a partition", r.Type)
		}
	case RecElectPreferred:
		if r.Elect == nil {
			return fmt.Errorf("metadata: %s record without a partition", r.Type)
		}
	case RecTokens:
		if r.Tokens == nil {
			return fmt.Errorf("%w: %s record without a change", ErrCorrupt, r.Type)
		}
		return r.Tokens.validate()
	case RecDeleteTopic, RecSetPartitions, RecAllocateProducerIDs, RecFenceBroker,
		RecAlterScram, RecCreateACLs, RecDeleteACLs: // checked item by item when applied
	case RecBarrier:
	case RecRegisterBroker:
		if r.Broker == nil {
			return fmt.Errorf("%w: register_broker without a broker", ErrCorrupt)
		}
	default:
		return fmt.Errorf("%w: unknown metadata record %q", ErrCorrupt, r.Type)
	}
	return nil
}

// applyLocked applies one record to the state; mu must be held. It checks
// what depends on the state (a topic that exists, a count that shrinks)
// and leaves the state as it was when it returns an error.
func (s *Store) applyLocked(r Record) (any, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	st := &s.st
	switch r.Type {
	case RecCreateTopics:
		for i, t := range r.Topics {
			if _, ok := st.topics[t.Name]; ok || slices.ContainsFunc(r.Topics[:i], func(x Topic) bool { return x.Name == t.Name }) {
				return nil, fmt.Errorf("%w: %q", ErrTopicExists, t.Name)
			}
		}
		for _, t := range r.Topics {
			c := t.clone()
			st.topics[t.Name] = &c
		}
	case RecDeleteTopic:
		t, ok := st.topics[r.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Name)
		}
		delete(st.topics, r.Name)
		st.deleted = append(st.deleted, DeletedTopic{Name: r.Name, ID: t.ID})
		st.dropLeaders(r.Name)
	case RecSetPartitions:
		t, ok := st.topics[r.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Name)
		}
		if r.Partitions <= t.Partitions {
			return nil, fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", ErrInvalidPartitions, r.Name, t.Partitions)
		}
		if t.Replicas != nil && int32(len(r.Replicas)) != r.Partitions-t.Partitions {
			return nil, fmt.Errorf("%w: topic %q: %d new partitions, %d replica lists", ErrInvalidPartitions, r.Name, r.Partitions-t.Partitions, len(r.Replicas))
		}
		c := t.clone()
		c.Partitions = r.Partitions
		if c.Replicas != nil {
			c.Replicas = append(c.Replicas, r.Replicas...)
		}
		st.topics[r.Name] = &c
	case RecSetTopicConfigs:
		t, ok := st.topics[r.Name]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownTopic, r.Name)
		}
		c := t.clone()
		c.Configs = maps.Clone(r.Configs)
		st.topics[r.Name] = &c
	case RecAllocateProducerIDs:
		if r.Count <= 0 {
			return nil, fmt.Errorf("metadata: allocate %d producer ids", r.Count)
		}
		first := st.nextPID
		st.nextPID += r.Count
		return first, nil
	case RecSetBrokerConfigs:
		cfgs := maps.Clone(st.brokerConfigs)
		if cfgs == nil {
			cfgs = map[string]map[string]string{}
		}
		if len(r.Configs) == 0 {
			delete(cfgs, r.Resource)
		} else {
			cfgs[r.Resource] = maps.Clone(r.Configs)
		}
		st.brokerConfigs = cfgs
	case RecRegisterBroker:
		b := *r.Broker
		if old, ok := st.brokers[b.ID]; ok && old.Incarnation == b.Incarnation && old.Host == b.Host && old.Port == b.Port && old.Rack == b.Rack && !old.Fenced {
			return nil, nil // a retried registration
		}
		b.Fenced = false
		bs := maps.Clone(st.brokers)
		if bs == nil {
			bs = map[int32]BrokerInfo{}
		}
		bs[b.ID] = b
		st.brokers = bs
	case RecAlterScram:
		return applyScramLocked(st, r.Scram), nil
	case RecCreateACLs:
		return applyCreateACLsLocked(st, r.ACLs), nil
	case RecDeleteACLs:
		return applyDeleteACLsLocked(st, r.Filters), nil
	case RecFenceBroker:
		b, ok := st.brokers[r.Broker.ID]
		if !ok {
			return nil, fmt.Errorf("%w: broker %d is not registered", ErrUnknownBroker, r.Broker.ID)
		}
		if b.Fenced == r.Fenced {
			return nil, nil
		}
		b.Fenced = r.Fenced
		bs := maps.Clone(st.brokers)
		bs[b.ID] = b
		st.brokers = bs
	case RecPartitionLeader:
		return nil, st.applyLeader(*r.Leader)
	case RecReassign:
		return nil, st.applyReassign(*r.Reassign)
	case RecReassignDone:
		return nil, st.applyReassignDone(*r.Reassign)
	case RecElectPreferred:
		return nil, st.checkElect(*r.Elect)
	case RecTokens:
		return applyTokensLocked(st, *r.Tokens)
	}
	return nil, nil
}

// commit makes a record durable and applied, in the store's mode, and
// returns its value.
func (s *Store) commit(r Record) (any, error) { return s.commitWithin(r, s.timeout) }

// commitWithin is commit with its own bound on a replicated store's wait.
func (s *Store) commitWithin(r Record, timeout time.Duration) (any, error) {
	if s.proposer != nil {
		payload, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		v, err := s.proposer.Propose(ctx, payload)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNoQuorum, err)
		}
		a, ok := v.(applied)
		if !ok {
			return nil, fmt.Errorf("metadata: the quorum answered %T", v)
		}
		return a.v, a.err
	}
	s.mu.Lock()
	before := s.st.shallowCopy()
	v, err := s.applyLocked(r)
	if err == nil {
		if err = s.persistLocked(); err != nil {
			s.st = before
		} else {
			s.publishSecurityLocked()
		}
	}
	s.mu.Unlock()
	if err != nil {
		return nil, err
	}
	s.notify(r)
	return v, nil
}

// Barrier commits a record that changes nothing (ctx bounds the wait). When it
// returns nil, this node has applied every record the quorum committed
// before Barrier was called: what the store shows is at least as recent
// as the quorum was then. A node's own view can lag after a restart: its
// commit index on disk may be behind its log (raftgroup writes it lazily),
// so records it stored but did not know committed are applied only once
// the leader tells it again. Decisions that rest on the absence of a record
// (a directory no topic claims) wait for a barrier. Local mode: nil at
// once (the file is the whole truth). A node of an older version applies
// the record as an unknown one, with an error value and no change.
func (s *Store) Barrier(ctx context.Context) error {
	if s.proposer == nil {
		return nil
	}
	payload, err := json.Marshal(Record{Type: RecBarrier})
	if err != nil {
		return err
	}
	if _, err := s.proposer.Propose(ctx, payload); err != nil {
		return fmt.Errorf("%w: %v", ErrNoQuorum, err)
	}
	return nil
}

// ErrNoQuorum is returned by changes in a cluster when the metadata quorum
// did not commit them in time (no leader, a partitioned minority, a
// proposal lost in a leader change). The change may still be applied.
var ErrNoQuorum = errors.New("metadata quorum unavailable")

// NewReplicatedStore returns an empty store whose changes go through p;
// the quorum fills it through Restore and Apply. timeout bounds each
// change (0: 30 s).
func NewReplicatedStore(p Proposer, timeout time.Duration) *Store {
	s := newStore()
	s.proposer = p
	if timeout > 0 {
		s.timeout = timeout
	}
	s.found = true
	return s
}

// Apply applies one committed record (the state machine of the metadata
// quorum). Its value is an applied result for the proposer; a record that
// does not decode is skipped with an error value (every node skips it the
// same way).
func (s *Store) Apply(index uint64, payload []byte) any {
	var r Record
	if err := json.Unmarshal(payload, &r); err != nil {
		return applied{err: fmt.Errorf("%w: record at index %d: %v", ErrCorrupt, index, err)}
	}
	s.mu.Lock()
	v, err := s.applyLocked(r)
	if err == nil {
		s.publishSecurityLocked()
	}
	s.mu.Unlock()
	if err == nil {
		s.notify(r)
	}
	return applied{v: v, err: err}
}

// Snapshot returns the state in the metadata file's JSON form.
func (s *Store) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return json.Marshal(s.fileLocked())
}

// Restore replaces the state by a snapshot's.
func (s *Store) Restore(_ uint64, data []byte) error {
	var sf storeFile
	if len(data) > 0 {
		if err := json.Unmarshal(data, &sf); err != nil {
			return fmt.Errorf("%w: snapshot: %v", ErrCorrupt, err)
		}
	}
	if err := s.load(sf); err != nil {
		return err
	}
	s.notify(Record{})
	return nil
}

// Commit makes one record durable and applied (Import's records).
func (s *Store) Commit(r Record) error {
	if err := r.validate(); err != nil {
		return err
	}
	_, err := s.commit(r)
	return err
}

// Import returns the records that rebuild a local store's state in a new
// metadata log: the migration of a single node's __strom_metadata into a
// cluster's quorum at its first start, every partition placed on node
// (where its data is). One record per topic, so that a topic the quorum
// has already (a retried migration) does not stop the others.
func (s *Store) Import(node int32) []Record {
	sf := func() storeFile { s.mu.RLock(); defer s.mu.RUnlock(); return s.fileLocked() }()
	var out []Record
	for _, t := range sf.Topics {
		t = t.clone()
		if t.Replicas == nil {
			t.Replicas = make([][]int32, t.Partitions)
			for i := range t.Replicas {
				t.Replicas[i] = []int32{node}
			}
		}
		out = append(out, Record{Type: RecCreateTopics, Topics: []Topic{t}})
	}
	if sf.NextProducerID > 0 {
		out = append(out, Record{Type: RecAllocateProducerIDs, Count: sf.NextProducerID})
	}
	for res, cfg := range sf.BrokerConfigs {
		out = append(out, Record{Type: RecSetBrokerConfigs, Resource: res, Configs: cfg})
	}
	var scram []ScramAlteration
	for user, m := range sf.ScramCredentials {
		for mech, c := range m {
			scram = append(scram, ScramAlteration{User: user, Mechanism: mech, Credential: c})
		}
	}
	if len(scram) > 0 {
		out = append(out, Record{Type: RecAlterScram, Scram: scram})
	}
	if len(sf.ACLs) > 0 {
		out = append(out, Record{Type: RecCreateACLs, ACLs: sf.ACLs})
	}
	for _, t := range sf.Tokens {
		out = append(out, Record{Type: RecTokens, Tokens: &TokenChange{Create: &t}})
	}
	return out
}

// OnChange registers fn to run after every applied change (and after a
// Restore, with an empty Record), outside the store's lock, on the
// goroutine that applied it: fn must not block (a cluster node applies on
// the quorum's goroutine).
func (s *Store) OnChange(fn func(Record)) {
	s.obsMu.Lock()
	s.observers = append(s.observers, fn)
	s.obsMu.Unlock()
}

func (s *Store) notify(r Record) {
	s.obsMu.Lock()
	obs := slices.Clone(s.observers)
	s.obsMu.Unlock()
	for _, fn := range obs {
		fn(r)
	}
}

// NextProducerID is the first producer id not yet allocated (the
// migration of a metadata file raises it to the file's, no further).
func (s *Store) NextProducerID() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.st.nextPID
}
