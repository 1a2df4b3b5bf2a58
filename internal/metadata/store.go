package metadata

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Errors of the topic store.
var (
	ErrTopicExists       = errors.New("topic already exists")
	ErrUnknownTopic      = errors.New("unknown topic")
	ErrInvalidTopic      = errors.New("invalid topic name")
	ErrInvalidPartitions = errors.New("invalid partition count")
	ErrCorrupt           = errors.New("metadata file corrupt")
)

// TopicID is a topic's 16-byte UUID (KIP-516).
type TopicID [16]byte

// String renders the id as Kafka's base64-free hex form.
func (id TopicID) String() string { return hex.EncodeToString(id[:]) }

// MarshalText and UnmarshalText store ids as hex.
func (id TopicID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }
func (id *TopicID) UnmarshalText(b []byte) error {
	n, err := hex.Decode(id[:], b)
	if err != nil || n != 16 {
		return fmt.Errorf("bad topic id %q", b)
	}
	return nil
}

// Topic is one topic's metadata.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions int32             `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Internal   bool              `json:"internal,omitempty"`
	// Replicas are each partition's replicas (node ids), the preferred
	// leader first, in a cluster; nil on a single node, where every
	// partition is this node's.
	Replicas [][]int32 `json:"replicas,omitempty"`
	// Reassigning are the partitions whose replicas are being changed
	// (reassign.go): while one is, its Replicas are the target followed by
	// the original replicas that are not in it, as Kafka shows them.
	Reassigning map[int32]Reassignment `json:"reassigning,omitempty"`
	// Reconfigured are the partitions whose raft membership a reassignment
	// may have changed since creation: a replica of one that starts with
	// an empty log joins its group (the leader sends it the log) instead
	// of bootstrapping with Replicas, which no longer are the voters the
	// log's first entries name.
	Reconfigured []int32 `json:"reconfigured,omitempty"`
}

func (t Topic) clone() Topic {
	c := t
	c.Configs = maps.Clone(t.Configs)
	if c.Configs == nil {
		c.Configs = map[string]string{}
	}
	if t.Replicas != nil {
		c.Replicas = make([][]int32, len(t.Replicas))
		for i, r := range t.Replicas {
			c.Replicas[i] = slices.Clone(r)
		}
	}
	if t.Reassigning != nil {
		c.Reassigning = make(map[int32]Reassignment, len(t.Reassigning))
		for i, r := range t.Reassigning {
			c.Reassigning[i] = r.clone()
		}
	}
	c.Reconfigured = slices.Clone(t.Reconfigured)
	return c
}

// ValidTopicName applies Kafka's rules: 1 to 249 characters of
// [a-zA-Z0-9._-], and not "." or "..".
func ValidTopicName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > 249 {
		return fmt.Errorf("%w: %q", ErrInvalidTopic, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: %q has %q (allowed: letters, digits, '.', '_', '-')", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// Store keeps the cluster's metadata: topics (with their replicas in a
// cluster), tombstones of deleted topics, the producer id counter, the
// dynamic broker configs, the SCRAM credentials (salt, StoredKey,
// ServerKey, iterations per user and mechanism), the ACL bindings and, in
// a cluster, the registered brokers. Security is a lock-free snapshot of
// the credentials and ACLs, published after each change. Every
// change is a Record applied by one function (applyLocked), in one of two
// modes:
//
//   - Local (OpenStore: unit tests, and the file a stopped node's tools
//     write and the next start migrates, see the package doc): a change is
//     applied, then the whole state is rewritten atomically to
//     <dir>/__strom_metadata under package atomicfile's header; if the
//     write fails the change is undone.
//
//     +--------+-------------+-------------+------------+----------------+
//     | "STMD" | version (2) | CRC-32C (4) | length (4) | JSON payload   |
//     +--------+-------------+-------------+------------+----------------+
//
//   - Replicated (NewReplicatedStore, every node a broker runs: a single
//     node is a quorum of one voter): a change is proposed to the metadata
//     quorum (a raft group) and applied on every node when committed,
//     through Apply; the raft log and its snapshots (Snapshot/Restore: the
//     same JSON payload) are what is durable.
//
// A deleted topic leaves a tombstone (its name and id), written in the same
// change that removes the topic: the durable record that its partition
// directories may be removed. Without a tombstone a directory that no topic
// claims is never deleted (package cluster sets it aside).
type Store struct {
	fs    vfs.FS
	path  string // "" when replicated
	found bool   // the file existed when the store was opened

	// proposer commits records in replicated mode (nil: local mode).
	proposer Proposer
	timeout  time.Duration

	mu sync.RWMutex
	st state
	// byID names topics by id for TopicByID and TopicViewByID (every
	// produce and fetch of v13 asks), filled as ids are looked up. It is
	// a hint, checked against st at each use: an entry of a deleted
	// topic is dropped when met, and the map is emptied once it holds
	// more than twice the topics (a churn of deleted topics never met).
	byID struct {
		sync.Mutex
		names map[TopicID]string
	}
	// security is the snapshot of st's credentials and ACLs that request
	// paths read without mu; published under mu after each change.
	security atomic.Pointer[Security]

	obsMu     sync.Mutex
	observers []func(Record)
}

// state is the metadata the records change. Records replace map entries
// (copy on write), never change a *Topic in place, so a shallow copy of
// the maps is a snapshot (local mode undoes a failed write with one).
type state struct {
	topics  map[string]*Topic
	deleted []DeletedTopic
	nextPID int64
	// brokerConfigs are the dynamic broker configs by broker resource
	// name: a node id, or "" for the cluster-wide defaults.
	brokerConfigs map[string]map[string]string
	brokers       map[int32]BrokerInfo
	// scram are the SCRAM credentials, user -> mechanism -> credential;
	// replaced whole by a record, never modified in place (the security
	// snapshot shares them).
	scram map[string]map[string]ScramCredential
	// acls are the ACL bindings; replaced whole, never modified in place.
	acls []acl.Binding
	// tokens are the delegation tokens by id (tokens.go); replaced
	// whole, never modified in place.
	tokens map[string]DelegationToken
	// leaders are the replicated partitions' leaders as their raft
	// groups reported them (leaders.go).
	leaders map[leaderKey]PartitionLeader
}

func (st state) shallowCopy() state {
	c := st
	c.topics = maps.Clone(st.topics)
	c.deleted = slices.Clone(st.deleted)
	c.brokerConfigs = maps.Clone(st.brokerConfigs)
	c.brokers = maps.Clone(st.brokers)
	c.leaders = maps.Clone(st.leaders)
	return c
}

// DeletedTopic is the tombstone of a deleted topic.
type DeletedTopic struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

type storeFile struct {
	Topics         []Topic                      `json:"topics"`
	Deleted        []DeletedTopic               `json:"deleted_topics,omitempty"`
	NextProducerID int64                        `json:"next_producer_id"`
	BrokerConfigs  map[string]map[string]string `json:"broker_configs,omitempty"`
	Brokers        []BrokerInfo                 `json:"brokers,omitempty"`
	// ScramCredentials: user -> mechanism -> credential (absent before
	// issue 21).
	ScramCredentials map[string]map[string]ScramCredential `json:"scram_credentials,omitempty"`
	// ACLs are the ACL bindings (absent before issue 21).
	ACLs    []acl.Binding     `json:"acls,omitempty"`
	Leaders []PartitionLeader `json:"partition_leaders,omitempty"`
	// Tokens are the delegation tokens, by id (absent before them).
	Tokens []DelegationToken `json:"delegation_tokens,omitempty"`
}

// FileName is the metadata file's name in the data directory.
const FileName = "__strom_metadata"

// OpenStore loads (or starts) the metadata file in dir: a local store.
func OpenStore(fsys vfs.FS, dir string) (*Store, error) {
	s := newStore()
	s.fs, s.path = fsys, filepath.Join(dir, FileName)
	b, err := atomicfile.ReadBytes(fsys, s.path, 256<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	s.found = true
	if errors.Is(err, atomicfile.ErrCorrupt) {
		return nil, fmt.Errorf("metadata %s: %w: %v", s.path, ErrCorrupt, err)
	}
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	sf, err := decodeStore(b)
	if err != nil {
		return nil, fmt.Errorf("metadata %s: %w", s.path, err)
	}
	if err := s.load(sf); err != nil {
		return nil, fmt.Errorf("metadata %s: %w", s.path, err)
	}
	return s, nil
}

func newStore() *Store {
	return &Store{st: state{topics: map[string]*Topic{}}, timeout: 30 * time.Second}
}

// load replaces the state by a decoded file or snapshot.
func (s *Store) load(sf storeFile) error {
	st := state{topics: map[string]*Topic{}, deleted: sf.Deleted, nextPID: sf.NextProducerID}
	for i := range sf.Topics {
		t := sf.Topics[i]
		st.topics[t.Name] = &t
	}
	for res, cfg := range sf.BrokerConfigs {
		for k, v := range cfg {
			if err := ValidateDynamicBrokerConfig(k, v); err != nil {
				return fmt.Errorf("%w: broker %q: %v", ErrCorrupt, res, err)
			}
		}
	}
	st.brokerConfigs = sf.BrokerConfigs
	for _, b := range sf.Brokers {
		if st.brokers == nil {
			st.brokers = map[int32]BrokerInfo{}
		}
		st.brokers[b.ID] = b
	}
	for user, m := range sf.ScramCredentials {
		for mech, c := range m {
			if err := checkScramAlteration(ScramAlteration{User: user, Mechanism: mech, Credential: c}); err != nil {
				return fmt.Errorf("%w: scram credential: %v", ErrCorrupt, err)
			}
		}
	}
	st.scram = sf.ScramCredentials
	for _, b := range sf.ACLs {
		if err := b.Validate(); err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
	}
	st.acls = sf.ACLs
	for _, t := range sf.Tokens {
		if err := (TokenChange{Create: &t}).validate(); err != nil {
			return err
		}
		if st.tokens == nil {
			st.tokens = map[string]DelegationToken{}
		}
		st.tokens[t.ID] = t
	}
	for _, l := range sf.Leaders {
		if st.leaders == nil {
			st.leaders = map[leaderKey]PartitionLeader{}
		}
		st.leaders[leaderKey{l.Topic, l.Partition}] = l
	}
	s.mu.Lock()
	s.st = st
	s.publishSecurityLocked()
	s.mu.Unlock()
	return nil
}

// Found reports whether the metadata file existed when the store was
// opened (a new data directory has none); a replicated store reports
// true unless SetFound said otherwise.
func (s *Store) Found() bool { return s.found }

// SetFound sets what Found reports, before the store is used: a metadata
// quorum of one voter whose log started empty, with no metadata file to
// migrate, holds a new data directory's metadata (or the directory lost
// its metadata log), which Found(false) lets package cluster tell apart
// from a directory whose partitions it may sort out.
func (s *Store) SetFound(found bool) { s.found = found }

// ErrStoreExists is returned by CreateStore when the file is there.
var ErrStoreExists = errors.New("metadata file exists")

// CreateStore writes a new metadata file in dir holding topics (ids kept
// as given) and the producer id counter at nextPID, for rebuilding a lost
// file from what the partition directories say. It refuses to replace an
// existing file.
func CreateStore(fsys vfs.FS, dir string, topics []Topic, nextPID int64) (*Store, error) {
	s := newStore()
	s.fs, s.path = fsys, filepath.Join(dir, FileName)
	s.st.nextPID = nextPID
	if _, err := fsys.Stat(s.path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrStoreExists, s.path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range topics {
		if err := ValidTopicName(t.Name); err != nil {
			return nil, err
		}
		if _, dup := s.st.topics[t.Name]; dup || t.Partitions <= 0 {
			return nil, fmt.Errorf("metadata: topic %q given twice or with %d partitions", t.Name, t.Partitions)
		}
		c := t.clone()
		s.st.topics[t.Name] = &c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.persistLocked(); err != nil {
		return nil, err
	}
	s.found = true
	return s, nil
}

// Deleted returns the tombstones of deleted topics whose directories may
// still be on disk.
func (s *Store) Deleted() []DeletedTopic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]DeletedTopic(nil), s.st.deleted...)
}

// ForgetDeleted drops the tombstone of topic id once its directories are
// gone (durably). In local mode only memory changes: the next rewrite of
// the file leaves it out, and a tombstone that outlives its directories is
// harmless. In a cluster tombstones stay (other nodes may still hold the
// directories); snapshots carry them.
func (s *Store) ForgetDeleted(id TopicID) {
	if s.proposer != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.deleted = slices.DeleteFunc(s.st.deleted, func(d DeletedTopic) bool { return d.ID == id })
}

// ForgetAllDeleted drops every tombstone and rewrites the file if there
// were any: at start, once no directory of a deleted topic is left.
func (s *Store) ForgetAllDeleted() error {
	if s.proposer != nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.st.deleted) == 0 {
		return nil
	}
	old := s.st.deleted
	s.st.deleted = nil
	if err := s.persistLocked(); err != nil {
		s.st.deleted = old
		return err
	}
	return nil
}

const (
	storeMagic   = "STMD"
	storeVersion = 1
)

func encodeStore(sf storeFile) []byte {
	payload, _ := json.Marshal(sf)
	return atomicfile.Encode(storeMagic, storeVersion, payload)
}

// decodeStore parses the metadata file (FuzzStoreFile reaches it through
// OpenStore).
func decodeStore(b []byte) (storeFile, error) {
	var sf storeFile
	v, payload, err := atomicfile.Decode(b, storeMagic)
	if err != nil {
		return sf, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if v != storeVersion {
		return sf, fmt.Errorf("%w: unknown version %d", ErrCorrupt, v)
	}
	if err := json.Unmarshal(payload, &sf); err != nil {
		return sf, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return sf, nil
}

// fileLocked is the state as the file and snapshots hold it; mu must be held.
func (s *Store) fileLocked() storeFile {
	sf := storeFile{NextProducerID: s.st.nextPID, Deleted: s.st.deleted, BrokerConfigs: s.st.brokerConfigs,
		ScramCredentials: s.st.scram, ACLs: s.st.acls}
	for _, t := range s.st.topics {
		sf.Topics = append(sf.Topics, *t)
	}
	sort.Slice(sf.Topics, func(i, j int) bool { return sf.Topics[i].Name < sf.Topics[j].Name })
	for _, b := range s.st.brokers {
		sf.Brokers = append(sf.Brokers, b)
	}
	sort.Slice(sf.Brokers, func(i, j int) bool { return sf.Brokers[i].ID < sf.Brokers[j].ID })
	for _, l := range s.st.leaders {
		sf.Leaders = append(sf.Leaders, l)
	}
	sort.Slice(sf.Leaders, func(i, j int) bool {
		a, b := sf.Leaders[i], sf.Leaders[j]
		return a.Topic < b.Topic || (a.Topic == b.Topic && a.Partition < b.Partition)
	})
	for _, id := range slices.Sorted(maps.Keys(s.st.tokens)) {
		sf.Tokens = append(sf.Tokens, s.st.tokens[id])
	}
	return sf
}

// persistLocked writes the file atomically; mu must be held.
func (s *Store) persistLocked() error {
	payload, _ := json.Marshal(s.fileLocked())
	if err := atomicfile.Write(s.fs, s.path, storeMagic, storeVersion, payload); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

// Topics returns copies of all topics sorted by name.
func (s *Store) Topics() []Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Topic, 0, len(s.st.topics))
	for _, t := range s.st.topics {
		out = append(out, t.clone())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// PartitionCount is the number of partitions of all topics (without
// copying them, as Topics does).
func (s *Store) PartitionCount() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var n int64
	for _, t := range s.st.topics {
		n += int64(t.Partitions)
	}
	return n
}

// Topic returns a copy of one topic (copied outside the lock: the view
// is a snapshot).
func (s *Store) Topic(name string) (Topic, bool) {
	t, ok := s.TopicView(name)
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// TopicView is Topic without the copy: the topic as the state holds it,
// whose slices and maps the store never changes (records replace a topic
// whole), so it stays a consistent snapshot; the caller must not change
// them either. For per-request lookups on hot paths (a produce, a fetch),
// where Topic's copy was several allocations a request.
func (s *Store) TopicView(name string) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.st.topics[name]
	if !ok {
		return Topic{}, false
	}
	return *t, true
}

// TopicViewByID is TopicByID without the copy, as TopicView.
func (s *Store) TopicViewByID(id TopicID) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if t := s.topicByIDLocked(id); t != nil {
		return *t, true
	}
	return Topic{}, false
}

// TopicByID finds a topic by id and returns a copy of it.
func (s *Store) TopicByID(id TopicID) (Topic, bool) {
	t, ok := s.TopicViewByID(id)
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// topicByIDLocked finds the topic of id: through s.byID when it names it,
// else by a walk over the topics (then noted in s.byID); nil when none has
// the id. s.mu held, for reading at least.
func (s *Store) topicByIDLocked(id TopicID) *Topic {
	s.byID.Lock()
	defer s.byID.Unlock()
	if name, ok := s.byID.names[id]; ok {
		if t := s.st.topics[name]; t != nil && t.ID == id {
			return t
		}
		delete(s.byID.names, id) // deleted (its name may be taken again)
	}
	for name, t := range s.st.topics {
		if t.ID == id {
			if s.byID.names == nil || len(s.byID.names) > 2*len(s.st.topics) {
				s.byID.names = map[TopicID]string{}
			}
			s.byID.names[id] = name
			return t
		}
	}
	return nil
}

// CreateTopic validates and stores a new topic, giving it a random id.
func (s *Store) CreateTopic(t Topic) (Topic, error) {
	out, err := s.CreateTopics([]Topic{t})
	if err != nil {
		return Topic{}, err
	}
	return out[0], nil
}

// CreateTopics validates and stores new topics, giving each without an id
// a random one, in one change: all of them are stored or, on any error,
// none. A name given twice is ErrTopicExists.
func (s *Store) CreateTopics(ts []Topic) ([]Topic, error) {
	rec := Record{Type: RecCreateTopics, Topics: make([]Topic, len(ts))}
	for i, t := range ts {
		t = t.clone()
		if t.ID == (TopicID{}) {
			if _, err := rand.Read(t.ID[:]); err != nil {
				return nil, err
			}
		}
		rec.Topics[i] = t
	}
	if err := rec.validate(); err != nil {
		return nil, err
	}
	if _, err := s.commit(rec); err != nil {
		return nil, err
	}
	out := make([]Topic, len(rec.Topics))
	for i, t := range rec.Topics {
		out[i] = t.clone()
	}
	return out, nil
}

// DeleteTopic removes a topic and leaves its tombstone.
func (s *Store) DeleteTopic(name string) error {
	_, err := s.commit(Record{Type: RecDeleteTopic, Name: name})
	return err
}

// SetPartitions grows a topic to n partitions; in a cluster, replicas are
// the new partitions' replicas.
func (s *Store) SetPartitions(name string, n int32, replicas ...[]int32) error {
	_, err := s.commit(Record{Type: RecSetPartitions, Name: name, Partitions: n, Replicas: replicas})
	return err
}

// SetConfigs replaces a topic's config overrides (validated).
func (s *Store) SetConfigs(name string, cfg map[string]string) error {
	rec := Record{Type: RecSetTopicConfigs, Name: name, Configs: cfg}
	if err := rec.validate(); err != nil {
		return err
	}
	_, err := s.commit(rec)
	return err
}

// AllocateProducerIDs reserves n consecutive producer ids and returns the
// first. The counter is durable (file rewritten, or committed by the
// quorum) before the ids are handed out, so an id is never given twice,
// across restarts and nodes too.
func (s *Store) AllocateProducerIDs(n int64) (int64, error) {
	v, err := s.commit(Record{Type: RecAllocateProducerIDs, Count: n})
	if err != nil {
		return 0, err
	}
	return v.(int64), nil
}

// BrokerConfigs returns a copy of the dynamic broker configs set on a
// broker resource: a node id, or "" for the cluster-wide defaults.
func (s *Store) BrokerConfigs(resource string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.st.brokerConfigs[resource])
}

// SetBrokerConfigs replaces the dynamic broker configs of a broker resource
// (validated: only dynamic broker configs).
func (s *Store) SetBrokerConfigs(resource string, cfg map[string]string) error {
	rec := Record{Type: RecSetBrokerConfigs, Resource: resource, Configs: cfg}
	if err := rec.validate(); err != nil {
		return err
	}
	_, err := s.commit(rec)
	return err
}
