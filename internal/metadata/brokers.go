package metadata

import (
	"errors"
	"sort"
)

// ErrUnknownBroker is returned for a node id no broker registered.
var ErrUnknownBroker = errors.New("unknown broker")

// BrokerInfo is a broker's registration in a cluster: where clients reach
// it, its rack, and whether the controller fenced it (its session timed
// out: it gets no new replicas and clients are not sent to it).
type BrokerInfo struct {
	ID   int32  `json:"id"`
	Host string `json:"host"`
	Port int32  `json:"port"`
	Rack string `json:"rack,omitempty"`
	// ControllerAddr is its raft listener (host:port).
	ControllerAddr string `json:"controller_addr,omitempty"`
	// Incarnation is a random id per process start, so a retried
	// registration is told from a restart.
	Incarnation string `json:"incarnation"`
	Fenced      bool   `json:"fenced,omitempty"`
	// Endpoints are every client listener's advertised address, as
	// Kafka's BrokerRegistration has them; Host and Port are the first
	// one's. Empty in a registration made before they were recorded.
	Endpoints []Endpoint `json:"endpoints,omitempty"`
	// TransactionVersion is the highest transaction.version feature level
	// the broker serves (its transaction.version setting); nil in a
	// registration made by a broker before transactions v2 worked across
	// brokers, which serves at most 1. A cluster finalizes the lowest of
	// its registered brokers' (handler 18), so during a rolling upgrade
	// clients keep to v1 until every broker runs a version that serves v2.
	TransactionVersion *int16 `json:"transaction_version,omitempty"`
	// AnswersProbes says the broker's raft transport answers probes
	// (raftnet frame kinds 11 and 12). A broker of an older Strom, which
	// registers without it, reads a probe as a bad frame and closes the
	// raft connection it came on; during a rolling upgrade it is not
	// probed (package cluster, MetadataLeaderNodes).
	AnswersProbes bool `json:"answers_probes,omitempty"`
}

// Endpoint is one listener's advertised address.
type Endpoint struct {
	Listener string `json:"listener"` // its name, upper case
	Host     string `json:"host"`
	Port     int32  `json:"port"`
}

// Endpoint is the advertised address of the broker's listener (ok false
// when the registration names no such listener).
func (b BrokerInfo) Endpoint(listener string) (host string, port int32, ok bool) {
	for _, e := range b.Endpoints {
		if e.Listener == listener {
			return e.Host, e.Port, true
		}
	}
	return "", 0, false
}

// RegisterBroker records (or refreshes) a broker's registration; it
// unfences the broker.
func (s *Store) RegisterBroker(b BrokerInfo) error {
	_, err := s.commit(Record{Type: RecRegisterBroker, Broker: &b})
	return err
}

// FenceBroker fences or unfences a registered broker.
func (s *Store) FenceBroker(id int32, fenced bool) error {
	_, err := s.commit(Record{Type: RecFenceBroker, Broker: &BrokerInfo{ID: id}, Fenced: fenced})
	return err
}

// Brokers returns the registered brokers by id.
func (s *Store) Brokers() []BrokerInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]BrokerInfo, 0, len(s.st.brokers))
	for _, b := range s.st.brokers {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Broker returns one registered broker.
func (s *Store) Broker(id int32) (BrokerInfo, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	b, ok := s.st.brokers[id]
	return b, ok
}

// Replicated reports whether the store is a cluster node's (changes go
// through the metadata quorum).
func (s *Store) Replicated() bool { return s.proposer != nil }
