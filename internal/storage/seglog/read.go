package seglog

import (
	"fmt"
	"sort"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/segment"
)

// ReadResult is what Read returns.
type ReadResult struct {
	// Data holds whole batches, the first one holding the requested
	// offset (it may start before it: clients skip the earlier records).
	// Empty when the offset is the log end offset.
	Data []byte
	// Section, set only by ReadSection, holds the batches in place of
	// Data: a range of the segment file to send as it is.
	Section *segment.Section
	// EndOffset and StartOffset are the log's bounds at the time of the read.
	EndOffset   int64
	StartOffset int64
}

// Read returns batches from offset, at most maxBytes of them, but at least
// one whole batch when minOne is set (Kafka's KIP-74 rule for the first
// partition of a fetch). An offset below the log start or above the log end
// is ErrOffsetOutOfRange. A batch that fails its CRC is reported as
// segment.ErrCorrupt, never served.
func (l *Log) Read(offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	res := ReadResult{EndOffset: l.end.Load(), StartOffset: l.start.Load()}
	if len(l.segs) == 0 {
		return res, ErrClosed
	}
	if offset < res.StartOffset || offset > res.EndOffset {
		return res, fmt.Errorf("log %s: offset %d outside [%d, %d]: %w", l.dir, offset, res.StartOffset, res.EndOffset, ErrOffsetOutOfRange)
	}
	if offset == res.EndOffset {
		return res, nil
	}
	i := l.segmentForLocked(offset)
	for ; i < len(l.segs); i++ {
		data, err := l.segs[i].Read(offset, maxBytes, minOne, !l.config().SkipVerifyOnRead)
		if err != nil {
			return res, fmt.Errorf("log %s: %w", l.dir, err)
		}
		if len(data) > 0 || (data != nil && !minOne) {
			res.Data = data
			return res, nil
		}
		// Nothing at or after offset in this segment (a gap left by
		// compaction or an empty rolled segment): try the next one.
	}
	return res, nil
}

// ReadSection is Read for a reader that can send file ranges (sendfile):
// when the batches Read would return lie in one segment, were all checked
// by this process and are in an operating system file, they come back as
// res.Section (Data empty) without being read; otherwise it is Read. The
// caller must Release a returned Section. A section may hold fewer bytes
// than Read would (it stops before the first batch not yet checked), and
// none from below on (batches whose base offset is >= below; MaxInt64 for
// no bound); a Read, when it falls back to one, is not bounded so.
func (l *Log) ReadSection(offset int64, maxBytes int, minOne bool, below int64) (res ReadResult, err error) {
	if maxBytes > 0 && !l.config().SkipVerifyOnRead {
		l.segMu.RLock()
		res = ReadResult{EndOffset: l.end.Load(), StartOffset: l.start.Load()}
		if len(l.segs) > 0 && offset >= res.StartOffset && offset < res.EndOffset {
			i := l.segmentForLocked(offset)
			sec, ok, err := l.segs[i].ReadSection(offset, maxBytes, below)
			if err != nil {
				l.segMu.RUnlock()
				return res, fmt.Errorf("log %s: %w", l.dir, err)
			}
			if ok {
				l.segMu.RUnlock()
				res.Section = &sec
				return res, nil
			}
		}
		l.segMu.RUnlock()
	}
	return l.Read(offset, maxBytes, minOne)
}

// segmentForLocked returns the index of the last segment whose base is <=
// offset (0 if none); segMu must be held.
func (l *Log) segmentForLocked(offset int64) int {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].Base() > offset })
	if i == 0 {
		return 0
	}
	return i - 1
}

// TimestampResult is the answer to an offset-for-timestamp lookup.
type TimestampResult struct {
	Offset    int64
	Timestamp int64
	Found     bool
}

// OffsetForTimestamp returns the earliest offset whose record timestamp is
// >= ts (Kafka's ListOffsets by timestamp). Found is false when every record
// is older.
func (l *Log) OffsetForTimestamp(ts int64) (TimestampResult, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	start := l.start.Load()
	for _, s := range l.segs {
		if s.NextOffset() <= start {
			continue
		}
		maxTs, err := s.MaxTimestamp()
		if err != nil {
			return TimestampResult{}, fmt.Errorf("log %s: %w", l.dir, err)
		}
		if maxTs < ts {
			continue
		}
		batch, err := s.FindTimestamp(ts)
		if err != nil {
			return TimestampResult{}, fmt.Errorf("log %s: %w", l.dir, err)
		}
		if batch == nil {
			continue
		}
		r, found, err := l.firstRecordAtOrAfter(batch, ts, start)
		if err != nil {
			return TimestampResult{}, err
		}
		if found {
			return r, nil
		}
	}
	return TimestampResult{}, nil
}

// firstRecordAtOrAfter finds, in one batch, the first record at or after
// minOffset whose timestamp is >= ts.
func (l *Log) firstRecordAtOrAfter(batch []byte, ts, minOffset int64) (TimestampResult, bool, error) {
	h, recs, err := record.Records(batch, l.config().MaxDecompressedBytes)
	if err != nil {
		return TimestampResult{}, false, fmt.Errorf("log %s: batch at offset %d: %w", l.dir, h.BaseOffset, err)
	}
	for _, r := range recs {
		off := h.BaseOffset + int64(r.OffsetDelta)
		rts := h.BaseTimestamp + r.TimestampDelta
		if h.LogAppendTime() {
			rts = h.MaxTimestamp
		}
		if off >= minOffset && rts >= ts {
			return TimestampResult{Offset: off, Timestamp: rts, Found: true}, true, nil
		}
	}
	return TimestampResult{}, false, nil
}

// MaxTimestamp returns the offset and timestamp of the record with the
// largest timestamp (ListOffsets MAX_TIMESTAMP, KIP-734); Found is false for
// an empty log.
func (l *Log) MaxTimestamp() (TimestampResult, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	start := l.start.Load()
	var best *segment.Segment
	bestTs := record.NoTimestamp
	for _, s := range l.segs {
		if s.NextOffset() <= start {
			continue
		}
		ts, err := s.MaxTimestamp()
		if err != nil {
			return TimestampResult{}, fmt.Errorf("log %s: %w", l.dir, err)
		}
		if ts > bestTs || best == nil && ts == bestTs && s.Size() > 0 {
			best, bestTs = s, ts
		}
	}
	if best == nil || bestTs == record.NoTimestamp {
		return TimestampResult{}, nil
	}
	batch, err := best.FindTimestamp(bestTs)
	if err != nil || batch == nil {
		return TimestampResult{}, err
	}
	r, found, err := l.firstRecordAtOrAfter(batch, bestTs, start)
	if err != nil || !found {
		return TimestampResult{}, err
	}
	return r, nil
}

// WalkHeaders calls fn with the header of every batch from the one holding
// offset from to the end of the log, until fn returns false. Only headers
// are decoded (producer state is rebuilt this way).
func (l *Log) WalkHeaders(from int64, fn func(h record.BatchHeader) bool) error {
	if from >= l.end.Load() {
		return nil // nothing at or after from: read nothing
	}
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	stopped := false
	for i := l.segmentForLocked(from); i < len(l.segs) && !stopped; i++ {
		err := l.segs[i].WalkHeaders(from, func(h record.BatchHeader) bool {
			if !fn(h) {
				stopped = true
				return false
			}
			return true
		})
		if err != nil {
			return fmt.Errorf("log %s: %w", l.dir, err)
		}
	}
	return nil
}

// SegmentInfo describes one segment for listings.
type SegmentInfo struct {
	Base     int64
	Size     int64
	Modified time.Time
}

// Segments lists the segments, oldest first.
func (l *Log) Segments() []SegmentInfo {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	out := make([]SegmentInfo, len(l.segs))
	for i, s := range l.segs {
		out[i] = SegmentInfo{Base: s.Base(), Size: s.Size(), Modified: s.Modified()}
	}
	return out
}
