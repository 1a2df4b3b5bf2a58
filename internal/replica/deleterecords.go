package replica

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/record"
)

// DeleteRecords on a replicated partition must move the log start on every
// replica alike, so it is a raft entry: a control batch of one record of
// type raftlog.ControlStartOffset whose value is the new start (int64),
// proposed by the leader and applied by each replica when it commits
// (applyCommitted, from handleReady's loop over committed entries), with
// raftlog.AdvanceStartApplied at the entry's own index: the same log, the
// same decision everywhere (a conf change between the new start and the
// entry refuses it on every replica). Clients skip the control batch.

// startMoveBatch is the entry that moves the log start to offset.
func startMoveBatch(offset int64) ([]byte, error) {
	key := binary.BigEndian.AppendUint16(nil, 0) // control key version
	key = binary.BigEndian.AppendUint16(key, uint16(raftlog.ControlStartOffset))
	value := binary.BigEndian.AppendUint64(nil, uint64(offset))
	return record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, Control: true,
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, []record.Record{{Key: key, Value: value}})
}

// startMoveLen is the length of every start-move batch (the offset is a
// fixed 8 bytes): other entries are told apart by their length first.
var startMoveLen = func() int {
	b, err := startMoveBatch(0)
	if err != nil {
		panic(err) // constant input
	}
	return len(b)
}()

// parseStartMove returns the offset of a start-move entry's batch; false
// for any other data. It runs on every committed entry (applyCommitted,
// earlyHighWatermark), so only data of a start move's length is looked at,
// and only a control batch of one record is decoded: a transaction
// marker (a control batch of one record too, of another length) is not.
func parseStartMove(data []byte) (int64, bool) {
	if len(data) != startMoveLen {
		return 0, false
	}
	h, err := record.ReadBatchHeader(data)
	if err != nil || !h.IsControl() || h.NumRecords != 1 || h.Size() != len(data) {
		return 0, false
	}
	_, recs, err := record.Records(data, 1<<10)
	if err != nil || len(recs) != 1 || len(recs[0].Key) != 4 || len(recs[0].Value) != 8 {
		return 0, false
	}
	k := recs[0].Key
	if binary.BigEndian.Uint16(k) != 0 || int16(binary.BigEndian.Uint16(k[2:])) != raftlog.ControlStartOffset {
		return 0, false
	}
	off := int64(binary.BigEndian.Uint64(recs[0].Value))
	return off, off >= 0
}

// MoveStart implements partition.StartMover: DeleteRecords on the leader.
// The start moves to the base offset of the batch holding offset (raft's
// first entry is a batch); it returns the start once this replica has
// applied the entry (handleReady applies committed entries before it
// moves the high watermark past them).
func (r *Replica) MoveStart(ctx context.Context, offset int64) (int64, error) {
	target := offset
	if idx, ok := r.st.IndexOf(offset); ok {
		if base, ok := r.st.OffsetOf(idx); ok {
			target = base
		}
	}
	if target <= r.p.StartOffset() {
		return r.p.StartOffset(), nil
	}
	data, err := startMoveBatch(target)
	if err != nil {
		return 0, fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	_, last, term, err := r.Propose(data)
	if err != nil {
		return 0, err
	}
	if err := r.p.WaitCommitted(ctx, last, term); err != nil {
		return 0, err
	}
	if start := r.p.StartOffset(); start < target {
		return start, fmt.Errorf("replica %s-%d: start %d, asked %d: %w", r.p.Topic, r.p.Index, start, target, partition.ErrStartBlocked)
	}
	return r.p.StartOffset(), nil
}

// applyCommitted applies a committed normal entry: a start move moves the
// log start (the others are the partition's data, already in the log).
func (r *Replica) applyCommitted(e *raftpb.Entry) error {
	if e.GetType() != raftpb.EntryNormal {
		return nil
	}
	off, ok := parseStartMove(e.GetData())
	if !ok {
		return nil
	}
	moved, err := r.st.AdvanceStartApplied(off, e.GetIndex())
	switch {
	case errors.Is(err, raftlog.ErrConfAboveStart):
		r.cfg.Logger.Warn("DeleteRecords refused: a configuration change lies above the new start", "offset", off, "index", e.GetIndex())
		return nil
	case err != nil:
		return fmt.Errorf("replica %s-%d: apply the start move at %d to %d: %w", r.p.Topic, r.p.Index, e.GetIndex(), off, err)
	}
	if moved {
		r.p.StartMoved()
	}
	return nil
}

var _ partition.StartMover = (*Replica)(nil)
