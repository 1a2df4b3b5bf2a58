package group

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// The records of the offsets log (layouts drawn in doc.go). Keys say what a
// record is about; a null value (tombstone) deletes it. Every value starts
// with its version, so the layout can grow; a version this code does not
// know is skipped at load with a warning, never guessed at.

const (
	keyOffset int16 = 0 // committed offset: group, topic, partition
	keyGroup  int16 = 1 // group metadata: group

	valueVersion int16 = 0 // offsets, and classic groups' metadata
	// valueConsumerGroup is the version of a KIP-848 group's metadata
	// value, whose layout differs from a classic group's.
	valueConsumerGroup int16 = 1
)

// errBadRecord marks an offsets-log record that cannot be decoded. Loading
// skips such a record (and logs it) rather than refusing to start.
var errBadRecord = errors.New("group: undecodable offsets-log record")

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// committed is one committed offset as stored.
type committed struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  int64 // unix ms
	ExpireTime  int64 // unix ms; -1: expire by offsets.retention.minutes

	// logOffset is where the record is in the offsets log (its batch's
	// last offset when committed here; 0 without a log), not stored:
	// of a plain commit and a transaction's, the later in the log wins
	// (a transaction's offsets apply at its marker, after commits that
	// came between; Kafka's rule).
	logOffset int64
}

// groupRecord is a group's metadata as stored: enough to restore its
// generation and members after a restart without a rebalance.
type groupRecord struct {
	ProtocolType string
	Generation   int32
	Protocol     string
	Leader       string
	StateTime    int64 // unix ms: when the group entered its state (Empty)
	Members      []memberRecord
}

type memberRecord struct {
	MemberID         string
	InstanceID       string
	ClientID         string
	ClientHost       string
	RebalanceTimeout time.Duration
	SessionTimeout   time.Duration
	Metadata         []byte // for the group's protocol
	Assignment       []byte
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

func offsetKey(group, topic string, partition int32) []byte {
	b := make([]byte, 0, 2+2+len(group)+2+len(topic)+4)
	b = binary.BigEndian.AppendUint16(b, uint16(keyOffset))
	b = appendStr(b, group)
	b = appendStr(b, topic)
	return binary.BigEndian.AppendUint32(b, uint32(partition))
}

func groupKey(group string) []byte {
	b := make([]byte, 0, 4+len(group))
	b = binary.BigEndian.AppendUint16(b, uint16(keyGroup))
	return appendStr(b, group)
}

func encodeOffset(c committed) []byte {
	b := make([]byte, 0, 2+8+4+2+len(c.Metadata)+16)
	b = binary.BigEndian.AppendUint16(b, uint16(valueVersion))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Offset))
	b = binary.BigEndian.AppendUint32(b, uint32(c.LeaderEpoch))
	b = appendStr(b, c.Metadata)
	b = binary.BigEndian.AppendUint64(b, uint64(c.CommitTime))
	return binary.BigEndian.AppendUint64(b, uint64(c.ExpireTime))
}

func encodeGroup(g groupRecord) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(valueVersion))
	b = appendStr(b, g.ProtocolType)
	b = binary.BigEndian.AppendUint32(b, uint32(g.Generation))
	b = appendStr(b, g.Protocol)
	b = appendStr(b, g.Leader)
	b = binary.BigEndian.AppendUint64(b, uint64(g.StateTime))
	b = binary.BigEndian.AppendUint32(b, uint32(len(g.Members)))
	for _, m := range g.Members {
		b = appendStr(b, m.MemberID)
		b = appendStr(b, m.InstanceID)
		b = appendStr(b, m.ClientID)
		b = appendStr(b, m.ClientHost)
		b = binary.BigEndian.AppendUint32(b, uint32(clampMillis(m.RebalanceTimeout)))
		b = binary.BigEndian.AppendUint32(b, uint32(clampMillis(m.SessionTimeout)))
		b = appendBytes(b, m.Metadata)
		b = appendBytes(b, m.Assignment)
	}
	return b
}

func clampMillis(d time.Duration) int32 {
	ms := d.Milliseconds()
	if ms > math.MaxInt32 {
		return math.MaxInt32
	}
	if ms < 0 {
		return 0
	}
	return int32(ms)
}

// reader decodes big-endian fields with a sticky failure flag: after the
// first short read every field reads as zero, and ok() reports the failure
// once at the end (the franz-go kbin habit). Lengths are checked against
// the bytes left before anything is allocated.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) span(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	s := r.b[:n:n]
	r.b = r.b[n:]
	return s
}

func (r *reader) int16() int16 {
	s := r.span(2)
	if s == nil {
		return 0
	}
	return int16(binary.BigEndian.Uint16(s))
}

func (r *reader) int32() int32 {
	s := r.span(4)
	if s == nil {
		return 0
	}
	return int32(binary.BigEndian.Uint32(s))
}

func (r *reader) int64() int64 {
	s := r.span(8)
	if s == nil {
		return 0
	}
	return int64(binary.BigEndian.Uint64(s))
}

func (r *reader) str() string {
	n := int(uint16(r.int16()))
	return string(r.span(n))
}

func (r *reader) bytes() []byte {
	n := r.int32()
	if n < 0 {
		r.bad = true
		return nil
	}
	s := r.span(int(n))
	if s == nil {
		return nil
	}
	return bytes.Clone(s)
}

// complete reports whether every byte was read and none was missing.
func (r *reader) complete() bool { return !r.bad && len(r.b) == 0 }

// decodedKey is a parsed record key.
type decodedKey struct {
	kind      int16
	group     string
	topic     string
	partition int32
}

func decodeKey(b []byte) (decodedKey, error) {
	r := reader{b: b}
	k := decodedKey{kind: r.int16()}
	switch k.kind {
	case keyOffset:
		k.group, k.topic, k.partition = r.str(), r.str(), r.int32()
	case keyGroup:
		k.group = r.str()
	default:
		return k, fmt.Errorf("%w: key type %d", errBadRecord, k.kind)
	}
	if !r.complete() {
		return k, fmt.Errorf("%w: key of type %d: %d bytes", errBadRecord, k.kind, len(b))
	}
	return k, nil
}

func decodeOffset(b []byte) (committed, error) {
	r := reader{b: b}
	if v := r.int16(); v != valueVersion {
		return committed{}, fmt.Errorf("%w: offset value version %d", errBadRecord, v)
	}
	c := committed{Offset: r.int64(), LeaderEpoch: r.int32(), Metadata: r.str(), CommitTime: r.int64(), ExpireTime: r.int64()}
	if !r.complete() {
		return committed{}, fmt.Errorf("%w: offset value of %d bytes", errBadRecord, len(b))
	}
	return c, nil
}

// minMemberRecord is the smallest encoded member: four empty strings, two
// timeouts and two empty byte arrays. It bounds the member count before
// allocating.
const minMemberRecord = 4*2 + 2*4 + 2*4

func decodeGroup(b []byte) (groupRecord, error) {
	r := reader{b: b}
	if v := r.int16(); v != valueVersion {
		return groupRecord{}, fmt.Errorf("%w: group value version %d", errBadRecord, v)
	}
	g := groupRecord{ProtocolType: r.str(), Generation: r.int32(), Protocol: r.str(), Leader: r.str(), StateTime: r.int64()}
	n := r.int32()
	if n < 0 || int(n) > len(r.b)/minMemberRecord {
		return groupRecord{}, fmt.Errorf("%w: group value claims %d members in %d bytes", errBadRecord, n, len(r.b))
	}
	g.Members = make([]memberRecord, 0, n)
	for i := int32(0); i < n && !r.bad; i++ {
		m := memberRecord{MemberID: r.str(), InstanceID: r.str(), ClientID: r.str(), ClientHost: r.str()}
		rt, st := r.int32(), r.int32()
		if rt < 0 || st < 0 {
			return groupRecord{}, fmt.Errorf("%w: negative member timeout", errBadRecord)
		}
		m.RebalanceTimeout = time.Duration(rt) * time.Millisecond
		m.SessionTimeout = time.Duration(st) * time.Millisecond
		m.Metadata, m.Assignment = r.bytes(), r.bytes()
		g.Members = append(g.Members, m)
	}
	if !r.complete() {
		return groupRecord{}, fmt.Errorf("%w: group value of %d bytes", errBadRecord, len(b))
	}
	return g, nil
}

// consumerRecord is a KIP-848 group as stored: its epochs and members, so
// that members carry on after a restart.
type consumerRecord struct {
	Epoch       int32
	TargetEpoch int32
	Assignor    string
	StateTime   int64
	Members     []consumerMemberRecord
}

type consumerMemberRecord struct {
	MemberID, InstanceID, RackID, ClientID, ClientHost string
	Epoch, PrevEpoch                                   int32
	RebalanceTimeout                                   time.Duration
	Assignor                                           string
	Regex                                              string
	Topics                                             []string
	Assigned, Revoking                                 []TopicPartition
}

func appendTPs(b []byte, tps []TopicPartition) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(tps)))
	for _, tp := range tps {
		b = appendStr(b, tp.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
	}
	return b
}

func encodeConsumerGroup(g consumerRecord) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(valueConsumerGroup))
	b = binary.BigEndian.AppendUint32(b, uint32(g.Epoch))
	b = binary.BigEndian.AppendUint32(b, uint32(g.TargetEpoch))
	b = appendStr(b, g.Assignor)
	b = binary.BigEndian.AppendUint64(b, uint64(g.StateTime))
	b = binary.BigEndian.AppendUint32(b, uint32(len(g.Members)))
	for _, m := range g.Members {
		for _, s := range []string{m.MemberID, m.InstanceID, m.RackID, m.ClientID, m.ClientHost} {
			b = appendStr(b, s)
		}
		b = binary.BigEndian.AppendUint32(b, uint32(m.Epoch))
		b = binary.BigEndian.AppendUint32(b, uint32(m.PrevEpoch))
		b = binary.BigEndian.AppendUint32(b, uint32(clampMillis(m.RebalanceTimeout)))
		b = appendStr(b, m.Assignor)
		b = appendStr(b, m.Regex)
		b = binary.BigEndian.AppendUint32(b, uint32(len(m.Topics)))
		for _, t := range m.Topics {
			b = appendStr(b, t)
		}
		b = appendTPs(b, m.Assigned)
		b = appendTPs(b, m.Revoking)
	}
	return b
}

// count reads an element count and checks that the bytes left can hold
// that many elements of at least min bytes each.
func (r *reader) count(min int) int {
	n := r.int32()
	if n < 0 || int(n) > len(r.b)/min {
		r.bad = true
		return 0
	}
	return int(n)
}

func (r *reader) tps() []TopicPartition {
	n := r.count(6)
	out := make([]TopicPartition, 0, n)
	for i := 0; i < n && !r.bad; i++ {
		out = append(out, TopicPartition{Topic: r.str(), Partition: r.int32()})
	}
	return out
}

// minConsumerMember is the smallest encoded KIP-848 member: seven empty
// strings, three int32s and three empty arrays.
const minConsumerMember = 7*2 + 3*4 + 3*4

func decodeConsumerGroup(b []byte) (consumerRecord, error) {
	r := reader{b: b}
	if v := r.int16(); v != valueConsumerGroup {
		return consumerRecord{}, fmt.Errorf("%w: consumer group value version %d", errBadRecord, v)
	}
	g := consumerRecord{Epoch: r.int32(), TargetEpoch: r.int32(), Assignor: r.str(), StateTime: r.int64()}
	n := r.count(minConsumerMember)
	g.Members = make([]consumerMemberRecord, 0, n)
	for i := 0; i < n && !r.bad; i++ {
		m := consumerMemberRecord{MemberID: r.str(), InstanceID: r.str(), RackID: r.str(), ClientID: r.str(), ClientHost: r.str()}
		m.Epoch, m.PrevEpoch = r.int32(), r.int32()
		rt := r.int32()
		if rt < 0 {
			return consumerRecord{}, fmt.Errorf("%w: negative rebalance timeout", errBadRecord)
		}
		m.RebalanceTimeout = time.Duration(rt) * time.Millisecond
		m.Assignor, m.Regex = r.str(), r.str()
		nt := r.count(2)
		m.Topics = make([]string, 0, nt)
		for j := 0; j < nt && !r.bad; j++ {
			m.Topics = append(m.Topics, r.str())
		}
		m.Assigned, m.Revoking = r.tps(), r.tps()
		g.Members = append(g.Members, m)
	}
	if !r.complete() {
		return consumerRecord{}, fmt.Errorf("%w: consumer group value of %d bytes", errBadRecord, len(b))
	}
	return g, nil
}

// groupValueVersion returns the version a group metadata value starts
// with (-1 if it is too short to have one).
func groupValueVersion(b []byte) int16 {
	if len(b) < 2 {
		return -1
	}
	return int16(binary.BigEndian.Uint16(b))
}
