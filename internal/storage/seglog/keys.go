package seglog

import (
	"fmt"

	"github.com/stromhq/strom/internal/record"
)

// ErrMissingKey is an append of a record without a key to a compacted log:
// the cleaner keeps one record per key, so a keyless record has no place
// (Kafka refuses it with INVALID_RECORD too). It wraps
// record.ErrInvalidRecord.
var ErrMissingKey = fmt.Errorf("%w: compacted topic (cleanup.policy=compact) cannot accept a record without a key", record.ErrInvalidRecord)

// checkKeys refuses a batch holding a keyless record when the log is
// compacted; b was validated.
func (l *Log) checkKeys(b []byte) error {
	cfg := l.config()
	if !cfg.Compaction.Enabled {
		return nil
	}
	h, recs, err := record.Records(b, cfg.MaxDecompressedBytes)
	if err != nil {
		return err
	}
	if h.IsControl() {
		return nil
	}
	for _, r := range recs {
		if r.Key == nil {
			return fmt.Errorf("record at offset delta %d: %w", r.OffsetDelta, ErrMissingKey)
		}
	}
	return nil
}
