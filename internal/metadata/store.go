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
}

func (t Topic) clone() Topic {
	c := t
	c.Configs = make(map[string]string, len(t.Configs))
	for k, v := range t.Configs {
		c.Configs[k] = v
	}
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

// Store keeps topics, the producer id counter, the dynamic broker
// configs and the SCRAM credentials (scram_credentials: salt, StoredKey,
// ServerKey, iterations per user and mechanism; Security is their
// lock-free snapshot), persisted in one file (<dir>/__strom_metadata) rewritten
// atomically on every change (the JSON payload's broker_configs, keyed by
// broker resource name, is absent from files written before it existed),
// under package atomicfile's header:
//
//	+--------+-------------+-------------+------------+----------------+
//	| "STMD" | version (2) | CRC-32C (4) | length (4) | JSON payload   |
//	+--------+-------------+-------------+------------+----------------+
//
// A deleted topic leaves a tombstone (its name and id) in the file, written
// in the same atomic rewrite that removes the topic: the durable record
// that its partition directories may be removed. Without a tombstone a
// directory that no topic claims is never deleted (package cluster sets it
// aside).
type Store struct {
	fs    vfs.FS
	path  string
	found bool // the file existed when the store was opened

	mu      sync.RWMutex
	topics  map[string]*Topic
	deleted []DeletedTopic
	nextPID int64
	// brokerConfigs are the dynamic broker configs by broker resource
	// name: a node id, or "" for the cluster-wide defaults.
	brokerConfigs map[string]map[string]string
	// scram are the SCRAM credentials, user -> mechanism -> credential;
	// replaced whole by AlterScram, never modified in place (the
	// security snapshot shares them).
	scram map[string]map[string]ScramCredential
	// acls are the ACL bindings; replaced whole, never modified in place.
	acls []acl.Binding
	// security is the snapshot request paths read without mu.
	security atomic.Pointer[Security]
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
	// ScramCredentials: user -> mechanism -> credential (absent before
	// issue 21).
	ScramCredentials map[string]map[string]ScramCredential `json:"scram_credentials,omitempty"`
	// ACLs are the ACL bindings (absent before issue 21).
	ACLs []acl.Binding `json:"acls,omitempty"`
}

// FileName is the metadata file's name in the data directory.
const FileName = "__strom_metadata"

// OpenStore loads (or starts) the metadata file in dir.
func OpenStore(fsys vfs.FS, dir string) (*Store, error) {
	s := &Store{fs: fsys, path: filepath.Join(dir, FileName), topics: map[string]*Topic{}}
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
	for i := range sf.Topics {
		t := sf.Topics[i]
		s.topics[t.Name] = &t
	}
	s.deleted = sf.Deleted
	s.nextPID = sf.NextProducerID
	for res, cfg := range sf.BrokerConfigs {
		for k, v := range cfg {
			if err := ValidateDynamicBrokerConfig(k, v); err != nil {
				return nil, fmt.Errorf("metadata %s: %w: broker %q: %v", s.path, ErrCorrupt, res, err)
			}
		}
	}
	s.brokerConfigs = sf.BrokerConfigs
	for user, m := range sf.ScramCredentials {
		for mech, c := range m {
			if err := checkScramAlteration(ScramAlteration{User: user, Mechanism: mech, Credential: c}); err != nil {
				return nil, fmt.Errorf("metadata %s: %w: scram credential: %v", s.path, ErrCorrupt, err)
			}
		}
	}
	s.scram = sf.ScramCredentials
	for _, b := range sf.ACLs {
		if err := b.Validate(); err != nil {
			return nil, fmt.Errorf("metadata %s: %w: %v", s.path, ErrCorrupt, err)
		}
	}
	s.acls = sf.ACLs
	s.publishSecurityLocked()
	return s, nil
}

// Found reports whether the metadata file existed when the store was
// opened (a new data directory has none).
func (s *Store) Found() bool { return s.found }

// ErrStoreExists is returned by CreateStore when the file is there.
var ErrStoreExists = errors.New("metadata file exists")

// CreateStore writes a new metadata file in dir holding topics (ids kept
// as given) and the producer id counter at nextPID, for rebuilding a lost
// file from what the partition directories say. It refuses to replace an
// existing file.
func CreateStore(fsys vfs.FS, dir string, topics []Topic, nextPID int64) (*Store, error) {
	s := &Store{fs: fsys, path: filepath.Join(dir, FileName), topics: map[string]*Topic{}, nextPID: nextPID}
	if _, err := fsys.Stat(s.path); err == nil {
		return nil, fmt.Errorf("%w: %s", ErrStoreExists, s.path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	for _, t := range topics {
		if err := ValidTopicName(t.Name); err != nil {
			return nil, err
		}
		if _, dup := s.topics[t.Name]; dup || t.Partitions <= 0 {
			return nil, fmt.Errorf("metadata: topic %q given twice or with %d partitions", t.Name, t.Partitions)
		}
		c := t.clone()
		s.topics[t.Name] = &c
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
	return append([]DeletedTopic(nil), s.deleted...)
}

// ForgetDeleted drops the tombstone of topic id once its directories are
// gone (durably). Only memory changes: the next rewrite of the file leaves
// it out, and a tombstone that outlives its directories is harmless.
func (s *Store) ForgetDeleted(id TopicID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deleted = slices.DeleteFunc(s.deleted, func(d DeletedTopic) bool { return d.ID == id })
}

// ForgetAllDeleted drops every tombstone and rewrites the file if there
// were any: at start, once no directory of a deleted topic is left.
func (s *Store) ForgetAllDeleted() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.deleted) == 0 {
		return nil
	}
	old := s.deleted
	s.deleted = nil
	if err := s.persistLocked(); err != nil {
		s.deleted = old
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

// persistLocked writes the file atomically; mu must be held.
func (s *Store) persistLocked() error {
	sf := storeFile{NextProducerID: s.nextPID, Deleted: s.deleted, BrokerConfigs: s.brokerConfigs, ScramCredentials: s.scram, ACLs: s.acls}
	for _, t := range s.topics {
		sf.Topics = append(sf.Topics, *t)
	}
	sort.Slice(sf.Topics, func(i, j int) bool { return sf.Topics[i].Name < sf.Topics[j].Name })
	payload, _ := json.Marshal(sf)
	if err := atomicfile.Write(s.fs, s.path, storeMagic, storeVersion, payload); err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	return nil
}

// Topics returns copies of all topics sorted by name.
func (s *Store) Topics() []Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]Topic, 0, len(s.topics))
	for _, t := range s.topics {
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
	for _, t := range s.topics {
		n += int64(t.Partitions)
	}
	return n
}

// Topic returns a copy of one topic.
func (s *Store) Topic(name string) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.topics[name]
	if !ok {
		return Topic{}, false
	}
	return t.clone(), true
}

// TopicByID finds a topic by id.
func (s *Store) TopicByID(id TopicID) (Topic, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, t := range s.topics {
		if t.ID == id {
			return t.clone(), true
		}
	}
	return Topic{}, false
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
// a random one, with one write of the file: all of them are stored or, on any error,
// none. A name given twice is ErrTopicExists.
func (s *Store) CreateTopics(ts []Topic) ([]Topic, error) {
	for _, t := range ts {
		if err := ValidTopicName(t.Name); err != nil {
			return nil, err
		}
		if t.Partitions <= 0 {
			return nil, fmt.Errorf("%w: %d", ErrInvalidPartitions, t.Partitions)
		}
		for k, v := range t.Configs {
			if err := ValidateTopicConfig(k, v); err != nil {
				return nil, err
			}
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Topic, len(ts))
	added := make([]string, 0, len(ts))
	undo := func() {
		for _, name := range added {
			delete(s.topics, name)
		}
	}
	for i, t := range ts {
		if _, ok := s.topics[t.Name]; ok {
			undo()
			return nil, fmt.Errorf("%w: %q", ErrTopicExists, t.Name)
		}
		t = t.clone()
		if t.ID == (TopicID{}) {
			if _, err := rand.Read(t.ID[:]); err != nil {
				undo()
				return nil, err
			}
		}
		s.topics[t.Name] = &t
		added = append(added, t.Name)
		out[i] = t.clone()
	}
	if err := s.persistLocked(); err != nil {
		undo()
		return nil, err
	}
	return out, nil
}

// DeleteTopic removes a topic and leaves its tombstone.
func (s *Store) DeleteTopic(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	delete(s.topics, name)
	s.deleted = append(s.deleted, DeletedTopic{Name: name, ID: t.ID})
	if err := s.persistLocked(); err != nil {
		s.topics[name] = t
		s.deleted = s.deleted[:len(s.deleted)-1]
		return err
	}
	return nil
}

// SetPartitions grows a topic to n partitions.
func (s *Store) SetPartitions(name string, n int32) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	if n <= t.Partitions {
		return fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", ErrInvalidPartitions, name, t.Partitions)
	}
	old := t.Partitions
	t.Partitions = n
	if err := s.persistLocked(); err != nil {
		t.Partitions = old
		return err
	}
	return nil
}

// SetConfigs replaces a topic's config overrides (validated).
func (s *Store) SetConfigs(name string, cfg map[string]string) error {
	for k, v := range cfg {
		if err := ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.topics[name]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownTopic, name)
	}
	old := t.Configs
	t.Configs = cfg
	if err := s.persistLocked(); err != nil {
		t.Configs = old
		return err
	}
	return nil
}

// AllocateProducerIDs reserves n consecutive producer ids and returns the
// first. The counter is persisted before the ids are handed out, so an id is
// never given twice, across restarts too.
func (s *Store) AllocateProducerIDs(n int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := s.nextPID
	s.nextPID += n
	if err := s.persistLocked(); err != nil {
		s.nextPID = first
		return 0, err
	}
	return first, nil
}

// BrokerConfigs returns a copy of the dynamic broker configs set on a
// broker resource: a node id, or "" for the cluster-wide defaults.
func (s *Store) BrokerConfigs(resource string) map[string]string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.brokerConfigs[resource])
}

// SetBrokerConfigs replaces the dynamic broker configs of a broker resource
// (validated: only dynamic broker configs).
func (s *Store) SetBrokerConfigs(resource string, cfg map[string]string) error {
	for k, v := range cfg {
		if err := ValidateDynamicBrokerConfig(k, v); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.brokerConfigs[resource]
	if s.brokerConfigs == nil {
		s.brokerConfigs = map[string]map[string]string{}
	}
	if len(cfg) == 0 {
		delete(s.brokerConfigs, resource)
	} else {
		s.brokerConfigs[resource] = maps.Clone(cfg)
	}
	if err := s.persistLocked(); err != nil {
		delete(s.brokerConfigs, resource)
		if had {
			s.brokerConfigs[resource] = old
		}
		return err
	}
	return nil
}
