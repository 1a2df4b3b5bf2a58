package seglog

import (
	"fmt"

	"github.com/stromhq/strom/internal/record"
)

// AppendAsFollower appends whole v2 batches keeping their base offsets and
// leader epochs, as a Kafka follower appends what it fetched: a replica
// copying a leader's compacted region, whose offsets have gaps and whose
// cleaned batches may hold fewer records than offsets. Each batch's base
// offset must be at or past the log end (ErrOffsetOutOfRange otherwise);
// the end becomes the last batch's last offset + 1. None of the log's own
// write rules apply (keys, recompression, LogAppendTime, max.message.bytes):
// the batches were accepted where they were written; each one's CRC is
// checked. Like Append it returns once the data is written; Flush makes it
// durable.
func (l *Log) AppendAsFollower(data []byte) error {
	var hdrs []record.BatchHeader
	for off := 0; off < len(data); {
		h, err := record.ReadBatchHeader(data[off:])
		if err != nil {
			return fmt.Errorf("log %s: follower append: batch %d: %w", l.dir, len(hdrs), err)
		}
		if h.Size() > len(data)-off {
			return fmt.Errorf("log %s: follower append: batch %d claims %d bytes, %d remain: %w", l.dir, len(hdrs), h.Size(), len(data)-off, record.ErrCorrupt)
		}
		if _, err := record.CheckCRC(data[off : off+h.Size()]); err != nil {
			return fmt.Errorf("log %s: follower append: batch %d: %w", l.dir, len(hdrs), err)
		}
		hdrs = append(hdrs, h)
		off += h.Size()
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.failure(); err != nil {
		return err
	}
	now := l.config().Now()
	off := 0
	for _, h := range hdrs {
		b := data[off : off+h.Size()]
		off += h.Size()
		end := l.end.Load()
		if h.BaseOffset < end {
			return fmt.Errorf("log %s: follower append at %d, log end %d: %w", l.dir, h.BaseOffset, end, ErrOffsetOutOfRange)
		}
		if err := l.maybeRollLocked(int64(len(b)), h.LastOffset()+1-end, now); err != nil {
			return err
		}
		active := l.segs[len(l.segs)-1]
		if err := active.Append(b, []record.BatchHeader{h}); err != nil {
			return l.transient("follower append", err)
		}
		l.end.Store(h.LastOffset() + 1)
		l.unflushed += int64(h.NumRecords)
	}
	l.flushPendingLocked()
	l.signal()
	l.noteOK()
	return nil
}

// SkipTo moves the log end to offset (at or past it) with no batch, so
// that the next append gets offset: the active segment is sealed and an
// empty one starts at offset (a follower whose copied region ends in a
// gap: the leader's next batch starts past the last one it copied). Durable
// on return (the roll syncs the old segment and the directory).
func (l *Log) SkipTo(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.failure(); err != nil {
		return err
	}
	end := l.end.Load()
	switch {
	case offset < end:
		return fmt.Errorf("log %s: skip to %d, log end %d: %w", l.dir, offset, end, ErrOffsetOutOfRange)
	case offset == end:
		return nil
	}
	l.end.Store(offset)
	if err := l.rollLocked(l.config().Now()); err != nil {
		l.end.Store(end)
		return err
	}
	l.signal()
	return nil
}
