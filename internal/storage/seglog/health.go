package seglog

import (
	"errors"
	"fmt"
	"path/filepath"
	"syscall"

	"github.com/stromhq/strom/internal/storage/segment"
)

// ErrStorage marks a write that failed for a reason that may pass: the disk
// is full, the process is out of file descriptors, a file could not be
// created or opened. Nothing of the failed append was kept (a half-written
// batch is truncated away), nothing acknowledged is at risk, and the next
// append tries again (a failed roll is redone). Contrast ErrFailed.
var ErrStorage = errors.New("log: storage error; nothing was written, retry")

// Health is a log's ability to take writes.
type Health int32

const (
	// Healthy: the last write succeeded.
	Healthy Health = iota
	// Degraded: the last write failed with ErrStorage (a full disk, no
	// file descriptors), or the log was opened on a disk where recovery
	// could not write its index files. Reads are served; every append
	// retries, and the first one that succeeds (or a Probe) makes the log
	// Healthy again.
	Degraded
	// Failed: an fsync of the data failed (ErrFailed). Writes are refused
	// until the log is reopened, which recovers it; reads are served.
	Failed
)

func (h Health) String() string {
	switch h {
	case Healthy:
		return "ok"
	case Degraded:
		return "degraded"
	case Failed:
		return "failed"
	}
	return fmt.Sprintf("Health(%d)", int32(h))
}

// ErrorKinds are the values ErrorKind returns, in a fixed order.
var ErrorKinds = [...]string{"enospc", "emfile", "eperm", "erofs", "eio", "other"}

// ErrorKind names the operating system's cause of a storage error, for
// metrics: "enospc" (disk full), "emfile" (EMFILE or ENFILE: no file
// descriptors), "eperm" (EPERM or EACCES), "erofs", "eio", or "other".
func ErrorKind(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "enospc"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "emfile"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return "eperm"
	case errors.Is(err, syscall.EROFS):
		return "erofs"
	case errors.Is(err, syscall.EIO):
		return "eio"
	}
	return "other"
}

func kindIndex(err error) int {
	k := ErrorKind(err)
	for i, s := range ErrorKinds {
		if s == k {
			return i
		}
	}
	return len(ErrorKinds) - 1
}

// Health returns the log's state and, unless Healthy, the error that put it
// there.
func (l *Log) Health() (Health, error) {
	l.hl.Lock()
	defer l.hl.Unlock()
	return l.hl.state, l.hl.err
}

// OnHealthChange registers fn, called once for each change of the log's
// Health (not for every failed append) on the goroutine that saw it,
// possibly with the log's append lock held: fn must be quick and must not
// call the log. The log directory uses it to log one line per change.
func (l *Log) OnHealthChange(fn func(h Health, err error)) {
	l.hl.Lock()
	l.hl.hook = fn
	l.hl.Unlock()
}

// StorageErrors returns how many storage errors the log met, by ErrorKind,
// since it was opened.
func (l *Log) StorageErrors() map[string]int64 {
	out := make(map[string]int64, len(ErrorKinds))
	for i, k := range ErrorKinds {
		if n := l.errCounts[i].Load(); n > 0 {
			out[k] = n
		}
	}
	return out
}

// noteError counts err and moves the log to h, unless it is already in a
// worse state (Failed is never left while the log is open).
func (l *Log) noteError(err error, h Health) {
	l.errCounts[kindIndex(err)].Add(1)
	l.setHealth(h, err)
}

// noteOK makes a Degraded log Healthy after a write succeeded.
func (l *Log) noteOK() {
	if Health(l.healthNow.Load()) != Degraded {
		return
	}
	l.setHealth(Healthy, nil)
}

func (l *Log) setHealth(h Health, err error) {
	l.hl.Lock()
	if l.hl.state == Failed || (l.hl.state == h && h == Healthy) {
		l.hl.Unlock()
		return
	}
	changed := l.hl.state != h
	l.hl.state, l.hl.err = h, err
	l.healthNow.Store(int32(h))
	hook := l.hl.hook
	l.hl.Unlock()
	if changed && hook != nil {
		hook(h, err)
	}
}

// transient records a transient storage error and returns it wrapped in
// ErrStorage.
func (l *Log) transient(what string, err error) error {
	l.noteError(err, Degraded)
	return fmt.Errorf("log %s: %s: %w: %w", l.dir, what, ErrStorage, err)
}

// classify turns an error from a segment write path into the log's error:
// a failed fsync of data is sticky (ErrFailed), anything else transient
// (ErrStorage).
func (l *Log) classify(what string, err error) error {
	if errors.Is(err, segment.ErrSync) {
		l.setFailure(err)
		return fmt.Errorf("log %s: %s: %w", l.dir, what, l.failure())
	}
	return l.transient(what, err)
}

// ProbeFile is the name of the file Probe writes and removes in the log's
// directory. It never holds data: the log directory removes a leftover one
// at start, whatever its size.
const ProbeFile = "strom-probe.tmp"

const probeBytes = 4096

// Probe checks whether a Degraded log can write again, without waiting for
// a producer: it writes the active segment's pending index entries and a
// small probe file (then removed). When both succeed the log is Healthy.
// It does nothing for a Healthy or Failed log. The log directory's Run
// calls it periodically; its failures are not counted as storage errors.
func (l *Log) Probe() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if Health(l.healthNow.Load()) != Degraded {
		return nil
	}
	active := l.segs[len(l.segs)-1]
	if err := active.SyncIndexes(); err != nil {
		return fmt.Errorf("log %s: probe: %w", l.dir, err)
	}
	path := filepath.Join(l.dir, ProbeFile)
	f, err := l.fs.Create(path)
	if err != nil {
		return fmt.Errorf("log %s: probe: %w", l.dir, err)
	}
	_, err = f.Write(make([]byte, probeBytes))
	f.Close()
	if rerr := l.fs.Remove(path); err == nil {
		err = rerr
	}
	if err != nil {
		return fmt.Errorf("log %s: probe: %w", l.dir, err)
	}
	l.noteOK()
	return nil
}
