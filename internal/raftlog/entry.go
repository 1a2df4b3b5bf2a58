package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/record"
)

// Control record types (the int16 after the version in a control record's
// key). 0 and 1 are Kafka's transaction markers (client data, kept as normal
// entries); 2 is Kafka's LEADER_CHANGE, which KRaft writes for the same
// event; the conf-change types are Strom's, outside Kafka's range (0..6 in
// Kafka 3.9), so a Kafka client sees an unknown control type and skips it.
const (
	ControlLeaderChange int16 = 2
	ControlConfChange   int16 = 0x5301
	ControlConfChangeV2 int16 = 0x5302
	// ControlStartOffset is a replicated partition's DeleteRecords: a
	// normal entry whose Data is a control batch of one record of this
	// type, value the new log start offset (int64), applied by every
	// replica at commit (internal/replica). To this package it is client
	// data: stored and returned as the batch.
	ControlStartOffset   int16 = 0x5303
	controlKeyVersion    int16 = 0
	maxTerm                    = math.MaxInt32
	maxDecompressedBatch       = 64 << 20
)

// ErrBadEntry: an entry this package cannot store (a normal entry whose
// Data is not one valid v2 batch, a term beyond int32, an unknown type).
var ErrBadEntry = errors.New("raftlog: entry cannot be stored")

// encodeEntry returns the batch that stores e. The batch's base offset and
// PartitionLeaderEpoch are set by the log's append, in place: a normal
// entry's Data is copied unless inPlace (its owner lets Append write
// those two fields into it).
func encodeEntry(e *raftpb.Entry, inPlace bool) ([]byte, error) {
	if e.GetTerm() > maxTerm {
		return nil, fmt.Errorf("entry %d: term %d > int32: %w", e.GetIndex(), e.GetTerm(), ErrBadEntry)
	}
	var typ int16
	switch {
	case e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0:
		h, err := record.ReadBatchHeader(e.Data)
		if err != nil || h.Size() != len(e.GetData()) {
			return nil, fmt.Errorf("entry %d: data is not one v2 batch: %w", e.GetIndex(), ErrBadEntry)
		}
		if inPlace {
			return e.GetData(), nil
		}
		return append([]byte(nil), e.GetData()...), nil
	case e.GetType() == raftpb.EntryNormal:
		typ = ControlLeaderChange
	case e.GetType() == raftpb.EntryConfChange:
		typ = ControlConfChange
	case e.GetType() == raftpb.EntryConfChangeV2:
		typ = ControlConfChangeV2
	default:
		return nil, fmt.Errorf("entry %d: type %v: %w", e.GetIndex(), e.GetType(), ErrBadEntry)
	}
	key := binary.BigEndian.AppendUint16(nil, uint16(controlKeyVersion))
	key = binary.BigEndian.AppendUint16(key, uint16(typ))
	value := e.GetData()
	if value == nil {
		value = []byte{}
	}
	spec := record.BatchSpec{
		PartitionLeaderEpoch: int32(e.GetTerm()),
		Control:              true,
		BaseTimestamp:        0,
		ProducerID:           -1,
		ProducerEpoch:        -1,
		BaseSequence:         -1,
	}
	b, err := record.AppendBatch(nil, spec, []record.Record{{Key: key, Value: value}})
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", e.GetIndex(), err)
	}
	return b, nil
}

// decodeEntry turns a stored batch back into the entry of index. A control
// batch whose one record has a raftlog control key is a raft-only entry;
// every other batch (transaction markers included) is a normal entry whose
// Data is the batch, which the caller then owns.
func decodeEntry(index uint64, batch []byte) (*raftpb.Entry, error) {
	h, err := record.ReadBatchHeader(batch)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", index, err)
	}
	e := &raftpb.Entry{Index: proto.Uint64(index), Term: proto.Uint64(uint64(h.PartitionLeaderEpoch)), Type: raftpb.EntryNormal.Enum()}
	if !h.IsControl() || h.NumRecords != 1 {
		e.Data = batch
		return e, nil
	}
	_, recs, err := record.Records(batch, maxDecompressedBatch)
	if err != nil {
		return nil, fmt.Errorf("entry %d: %w", index, err)
	}
	if len(recs) != 1 || len(recs[0].Key) != 4 {
		e.Data = batch
		return e, nil
	}
	switch int16(binary.BigEndian.Uint16(recs[0].Key[2:])) {
	case ControlLeaderChange:
	case ControlConfChange:
		e.Type, e.Data = raftpb.EntryConfChange.Enum(), recs[0].Value
	case ControlConfChangeV2:
		e.Type, e.Data = raftpb.EntryConfChangeV2.Enum(), recs[0].Value
	default:
		e.Data = batch
	}
	if len(e.GetData()) == 0 && e.GetType() != raftpb.EntryNormal {
		e.Data = nil
	}
	return e, nil
}
