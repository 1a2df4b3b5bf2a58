package cleaner

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Transactions (Kafka's cleaner rules): a transactional batch's records
// count only once its transaction is decided by a marker later in the log.
//   - Nothing at or past the first batch of a transaction with no marker
//     yet is cleaned (the pass's bound stops there: Kafka's cleaner stops
//     at the last stable offset), so an open transaction's records never
//     hide an older value of their key.
//   - The records of an aborted transaction are not mapped (they hide no
//     older value: a consumer of the compacted log, or a coordinator
//     replaying it, drops them) and are removed.
//   - Committed transactional records are ordinary records.
//   - A marker (control batch) is kept while any batch of the transaction
//     it ends is still in the log (a replay needs it to know what those
//     came to, and a transactional batch without its marker reads as an
//     open transaction). Once none is left (an aborted transaction's
//     batches go in the pass that sees the abort; a committed one's when
//     later values of all their keys removed their records) the marker is
//     empty: the next pass that keeps it gives it a delete horizon, now +
//     delete.retention.ms, and a pass after that removes it (Kafka's rule,
//     KIP-534: consumers have delete.retention.ms to see it), unless it is
//     its producer's last batch, which stays for the producer's state.

// txnOutcomes is what the log says about its transactions from offset
// from to its end: the base offsets of the transactional batches whose
// transaction aborted, the base offsets of the markers whose transaction
// has no batch left before them (empty), and the first offset of a
// transactional batch whose transaction has no marker yet (math.MaxInt64:
// none).
type txnOutcomes struct {
	aborted   map[int64]bool
	empty     map[int64]bool
	undecided int64
}

// Control record types (the key of a control batch's one record: version
// int16, type int16).
const (
	controlAbort  = 0
	controlCommit = 1
)

func readTxnOutcomes(l *seglog.Log, from int64) (txnOutcomes, error) {
	type event struct {
		h      record.BatchHeader
		marker bool
	}
	var events []event
	err := l.WalkHeaders(from, func(h record.BatchHeader) bool {
		if h.IsTransactional() && h.ProducerID >= 0 && h.BaseOffset >= from {
			events = append(events, event{h, h.IsControl()})
		}
		return true
	})
	out := txnOutcomes{aborted: map[int64]bool{}, empty: map[int64]bool{}, undecided: math.MaxInt64}
	if err != nil {
		return out, fmt.Errorf("cleaner %s: transactions: %w", l.Dir(), err)
	}
	open := map[int64][]int64{} // producer id -> base offsets of its undecided batches
	for _, e := range events {
		pid := e.h.ProducerID
		if !e.marker {
			open[pid] = append(open[pid], e.h.BaseOffset)
			continue
		}
		typ, err := controlType(l, e.h)
		if err != nil {
			return out, fmt.Errorf("cleaner %s: marker at %d: %w", l.Dir(), e.h.BaseOffset, err)
		}
		if typ == controlAbort {
			for _, off := range open[pid] {
				out.aborted[off] = true
			}
		}
		if typ == controlAbort || typ == controlCommit {
			if len(open[pid]) == 0 {
				out.empty[e.h.BaseOffset] = true
			}
			delete(open, pid)
		}
	}
	for _, offs := range open {
		out.undecided = min(out.undecided, offs[0])
	}
	return out, nil
}

// controlType reads the type of the control batch h.
func controlType(l *seglog.Log, h record.BatchHeader) (int16, error) {
	rr, err := l.Read(h.BaseOffset, h.Size(), true)
	if err != nil {
		return 0, err
	}
	for b := rr.Data; len(b) > 0; {
		bh, err := record.ReadBatchHeader(b)
		if err != nil || bh.Size() > len(b) {
			return 0, fmt.Errorf("%w: batch header", record.ErrCorrupt)
		}
		if bh.BaseOffset == h.BaseOffset {
			_, recs, err := record.Records(b[:bh.Size()], 1<<20)
			if err != nil {
				return 0, err
			}
			if len(recs) == 0 || len(recs[0].Key) < 4 {
				return 0, fmt.Errorf("%w: control record without a type", record.ErrCorrupt)
			}
			return int16(binary.BigEndian.Uint16(recs[0].Key[2:])), nil
		}
		b = b[bh.Size():]
	}
	return 0, fmt.Errorf("%w: no batch at %d", record.ErrCorrupt, h.BaseOffset)
}
