package cleaner

import "github.com/stromhq/strom/internal/record"

// verdict is what the cleaner does with one record.
type verdict int8

const (
	keep    verdict = iota
	discard         // superseded, keyless, or a tombstone past its horizon
)

// recordContext is what decides a record's fate besides the record.
type recordContext struct {
	batch  record.BatchHeader
	offset int64
	// aborted: the batch is a transaction's that aborted (txn.go).
	aborted bool
	keys    *keyMap
	now     int64 // Unix milliseconds
	// emptyMarker: the batch is a marker whose transaction has no batch
	// left in the log (txn.go).
	emptyMarker bool
	// lastOfProducer: the batch is its producer's last in the log.
	lastOfProducer bool
}

// retain holds every rule of which records a cleaning removes, in one
// place (with the pass's bound before an undecided transaction, txn.go):
//   - control batches (transaction markers) are kept whole while their
//     transaction has a batch left in the log (a replay needs them to
//     tell committed transactional records from aborted); an empty one is
//     removed once its delete horizon has passed (set by the pass that
//     first keeps it empty, see pass.go), unless it is its producer's
//     last batch;
//   - the records of an aborted transaction are removed (they were not
//     mapped either, so they hide no older value of their key);
//   - a record without a key is removed (Kafka's cleaner does the same;
//     produce refuses them on compacted topics);
//   - a record is removed when the key map holds a later offset for its
//     key (the map only holds offsets below the pass's map end, so what
//     lies past it is never superseded);
//   - a tombstone (null value) is removed once its batch's delete horizon
//     has passed; the horizon is set by the pass that first keeps it while
//     its key is in the map (see pass.go), so every older value of the key
//     was removed by then.
func retain(c *recordContext, r *record.Record) verdict {
	if c.batch.IsControl() {
		if c.emptyMarker && !c.lastOfProducer {
			if h, ok := c.batch.DeleteHorizon(); ok && h <= c.now {
				return discard
			}
		}
		return keep
	}
	if c.aborted {
		return discard
	}
	if r.Key == nil {
		return discard
	}
	if latest := c.keys.get(r.Key); latest > c.offset {
		return discard
	}
	if r.Value == nil {
		if h, ok := c.batch.DeleteHorizon(); ok && h <= c.now {
			return discard
		}
	}
	return keep
}
