package raftgroup

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/record"
)

// keySize is the size of a proposal's record key: proposer, incarnation,
// sequence (see the package doc).
const keySize = 24

// ErrBadFrame: a committed normal entry that is not one proposal batch (one
// uncompressed v2 record whose key is a proposal id). Every node skips it
// alike, so the state machines stay equal.
var ErrBadFrame = errors.New("raftgroup: entry is not a proposal batch")

// proposalID names one proposal: the proposing node's raft id, the
// incarnation of its Group (random per Start, so a restarted node never
// takes an entry of its previous life for one of its new proposals) and a
// sequence number within the incarnation.
type proposalID struct {
	node, incarnation, seq uint64
}

// frame returns the batch that carries payload for id: one record, key =
// the id, value = payload, no compression. The base offset and the
// PartitionLeaderEpoch are the log's to set (raftlog writes the term in it).
func frame(id proposalID, payload []byte, now time.Time) ([]byte, error) {
	key := make([]byte, 0, keySize)
	key = binary.BigEndian.AppendUint64(key, id.node)
	key = binary.BigEndian.AppendUint64(key, id.incarnation)
	key = binary.BigEndian.AppendUint64(key, id.seq)
	value := payload
	if value == nil {
		value = []byte{} // an empty payload, not a null value
	}
	spec := record.BatchSpec{PartitionLeaderEpoch: -1, BaseTimestamp: now.UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	b, err := record.AppendBatch(make([]byte, 0, record.BatchHeaderSize+keySize+len(payload)+16), spec, []record.Record{{Key: key, Value: value}})
	if err != nil {
		return nil, fmt.Errorf("raftgroup: frame proposal: %w", err)
	}
	return b, nil
}

// unframe returns the proposal id and the payload of an entry's Data. The
// payload aliases data.
func unframe(data []byte) (proposalID, []byte, error) {
	h, recs, err := record.Records(data, len(data))
	if err != nil {
		return proposalID{}, nil, fmt.Errorf("%w: %v", ErrBadFrame, err)
	}
	if h.IsControl() || h.Codec() != record.CodecNone || len(recs) != 1 || len(recs[0].Key) != keySize {
		return proposalID{}, nil, ErrBadFrame
	}
	k := recs[0].Key
	id := proposalID{node: binary.BigEndian.Uint64(k), incarnation: binary.BigEndian.Uint64(k[8:]), seq: binary.BigEndian.Uint64(k[16:])}
	return id, recs[0].Value, nil
}
