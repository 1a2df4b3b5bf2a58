package partition

import (
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
			if next <= off || h.IsControl() {
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
					apply(r.Key, r.Value)
				}
			}
			off = next
		}
	}
	return nil
}
