package partition

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/stromhq/strom/internal/record"
)

// Replay reads the log from its start to its end and calls apply with the
// key and value of every record of its data batches, in offset order: how
// a coordinator rebuilds its state from its internal partition (the
// offsets log, the transaction log). Control batches are skipped. A batch
// whose records do not decode (the log's recovery validated every batch,
// so this is not expected) is reported to skipped and passed over; a batch
// header that does not parse ends the replay with an error. maxDecomp caps
// a compressed batch's decompressed size.
func (p *Partition) Replay(maxDecomp int, skipped func(offset int64, err error), apply func(key, value []byte)) error {
	return p.ReplayBatches(maxDecomp, skipped, func(_ ReplayedBatch, key, value []byte) { apply(key, value) }, nil)
}

// ReplayedBatch is the batch a replayed record or marker is in.
type ReplayedBatch struct {
	BaseOffset    int64
	ProducerID    int64 // -1: none
	ProducerEpoch int16
	Transactional bool
}

// ReplayBatches is Replay for a coordinator that writes transactional
// batches (the group coordinator's offsets of a transaction): apply gets
// each record with its batch, and marker, when not nil, every COMMIT
// (commit set) or ABORT control batch, in log order with the records. A
// control batch whose type does not read is passed over (reported to
// skipped).
func (p *Partition) ReplayBatches(maxDecomp int, skipped func(offset int64, err error), apply func(b ReplayedBatch, key, value []byte), marker func(b ReplayedBatch, commit bool)) error {
	for off := p.StartOffset(); off < p.EndOffset(); {
		res, err := p.Read(off, 1<<20, true)
		if err != nil {
			return fmt.Errorf("read at %d: %w", off, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				return fmt.Errorf("batch at %d: %w", off, errors.Join(err, record.ErrCorrupt))
			}
			batch := b[:h.Size()]
			b = b[h.Size():]
			next := h.LastOffset() + 1
			if next <= off {
				continue
			}
			rb := ReplayedBatch{BaseOffset: h.BaseOffset, ProducerID: h.ProducerID, ProducerEpoch: h.ProducerEpoch, Transactional: h.IsTransactional()}
			if h.IsControl() {
				if marker != nil && h.BaseOffset >= off {
					typ, err := controlTypeOf(batch)
					switch {
					case err != nil:
						skipped(h.BaseOffset, err)
					case typ == controlCommit || typ == controlAbort:
						marker(rb, typ == controlCommit)
					}
				}
				off = max(off, next)
				continue
			}
			_, recs, err := record.Records(batch, maxDecomp)
			if err != nil {
				skipped(h.BaseOffset, err)
				off = next
				continue
			}
			for _, r := range recs {
				if h.BaseOffset+int64(r.OffsetDelta) >= off {
					apply(rb, r.Key, r.Value)
				}
			}
			off = next
		}
	}
	return nil
}

// controlTypeOf reads a control batch's type (the key of its one record:
// version int16, type int16).
func controlTypeOf(batch []byte) (int16, error) {
	_, recs, err := record.Records(batch, 1<<20)
	if err != nil {
		return 0, err
	}
	if len(recs) == 0 || len(recs[0].Key) < 4 {
		return 0, fmt.Errorf("%w: control record without a type", record.ErrCorrupt)
	}
	return int16(binary.BigEndian.Uint16(recs[0].Key[2:])), nil
}
