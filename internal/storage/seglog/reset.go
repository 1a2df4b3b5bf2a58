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

// ResetIntentFile is the file in the log's directory that records a reset
// in progress (ResetAt): written (temp, fsync, rename, directory fsync)
// before any segment is deleted, removed once the new empty segment is
// durable. Open finishes a reset it finds, so a crash leaves the old log
// or the new empty one, never part of the old.
const ResetIntentFile = "reset-intent"

const (
	resetMagic   = "STRI"
	resetVersion = 1
)

// ResetAt discards every batch and restarts the log empty at offset: the
// start, end and durable offsets all become offset, and the next append
// gets it (Kafka's truncateFullyAndStartAt: a raft follower given a
// snapshot restarts its log at the leader's log start offset, which may
// lie above or below its own end). It is durable on return:
//  1. write the intent file (the offset; the commit point);
//  2. under segMu held for writing, delete every segment's files
//     (forgetting their cached descriptors), create the new empty segment
//     at offset, fsync the directory;
//  3. remove the intent file and fsync the directory.
//
// Open that finds the intent file deletes every segment and creates the
// empty one (steps 2 and 3 are idempotent). A failure before the intent
// is durable changes nothing (ErrStorage); after it the log is Failed
// until a reopen finishes the reset. WaitDurable callers waiting for a
// removed offset get ErrTruncated. offset must be >= 0.
func (l *Log) ResetAt(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("log %s: reset at %d: %w", l.dir, offset, ErrOffsetOutOfRange)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if err := l.failure(); err != nil {
		return err
	}
	release := l.holdSyncs()
	defer release()
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(offset))
	if err := atomicfile.Write(l.fs, filepath.Join(l.dir, ResetIntentFile), resetMagic, resetVersion, payload[:]); err != nil {
		return l.transient("reset: intent", err)
	}
	// From here on the reset is decided: a crash is finished by Open.
	l.segMu.Lock()
	old := l.segs
	var err error
	for _, s := range old {
		if derr := s.Delete(); derr != nil && err == nil {
			err = derr
		}
	}
	var s *segment.Segment
	if err == nil {
		s, err = segment.Create(l.fs, l.dir, offset, l.config().segmentConfig(), l.config().Now())
	}
	if err == nil {
		l.segs = []*segment.Segment{s}
		l.setStart(offset)
		l.end.Store(offset)
		l.setDurable(offset)
		l.unflushed = 0
	}
	l.segMu.Unlock()
	if err != nil {
		return l.failReset(err)
	}
	l.signal()
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.failReset(fmt.Errorf("sync dir: %w", err))
	}
	if err := l.removeResetIntent(); err != nil {
		return l.failReset(err)
	}
	return nil
}

// failReset makes the log Failed after the reset intent was written: a
// restart must finish the reset before anything else is written. (A
// failure while deleting leaves the old, closed segments in the list:
// reads of them fail until the reopen.)
func (l *Log) failReset(err error) error {
	l.setFailure(err)
	return fmt.Errorf("log %s: reset: %w", l.dir, l.failure())
}

func (l *Log) removeResetIntent() error {
	if err := l.fs.Remove(filepath.Join(l.dir, ResetIntentFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("log %s: remove reset intent: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fmt.Errorf("log %s: sync dir: %w", l.dir, err)
	}
	return nil
}

// readResetIntent returns the offset of a reset a crash interrupted, if
// its intent file is there (an unreadable one is an error, as for a
// truncation's).
func (l *Log) readResetIntent() (int64, bool, error) {
	b, err := atomicfile.ReadBytes(l.fs, filepath.Join(l.dir, ResetIntentFile), 1<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("log %s: reset intent: %w", l.dir, err)
	}
	v, payload, err := atomicfile.Decode(b, resetMagic)
	if err != nil || v != resetVersion || len(payload) != 8 || int64(binary.BigEndian.Uint64(payload)) < 0 {
		return 0, false, fmt.Errorf("log %s: reset intent: version %d, %d bytes: %w", l.dir, v, len(payload), atomicfile.ErrCorrupt)
	}
	return int64(binary.BigEndian.Uint64(payload)), true, nil
}

// finishReset deletes, at Open, every segment file of a log whose reset
// a crash interrupted (a truncation intent too: the reset supersedes it),
// and returns the segment bases left: none. Open then creates the empty
// segment at the reset's offset and removes the intent.
func (l *Log) finishReset(bases []int64) error {
	for _, b := range bases {
		for _, p := range segmentFiles(l.dir, b) {
			if err := l.fs.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("log %s: finish reset: %w", l.dir, err)
			}
		}
	}
	if err := l.fs.Remove(filepath.Join(l.dir, TruncateIntentFile)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("log %s: finish reset: %w", l.dir, err)
	}
	return nil
}

func segmentFiles(dir string, base int64) []string {
	a, b, c := segment.FileNames(dir, base)
	return []string{a, b, c}
}
