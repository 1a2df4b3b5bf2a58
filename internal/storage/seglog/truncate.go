package seglog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/segment"
)

var (
	// ErrNotBatchBoundary: TruncateTo was given an offset inside a batch.
	ErrNotBatchBoundary = segment.ErrNotBatchBoundary
	// ErrTruncated: WaitDurable was waiting for an offset that TruncateTo
	// removed; it will never be durable (a later append may reuse it for
	// other records).
	ErrTruncated = errors.New("log: offset truncated away")
)

// TruncateIntentFile is the file in the log's directory that records a
// truncation in progress: written (temp, fsync, rename, directory fsync)
// before any byte is cut, removed once the truncation is durable. Open
// finishes a truncation it finds, so a crash leaves the old tail or the
// new one, never part of it.
const TruncateIntentFile = "truncate-intent"

const (
	truncateMagic   = "STTI"
	truncateVersion = 1
)

// TruncateTo removes every batch whose base offset is >= offset, so that
// the next append gets offset (a raft follower overwriting a conflicting
// uncommitted tail, as a Kafka follower truncates by leader epoch).
// offset must be the base offset of a batch, or the end offset (a no-op):
// otherwise ErrNotBatchBoundary. Below the start offset or past the end it
// is ErrOffsetOutOfRange.
//
// Later segments are deleted (their cached descriptors forgotten), the
// segment holding offset is cut at that batch and becomes the active one
// again if it was sealed. It is durable on return: see the package doc for
// the order of the steps. Afterwards the end offset is offset, and so is
// the durable offset (the cut segment was fsynced, the earlier ones were
// when sealed). Readers never see a torn state: the segment list and the
// cut segment change under segMu held for writing (readers wait for one
// ftruncate and fsync). WaitDurable callers waiting for a removed offset
// get ErrTruncated.
//
// A failure before the intent file is durable changes nothing (ErrStorage);
// a failure after it makes the log Failed (ErrFailed): the intent is on
// disk, so writes must stop until a reopen finishes the truncation.
func (l *Log) TruncateTo(offset int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.failure(); err != nil {
		return err
	}
	start, end := l.start.Load(), l.end.Load()
	if offset < start || offset > end {
		return fmt.Errorf("log %s: truncate to %d outside [%d, %d]: %w", l.dir, offset, start, end, ErrOffsetOutOfRange)
	}
	if offset == end {
		return nil
	}
	// Own the fsync slot: no WaitDurable runs an fsync meanwhile that
	// would then move the durable offset past the new end.
	release := l.holdSyncs()
	defer release()
	return l.truncateLocked(offset, true)
}

// truncateLocked does TruncateTo's work; appendMu must be held and no
// fsync may run. With writeIntent false the intent file is already on disk
// (Open is finishing a truncation).
func (l *Log) truncateLocked(offset int64, writeIntent bool) error {
	k := l.segmentForLocked(offset)
	seg := l.segs[k]
	if _, err := seg.BatchStart(offset); err != nil {
		return fmt.Errorf("log %s: truncate: %w", l.dir, err)
	}
	intent := filepath.Join(l.dir, TruncateIntentFile)
	if writeIntent {
		var payload [8]byte
		binary.BigEndian.PutUint64(payload[:], uint64(offset))
		if err := atomicfile.Write(l.fs, intent, truncateMagic, truncateVersion, payload[:]); err != nil {
			return l.transient("truncate: intent", err)
		}
	}
	// From here on the truncation is decided: a crash is finished by Open.
	doomed := append([]*segment.Segment(nil), l.segs[k+1:]...)
	l.segMu.Lock()
	err := seg.TruncateTo(offset)
	if err != nil && !errors.Is(err, segment.ErrIndexWrite) {
		l.segMu.Unlock()
		return l.failTruncate(err)
	}
	l.segs = append([]*segment.Segment(nil), l.segs[:k+1]...)
	l.end.Store(offset)
	l.setDurable(offset)
	l.segMu.Unlock()
	if err != nil {
		l.noteError(err, Degraded) // the indexes are a hint
	}
	l.signal()
	// Readers no longer see the later segments: delete them, newest first.
	for i := len(doomed) - 1; i >= 0; i-- {
		if err := doomed[i].Delete(); err != nil {
			return l.failTruncate(err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failTruncate(fmt.Errorf("sync dir: %w", err))
	}
	if err := l.fs.Remove(intent); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return l.failTruncate(fmt.Errorf("remove intent: %w", err))
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failTruncate(fmt.Errorf("sync dir: %w", err))
	}
	return nil
}

// failTruncate makes the log Failed after the intent was written: a restart
// must finish the truncation before anything else is written.
func (l *Log) failTruncate(err error) error {
	l.setFailure(err)
	return fmt.Errorf("log %s: truncate: %w", l.dir, l.failure())
}

// holdSyncs takes WaitDurable's fsync slot, waiting for a running fsync to
// finish; the returned function gives it back and wakes the waiters, who
// then look at the offsets again.
func (l *Log) holdSyncs() func() {
	for {
		l.dur.Lock()
		if !l.dur.syncing {
			l.dur.syncing = true
			done := make(chan struct{})
			l.dur.done = done
			l.dur.Unlock()
			return func() {
				l.dur.Lock()
				l.dur.syncing = false
				close(done)
				l.dur.Unlock()
			}
		}
		done := l.dur.done
		l.dur.Unlock()
		<-done
	}
}

// readTruncateIntent returns the offset of a truncation a crash
// interrupted, if its intent file is there. An unreadable intent file
// cannot have been made durable by rename (it is written whole before):
// it is reported as an error rather than guessed at.
func (l *Log) readTruncateIntent() (int64, bool, error) {
	b, err := atomicfile.ReadBytes(l.fs, filepath.Join(l.dir, TruncateIntentFile), 1<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("log %s: truncate intent: %w", l.dir, err)
	}
	v, payload, err := atomicfile.Decode(b, truncateMagic)
	if err != nil || v != truncateVersion || len(payload) != 8 {
		return 0, false, fmt.Errorf("log %s: truncate intent: version %d, %d bytes: %w", l.dir, v, len(payload), atomicfile.ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(payload)), true, nil
}

// finishTruncate completes, at Open, a truncation a crash interrupted.
// Open recovered every segment from the one holding offset, so the cut
// segment's end is known from its data.
func (l *Log) finishTruncate(offset int64) error {
	if offset < l.end.Load() {
		if err := l.truncateLocked(offset, false); err != nil {
			return err
		}
	}
	intent := filepath.Join(l.dir, TruncateIntentFile)
	if err := l.fs.Remove(intent); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("log %s: remove truncate intent: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log %s: sync dir: %w", l.dir, err)
	}
	return nil
}
