package segment

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// The aborted-transaction index, Kafka's <base>.txnindex: one entry per
// transaction aborted by a marker in the segment, in marker order, each
// 34 bytes, big-endian, no header:
//
//	+-------------+-------------+--------------+-------------+--------------------+
//	| version (2) | producer    | first offset | last offset | last stable offset |
//	| int16 = 0   | id int64    | int64        | int64       | int64              |
//	+-------------+-------------+--------------+-------------+--------------------+
//
// first offset is the transaction's first batch on the partition (it may
// be in an earlier segment), last offset its ABORT marker (in this
// segment), last stable offset the partition's LSO right after the marker.
// The partition writes these files (whole, atomically) and rebuilds them
// from the log when they are behind or missing.

// TxnEntrySize is the size of one aborted-transaction index entry.
const TxnEntrySize = 34

// TxnEntry is one aborted transaction.
type TxnEntry struct {
	ProducerID       int64
	FirstOffset      int64
	LastOffset       int64
	LastStableOffset int64
}

// TxnIndexName is the file name of the aborted-transaction index of the
// segment at base.
func TxnIndexName(base int64) string { return fmt.Sprintf("%020d.txnindex", base) }

// ParseTxnIndexName returns the base of a TxnIndexName; false for any
// other name.
func ParseTxnIndexName(name string) (int64, bool) {
	if len(name) != 29 || !strings.HasSuffix(name, ".txnindex") {
		return 0, false
	}
	b, err := strconv.ParseInt(name[:20], 10, 64)
	return b, err == nil && b >= 0
}

// AppendTxnEntry appends e's encoding to dst.
func AppendTxnEntry(dst []byte, e TxnEntry) []byte {
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.ProducerID))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.FirstOffset))
	dst = binary.BigEndian.AppendUint64(dst, uint64(e.LastOffset))
	return binary.BigEndian.AppendUint64(dst, uint64(e.LastStableOffset))
}

// ParseTxnIndex decodes a whole index file. A length that is not a
// multiple of the entry size, an unknown version, or entries whose offsets
// do not make sense (first after last, last not increasing) are
// ErrCorrupt: the caller rebuilds the index from the log.
func ParseTxnIndex(b []byte) ([]TxnEntry, error) {
	if len(b)%TxnEntrySize != 0 {
		return nil, fmt.Errorf("%w: txnindex of %d bytes", ErrCorrupt, len(b))
	}
	out := make([]TxnEntry, 0, len(b)/TxnEntrySize)
	for ; len(b) > 0; b = b[TxnEntrySize:] {
		if v := binary.BigEndian.Uint16(b); v != 0 {
			return nil, fmt.Errorf("%w: txnindex entry version %d", ErrCorrupt, v)
		}
		e := TxnEntry{
			ProducerID:       int64(binary.BigEndian.Uint64(b[2:])),
			FirstOffset:      int64(binary.BigEndian.Uint64(b[10:])),
			LastOffset:       int64(binary.BigEndian.Uint64(b[18:])),
			LastStableOffset: int64(binary.BigEndian.Uint64(b[26:])),
		}
		if e.FirstOffset < 0 || e.FirstOffset > e.LastOffset || len(out) > 0 && e.LastOffset <= out[len(out)-1].LastOffset {
			return nil, fmt.Errorf("%w: txnindex entry %+v", ErrCorrupt, e)
		}
		out = append(out, e)
	}
	return out, nil
}
