package segment

import (
	"errors"
	"fmt"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrNotBatchBoundary is returned for a truncation offset that is neither
// the base offset of a batch nor the segment's end: batches are never cut
// in two.
var ErrNotBatchBoundary = errors.New("segment: offset is not a batch boundary")

// cutPoint is what TruncateTo needs to know about the batches it keeps.
type cutPoint struct {
	pos      int64 // file position of the first removed batch (or the size)
	maxTs    int64 // largest timestamp of the batches scanned before pos
	maxTsOff int64 // last offset of the batch that set it
	sinceIdx int64 // bytes scanned from the indexed batch on
}

// BatchStart returns the file position of the batch whose base offset is
// offset, the segment's size when offset is its NextOffset, and
// ErrNotBatchBoundary otherwise.
func (s *Segment) BatchStart(offset int64) (int64, error) {
	c, err := s.findCut(offset)
	return c.pos, err
}

func (s *Segment) findCut(offset int64) (cutPoint, error) {
	if err := s.ensureIndexes(); err != nil {
		return cutPoint{}, err
	}
	// Scan from the last indexed batch before the cut: the time index
	// entries kept (offsets below the cut) then hold the largest timestamp
	// up to and including that batch, and the scan sees every later one.
	// (The entry of the cut batch itself may be the one that recorded the
	// earlier batches' maximum, with the cut batch's offset.)
	e := s.offIdx.Lookup(offset - 1)
	c := cutPoint{pos: -1, maxTs: record.NoTimestamp}
	err := s.walkHeaders(e.Position, func(h record.BatchHeader, pos int64) bool {
		if h.BaseOffset >= offset {
			if h.BaseOffset == offset {
				c.pos = pos
			}
			return false
		}
		if h.LastOffset() >= offset {
			return false // offset lies inside this batch
		}
		if h.MaxTimestamp > c.maxTs {
			c.maxTs, c.maxTsOff = h.MaxTimestamp, h.LastOffset()
		}
		// A hint for where the next index entry goes: the bytes since
		// the indexed batch (counting it too: an entry a little early).
		c.sinceIdx += int64(h.Size())
		return true
	})
	if err != nil {
		return cutPoint{}, err
	}
	if c.pos < 0 && offset == s.nextOffset.Load() {
		c.pos = s.size.Load()
	}
	if c.pos < 0 {
		return cutPoint{}, fmt.Errorf("segment %020d: offset %d: %w", s.base, offset, ErrNotBatchBoundary)
	}
	return c, nil
}

// TruncateTo removes every batch whose base offset is >= offset, which must
// be a batch's base offset or the segment's NextOffset (ErrNotBatchBoundary
// otherwise). The file is cut at that batch and fsynced before anything in
// memory changes, then both indexes are trimmed and their files rewritten.
// A sealed segment becomes active again: its file is opened for writing
// (and forgotten by the descriptor cache) and its indexes take appends, as
// after Create or Open with Active.
//
// The caller is the log's single writer and must keep readers away while
// it runs (the log holds its segment-list lock for writing). A failed fsync
// wraps ErrSync; a failure to write an index file wraps ErrIndexWrite and
// leaves the segment truncated and usable (an index is a hint).
func (s *Segment) TruncateTo(offset int64) error {
	c, err := s.findCut(offset)
	if err != nil {
		return err
	}
	sealed := s.sealed.Load()
	logPath, _, _ := FileNames(s.dir, s.base)
	f := s.log
	if sealed {
		if s.cfg.Files != nil {
			s.cfg.Files.Forget(logPath) // about to be truncated, and active
		}
		if f, err = s.fs.OpenReadWrite(logPath); err != nil {
			return fmt.Errorf("segment %020d: open to truncate: %w", s.base, err)
		}
	}
	if err := cutFile(f, c.pos); err != nil {
		if sealed {
			f.Close()
		}
		return fmt.Errorf("segment %020d: truncate to %d: %w", s.base, c.pos, err)
	}
	if err := s.offIdx.TruncateAfterPosition(c.pos); err != nil {
		return fmt.Errorf("segment %020d: %w", s.base, err)
	}
	if err := s.timeIdx.TruncateAfterOffset(offset); err != nil {
		return fmt.Errorf("segment %020d: %w", s.base, err)
	}
	// The time entries left cover every batch up to the indexed one the
	// scan started at (and maybe some after it); the scan covered the rest.
	maxTs, maxTsOff := c.maxTs, c.maxTsOff
	if last, ok := s.timeIdx.Last(); ok && (last.Timestamp > maxTs || last.Timestamp == maxTs && last.Offset < maxTsOff) {
		maxTs, maxTsOff = last.Timestamp, last.Offset
	}
	if maxTs == record.NoTimestamp {
		maxTsOff = s.base
	}
	if sealed {
		s.offIdx.Unseal()
		s.timeIdx.Unseal()
		s.fileMu.Lock()
		s.log = f
		s.fileMu.Unlock()
		s.sealed.Store(false)
	}
	s.maxTimestamp, s.maxTsOffset = maxTs, maxTsOff
	s.bytesSinceIndex = c.sinceIdx
	s.size.Store(c.pos)
	if s.verified.Load() > c.pos {
		s.verified.Store(c.pos)
	}
	s.nextOffset.Store(offset)
	return s.SyncIndexes()
}

// cutFile truncates f to size and fsyncs it; a failed fsync wraps ErrSync.
func cutFile(f vfs.File, size int64) error {
	if err := f.Truncate(size); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%w: %w", ErrSync, err)
	}
	return nil
}
