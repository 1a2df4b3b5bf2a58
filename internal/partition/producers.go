package partition

import (
	"errors"
	"fmt"
	"math"

	"github.com/stromhq/strom/internal/record"
)

// Errors of the idempotent producer checks. The handlers map them to
// OUT_OF_ORDER_SEQUENCE_NUMBER, INVALID_PRODUCER_EPOCH and
// (with ErrTxnNotVerified, txn.go) INVALID_TXN_STATE.
var (
	ErrOutOfOrderSequence = errors.New("partition: out of order sequence number")
	ErrProducerFenced     = errors.New("partition: producer epoch is older than the current one")
)

// cachedBatches is how many recent batches per producer are remembered to
// answer retries with their original offsets (Kafka keeps 5, matching
// max.in.flight.requests.per.connection <= 5 for idempotence).
const cachedBatches = 5

type batchMeta struct {
	FirstSeq    int32 `json:"first_seq"`
	LastSeq     int32 `json:"last_seq"`
	FirstOffset int64 `json:"first_offset"`
	LastOffset  int64 `json:"last_offset"`
	Timestamp   int64 `json:"timestamp"` // log append time, or NoTimestamp
}

type producer struct {
	Epoch    int16       `json:"epoch"`
	Batches  []batchMeta `json:"batches"` // oldest first, at most cachedBatches
	LastSeen int64       `json:"last_seen_ms"`
}

// noSequence is the base sequence of a batch with a producer id but no
// sequence: written by a coordinator on the producer's behalf
// (TxnOffsetCommit's offsets), checked only for the producer's epoch.
const noSequence = -1

// nextSeq is the sequence expected after last, wrapping as Kafka does.
func nextSeq(last int32) int32 {
	if last == math.MaxInt32 {
		return 0
	}
	return last + 1
}

// check decides what to do with an idempotent batch: accept it (nil, false),
// answer it as a duplicate of a cached batch (meta, true), or reject it.
func (p *producer) check(h record.BatchHeader) (*batchMeta, bool, error) {
	if p == nil {
		// Unknown producer (new, or its state expired): any sequence starts
		// it, as Kafka does since KIP-360.
		return nil, false, nil
	}
	switch {
	case h.ProducerEpoch < p.Epoch:
		return nil, false, fmt.Errorf("%w: epoch %d < %d", ErrProducerFenced, h.ProducerEpoch, p.Epoch)
	case h.BaseSequence == noSequence:
		// A coordinator's batch for the producer (the group
		// coordinator's offsets of a transaction): fenced by its epoch,
		// no sequence to check (Kafka's coordinator-origin appends).
		return nil, false, nil
	case h.ProducerEpoch > p.Epoch:
		// A bumped epoch restarts sequences at 0.
		if h.BaseSequence != 0 {
			return nil, false, fmt.Errorf("%w: new epoch %d must start at sequence 0, got %d", ErrOutOfOrderSequence, h.ProducerEpoch, h.BaseSequence)
		}
		return nil, false, nil
	}
	for i := range p.Batches {
		b := &p.Batches[i]
		if b.FirstSeq == h.BaseSequence && b.LastSeq == h.LastSequence() {
			return b, true, nil
		}
	}
	if len(p.Batches) == 0 {
		return nil, false, nil
	}
	last := p.Batches[len(p.Batches)-1]
	if h.BaseSequence != nextSeq(last.LastSeq) {
		return nil, false, fmt.Errorf("%w: expected %d, got %d", ErrOutOfOrderSequence, nextSeq(last.LastSeq), h.BaseSequence)
	}
	return nil, false, nil
}

// update records an appended batch (h has its assigned offsets).
func (p *producer) update(h record.BatchHeader, now int64) {
	if h.ProducerEpoch != p.Epoch {
		p.Epoch = h.ProducerEpoch
		p.Batches = p.Batches[:0]
	}
	p.LastSeen = now
	if h.BaseSequence == noSequence {
		return // a coordinator's batch: nothing to answer a retry with
	}
	p.Batches = append(p.Batches, batchMeta{
		FirstSeq: h.BaseSequence, LastSeq: h.LastSequence(),
		FirstOffset: h.BaseOffset, LastOffset: h.LastOffset(), Timestamp: h.MaxTimestamp,
	})
	if len(p.Batches) > cachedBatches {
		p.Batches = append(p.Batches[:0], p.Batches[len(p.Batches)-cachedBatches:]...)
	}
}
