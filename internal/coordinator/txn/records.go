package txn

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// The records of the transaction log (layouts drawn in doc.go). A key
// names a transactional id; its latest value is the transaction's state.

const (
	keyTxn int16 = 0
	// valueVersion is written unless the record carries the previous
	// transaction's markers (prevMarkers), which need valuePrevVersion.
	valueVersion     int16 = 0
	valuePrevVersion int16 = 1
	maxString              = 1<<15 - 1
)

// errBadRecord marks a transaction-log record that cannot be decoded;
// loading skips it with a warning.
var errBadRecord = errors.New("txn: undecodable transaction-log record")

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// PendingOffset is an offset committed inside a transaction
// (TxnOffsetCommit), applied to its group when the transaction commits.
type PendingOffset struct {
	Group       string
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
}

// record is one transactional id's state as stored.
type record struct {
	ProducerID int64
	Epoch      int16
	TimeoutMs  int32
	State      State
	StartMs    int64 // when the ongoing transaction began (-1: none)
	UpdateMs   int64
	Partitions []TopicPartition // sorted
	Groups     []string         // sorted
	Offsets    []PendingOffset  // sorted by group, topic, partition
	// Prev, when not nil, are the markers of the id's previous
	// transaction not yet known durable when this one began (complete.go:
	// the next transaction does not wait for them); a restart repairs
	// them with partition.RepairMarker. Written in value version 1.
	Prev *prevMarkers
}

// prevMarkers are the markers of an ended transaction, all appended, that
// a record carries until they are known durable.
type prevMarkers struct {
	ProducerID int64
	Epoch      int16 // the markers' epoch, above the ended transaction's batches'
	Commit     bool
	Partitions []TopicPartition
}

func appendStr(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func txnKey(id string) []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, 4+len(id)), uint16(keyTxn))
	return appendStr(b, id)
}

func encodeRecord(r record) []byte {
	version := valueVersion
	if r.Prev != nil {
		version = valuePrevVersion
	}
	b := binary.BigEndian.AppendUint16(nil, uint16(version))
	b = binary.BigEndian.AppendUint64(b, uint64(r.ProducerID))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Epoch))
	b = binary.BigEndian.AppendUint32(b, uint32(r.TimeoutMs))
	b = append(b, byte(r.State))
	b = binary.BigEndian.AppendUint64(b, uint64(r.StartMs))
	b = binary.BigEndian.AppendUint64(b, uint64(r.UpdateMs))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Partitions)))
	for _, tp := range r.Partitions {
		b = appendStr(b, tp.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Groups)))
	for _, g := range r.Groups {
		b = appendStr(b, g)
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Offsets)))
	for _, o := range r.Offsets {
		b = appendStr(b, o.Group)
		b = appendStr(b, o.Topic)
		b = binary.BigEndian.AppendUint32(b, uint32(o.Partition))
		b = binary.BigEndian.AppendUint64(b, uint64(o.Offset))
		b = binary.BigEndian.AppendUint32(b, uint32(o.LeaderEpoch))
		b = appendStr(b, o.Metadata)
	}
	if pm := r.Prev; pm != nil {
		b = binary.BigEndian.AppendUint64(b, uint64(pm.ProducerID))
		b = binary.BigEndian.AppendUint16(b, uint16(pm.Epoch))
		commit := byte(0)
		if pm.Commit {
			commit = 1
		}
		b = append(b, commit)
		b = binary.BigEndian.AppendUint32(b, uint32(len(pm.Partitions)))
		for _, tp := range pm.Partitions {
			b = appendStr(b, tp.Topic)
			b = binary.BigEndian.AppendUint32(b, uint32(tp.Partition))
		}
	}
	return b
}

// reader decodes with a sticky error: after an underflow every read
// returns zero and bad stays set; counts are checked against what remains
// before anything is allocated for them.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || n > len(r.b) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) i8() int8 {
	if b := r.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (r *reader) i16() int16 {
	if b := r.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (r *reader) i32() int32 {
	if b := r.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (r *reader) i64() int64 {
	if b := r.take(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (r *reader) str() string {
	n := int(uint16(r.i16()))
	return string(r.take(n))
}

// count reads an element count, each element at least minSize bytes.
func (r *reader) count(minSize int) int {
	n := r.i32()
	if n < 0 || int64(n)*int64(minSize) > int64(len(r.b)) {
		r.bad = true
		return 0
	}
	return int(n)
}

func decodeKey(b []byte) (string, error) {
	r := reader{b: b}
	if k := r.i16(); k != keyTxn {
		return "", fmt.Errorf("%w: key type %d", errBadRecord, k)
	}
	id := r.str()
	if r.bad || len(r.b) != 0 {
		return "", fmt.Errorf("%w: key", errBadRecord)
	}
	return id, nil
}

// decodeRecord parses a value (fuzzed by FuzzDecodeRecord).
func decodeRecord(b []byte) (record, error) {
	r := reader{b: b}
	var v record
	ver := r.i16()
	if ver != valueVersion && ver != valuePrevVersion {
		return v, fmt.Errorf("%w: value version %d", errBadRecord, ver)
	}
	v.ProducerID = r.i64()
	v.Epoch = r.i16()
	v.TimeoutMs = r.i32()
	v.State = State(r.i8())
	v.StartMs = r.i64()
	v.UpdateMs = r.i64()
	n := r.count(6)
	for i := 0; i < n && !r.bad; i++ {
		v.Partitions = append(v.Partitions, TopicPartition{Topic: r.str(), Partition: r.i32()})
	}
	n = r.count(2)
	for i := 0; i < n && !r.bad; i++ {
		v.Groups = append(v.Groups, r.str())
	}
	n = r.count(24)
	for i := 0; i < n && !r.bad; i++ {
		v.Offsets = append(v.Offsets, PendingOffset{Group: r.str(), Topic: r.str(), Partition: r.i32(), Offset: r.i64(), LeaderEpoch: r.i32(), Metadata: r.str()})
	}
	if ver == valuePrevVersion {
		pm := &prevMarkers{ProducerID: r.i64(), Epoch: r.i16()}
		switch c := r.i8(); c {
		case 0, 1:
			pm.Commit = c == 1
		default:
			r.bad = true
		}
		n = r.count(6)
		for i := 0; i < n && !r.bad; i++ {
			pm.Partitions = append(pm.Partitions, TopicPartition{Topic: r.str(), Partition: r.i32()})
		}
		if pm.ProducerID < 0 || pm.Epoch < 0 {
			r.bad = true
		}
		v.Prev = pm
	}
	if r.bad || len(r.b) != 0 {
		return record{}, fmt.Errorf("%w: value", errBadRecord)
	}
	if !v.State.valid() || v.ProducerID < 0 || v.Epoch < 0 {
		return record{}, fmt.Errorf("%w: state %d, producer %d/%d", errBadRecord, v.State, v.ProducerID, v.Epoch)
	}
	return v, nil
}

func sortPartitions(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

func sortOffsets(os []PendingOffset) {
	sort.Slice(os, func(i, j int) bool {
		a, b := os[i], os[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		return a.Partition < b.Partition
	})
}
