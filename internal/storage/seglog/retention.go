package seglog

import (
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/storage/segment"
)

// AdvanceStartOffset moves the log start offset forward (Kafka's
// DeleteRecords): offsets below it are no longer readable, and segments that
// lie wholly below it are deleted. Moving it backwards is a no-op; beyond the
// log end offset is ErrOffsetOutOfRange. The caller persists the new start
// offset (checkpoint) before acknowledging.
func (l *Log) AdvanceStartOffset(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if offset > l.end.Load() {
		return fmt.Errorf("log %s: start offset %d past end %d: %w", l.dir, offset, l.end.Load(), ErrOffsetOutOfRange)
	}
	if offset <= l.start.Load() {
		return nil
	}
	l.setStart(offset)
	_, err := l.deleteSegmentsLocked(func(s *segment.Segment, _ int64) bool { return s.NextOffset() <= offset })
	l.signal()
	return err
}

// RetentionResult reports what ApplyRetention removed.
type RetentionResult struct {
	Segments int
	Bytes    int64
}

// ApplyRetention enforces cleanup.policy=delete: it deletes the oldest
// segments whose largest timestamp is older than retention.ms, then the
// oldest while the log is over retention.bytes by at least the segment's
// size. The active segment is never deleted. The log start offset moves to
// the first remaining segment when it was below it.
func (l *Log) ApplyRetention(now time.Time) (RetentionResult, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return RetentionResult{}, ErrClosed
	}
	var res RetentionResult
	if l.config().RetentionMs > 0 {
		limit := now.Add(-l.config().RetentionMs).UnixMilli()
		var tsErr error
		r, err := l.deleteSegmentsLocked(func(s *segment.Segment, _ int64) bool {
			ts, err := s.MaxTimestamp()
			if err != nil {
				tsErr = err
				return false
			}
			// A segment with no timestamps falls back to its file time.
			if ts < 0 {
				ts = s.Created().UnixMilli()
			}
			return ts < limit
		})
		res.Segments += r.Segments
		res.Bytes += r.Bytes
		if err != nil {
			return res, err
		}
		if tsErr != nil {
			return res, fmt.Errorf("log %s: retention: %w", l.dir, tsErr)
		}
	}
	if l.config().RetentionBytes > 0 {
		r, err := l.deleteSegmentsLocked(func(s *segment.Segment, total int64) bool {
			return total-s.Size() >= l.config().RetentionBytes
		})
		res.Segments += r.Segments
		res.Bytes += r.Bytes
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

// deleteSegmentsLocked deletes segments from the oldest while pred holds
// (pred sees the log's total size before that segment goes), never the
// active one; appendMu must be held.
func (l *Log) deleteSegmentsLocked(pred func(s *segment.Segment, total int64) bool) (RetentionResult, error) {
	total := l.Size()
	var doomed []*segment.Segment
	l.segMu.RLock()
	for _, s := range l.segs[:len(l.segs)-1] {
		if !pred(s, total) {
			break
		}
		doomed = append(doomed, s)
		total -= s.Size()
	}
	l.segMu.RUnlock()
	if len(doomed) == 0 {
		return RetentionResult{}, nil
	}
	// Readers hold segMu for reading while they use a segment, so once the
	// slice is swapped under the write lock no reader can see these.
	l.segMu.Lock()
	l.segs = append([]*segment.Segment(nil), l.segs[len(doomed):]...)
	first := l.segs[0].Base()
	l.segMu.Unlock()
	l.advanceStart(first)
	var res RetentionResult
	var firstErr error
	for _, s := range doomed {
		res.Segments++
		res.Bytes += s.Size()
		if err := s.Delete(); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("log %s: %w", l.dir, err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil && firstErr == nil {
		firstErr = fmt.Errorf("log %s: sync dir: %w", l.dir, err)
	}
	return res, firstErr
}

// RetentionOffset is where ApplyRetention with retentionMs and
// retentionBytes (Kafka's meanings; <= 0: off) would move the start: the
// base offset of the first segment it would keep, or the start offset
// when it would delete none. Nothing is deleted: a replicated partition's
// log keeps no retention of its own, its start moves through raft's
// storage (the anchor first), and it asks here how far to move it.
func (l *Log) RetentionOffset(now time.Time, retentionMs time.Duration, retentionBytes int64) (int64, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	var total int64
	for _, s := range l.segs {
		total += s.Size()
	}
	k := 0
	if retentionMs > 0 {
		limit := now.Add(-retentionMs).UnixMilli()
		for ; k < len(l.segs)-1; k++ {
			ts, err := l.segs[k].MaxTimestamp()
			if err != nil {
				return 0, fmt.Errorf("log %s: retention: %w", l.dir, err)
			}
			if ts < 0 {
				ts = l.segs[k].Created().UnixMilli()
			}
			if ts >= limit {
				break
			}
			total -= l.segs[k].Size()
		}
	}
	if retentionBytes > 0 {
		for ; k < len(l.segs)-1 && total-l.segs[k].Size() >= retentionBytes; k++ {
			total -= l.segs[k].Size()
		}
	}
	if len(l.segs) == 0 {
		return l.start.Load(), nil
	}
	return max(l.segs[k].Base(), l.start.Load()), nil
}
