package seglog

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/storage/segment"
)

// Compaction is the compact half of cleanup.policy and its settings, read
// by the log cleaner (package cleaner); the log itself only replaces
// segments when asked (ReplaceSegments).
type Compaction struct {
	Enabled           bool          // cleanup.policy holds compact
	AlsoDelete        bool          // cleanup.policy holds delete too
	MinCleanableRatio float64       // min.cleanable.dirty.ratio
	MinLag            time.Duration // min.compaction.lag.ms
	MaxLag            time.Duration // max.compaction.lag.ms
	DeleteRetention   time.Duration // delete.retention.ms
}

// Compaction returns the log's compaction settings.
func (l *Log) Compaction() Compaction { return l.config().Compaction }

// ErrSegmentsChanged means the segments a cleaning pass read were deleted
// or changed (retention, DeleteRecords, truncation, a closed log) before
// its result could replace them: the pass is dropped, nothing changed.
var ErrSegmentsChanged = errors.New("log: segments changed under the cleaner")

// File name suffixes of a segment replacement (see the package doc).
const (
	CleanedSuffix = ".cleaned"
	SwapSuffix    = ".swap"
)

// SealedSegment describes a sealed segment for the cleaner.
type SealedSegment struct {
	Base int64
	// End is the base of the next segment: every offset of this one is
	// below it (compaction leaves gaps, so the last batch may end sooner).
	End          int64
	Size         int64
	MaxTimestamp int64 // record.NoTimestamp when unknown
	Created      time.Time
}

// SealedSegments lists every segment but the active one, oldest first.
func (l *Log) SealedSegments() ([]SealedSegment, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	if len(l.segs) == 0 {
		return nil, ErrClosed
	}
	out := make([]SealedSegment, 0, len(l.segs)-1)
	for i, s := range l.segs[:len(l.segs)-1] {
		ts, err := s.MaxTimestamp()
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", l.dir, err)
		}
		out = append(out, SealedSegment{Base: s.Base(), End: l.segs[i+1].Base(), Size: s.Size(), MaxTimestamp: ts, Created: s.Created()})
	}
	return out, nil
}

// ReadSealed returns whole batches of the sealed segment based at base,
// from the one holding offset on, about maxBytes of them (at least one);
// nil when none is left. ErrSegmentsChanged when the segment is gone.
func (l *Log) ReadSealed(base, offset int64, maxBytes int) ([]byte, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	for _, s := range l.segs[:max(len(l.segs)-1, 0)] {
		if s.Base() == base {
			data, err := s.Read(offset, maxBytes, true, true)
			if err != nil {
				return nil, fmt.Errorf("log %s: %w", l.dir, err)
			}
			return data, nil
		}
	}
	return nil, fmt.Errorf("log %s: segment %d: %w", l.dir, base, ErrSegmentsChanged)
}

func cleanedName(dir string, base, end int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d-%020d.log%s", base, end, CleanedSuffix))
}

func swapName(dir string, base, end int64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d-%020d.log%s", base, end, SwapSuffix))
}

// SwapHook, when set (tests only), runs at each step of ReplaceSegments
// with the step's name; a crash test snapshots the filesystem there.
var SwapHook func(step string)

func swapStep(step string) {
	if SwapHook != nil {
		SwapHook(step)
	}
}

// ReplaceSegments replaces the sealed segments [base, end) — a run of
// whole segments, the first based at base, the one after it at end — by
// one segment based at base holding what write writes: whole batches in
// increasing offset order, every offset in [base, end). The steps, each
// safe to cut (package doc, "Replacing segments"): write and fsync
// <base>-<end>.log.cleaned; rename it to .swap and fsync the directory
// (the commit point); delete the old segments' files; rename the .swap to
// <base>.log and fsync the directory; then rebuild the new segment's
// indexes. Appends are never blocked by write; they wait only for the
// renames. ErrSegmentsChanged when the run changed meanwhile.
func (l *Log) ReplaceSegments(base, end int64, write func(w io.Writer) error) error {
	run, err := l.findRun(base, end)
	if err != nil {
		return err
	}
	cleaned := cleanedName(l.dir, base, end)
	if err := l.writeCleaned(cleaned, write); err != nil {
		l.fs.Remove(cleaned)
		return err
	}
	swapStep("cleaned-written")

	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	now, err := l.findRun(base, end)
	if err == nil && (l.closed || len(now) != len(run)) {
		err = fmt.Errorf("log %s: %w", l.dir, ErrSegmentsChanged)
	}
	for i := 0; err == nil && i < len(run); i++ {
		if now[i] != run[i] {
			err = fmt.Errorf("log %s: %w", l.dir, ErrSegmentsChanged)
		}
	}
	if err != nil {
		l.fs.Remove(cleaned)
		return err
	}
	swap := swapName(l.dir, base, end)
	if err := l.fs.Rename(cleaned, swap); err != nil {
		l.fs.Remove(cleaned)
		return fmt.Errorf("log %s: swap: %w", l.dir, err)
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		// Whether the rename is durable is unknown: a restart finishes
		// or rolls back; until then the log takes no writes.
		l.setFailure(err)
		return fmt.Errorf("log %s: swap: %w", l.dir, l.failure())
	}
	swapStep("swap-renamed")

	l.segMu.Lock()
	seg, err := l.finishSwap(base, end, run)
	if err == nil {
		i := l.segmentForLocked(base)
		l.segs = append(l.segs[:i:i], append([]*segment.Segment{seg}, l.segs[i+len(run):]...)...)
	}
	l.segMu.Unlock()
	if err != nil {
		l.setFailure(err)
		return fmt.Errorf("log %s: swap: %w", l.dir, l.failure())
	}
	swapStep("swapped")
	// An index is a hint: a failure to write it leaves it in memory.
	if err := seg.LoadIndexes(); err != nil && !errors.Is(err, segment.ErrIndexWrite) {
		return fmt.Errorf("log %s: cleaned segment %d: %w", l.dir, base, err)
	}
	return nil
}

// findRun returns the segments [base, end), never the active one.
func (l *Log) findRun(base, end int64) ([]*segment.Segment, error) {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	var run []*segment.Segment
	for i, s := range l.segs {
		if s.Base() < base {
			continue
		}
		if s.Base() == end && len(run) > 0 && run[0].Base() == base {
			return run, nil
		}
		if s.Base() > end || i == len(l.segs)-1 {
			break
		}
		run = append(run, s)
	}
	return nil, fmt.Errorf("log %s: no sealed segments [%d, %d): %w", l.dir, base, end, ErrSegmentsChanged)
}

func (l *Log) writeCleaned(path string, write func(w io.Writer) error) error {
	f, err := l.fs.Create(path)
	if err != nil {
		return fmt.Errorf("log %s: cleaned segment: %w", l.dir, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	err = write(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("log %s: cleaned segment: %w", l.dir, err)
	}
	return nil
}

// finishSwap deletes the old segments' files (old is nil at Open: every
// segment file based in [base, end)), renames the swap file to <base>.log,
// fsyncs the directory and opens the new segment. Every step is idempotent,
// so Open redoes it after a cut.
func (l *Log) finishSwap(base, end int64, old []*segment.Segment) (*segment.Segment, error) {
	for _, s := range old {
		if err := s.Delete(); err != nil {
			return nil, err
		}
	}
	if old == nil {
		if err := l.removeSegmentFiles(base, end); err != nil {
			return nil, err
		}
	}
	swapStep("old-deleted")
	logPath, _, _ := segment.FileNames(l.dir, base)
	if err := l.fs.Rename(swapName(l.dir, base, end), logPath); err != nil {
		return nil, fmt.Errorf("rename swap: %w", err)
	}
	swapStep("swap-renamed-to-log")
	if err := l.fs.SyncDir(l.dir); err != nil {
		return nil, fmt.Errorf("sync dir: %w", err)
	}
	return segment.Open(l.fs, l.dir, base, l.config().segmentConfig(), segment.OpenOptions{NextOffset: end})
}

// removeSegmentFiles removes every file of the segments based in [base,
// end): their data and whatever index kinds they have.
func (l *Log) removeSegmentFiles(base, end int64) error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return err
	}
	for _, n := range names {
		stem, ext, ok := strings.Cut(n, ".")
		if !ok || len(stem) != 20 || strings.Contains(ext, ".") {
			continue // not <base>.<kind>: swap and cleaned files have two dots
		}
		b, err := strconv.ParseInt(stem, 10, 64)
		if err != nil || b < base || b >= end {
			continue
		}
		if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}

// recoverSwaps runs at Open before the segments are listed: a .cleaned
// file is a pass cut before its commit point (removed: the old segments
// are whole); a .swap file is a committed replacement (finished: the old
// segments' files go, the swap becomes <base>.log).
func (l *Log) recoverSwaps() error {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return fmt.Errorf("log %s: list: %w", l.dir, err)
	}
	changed := false
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".log"+CleanedSuffix):
			if err := l.fs.Remove(filepath.Join(l.dir, n)); err != nil {
				return fmt.Errorf("log %s: remove %s: %w", l.dir, n, err)
			}
			changed = true
		case strings.HasSuffix(n, ".log"+SwapSuffix):
			var base, end int64
			if _, err := fmt.Sscanf(n, "%020d-%020d.log", &base, &end); err != nil || base < 0 || end <= base {
				return fmt.Errorf("log %s: swap file %s: bad name", l.dir, n)
			}
			seg, err := l.finishSwap(base, end, nil)
			if err != nil {
				return fmt.Errorf("log %s: finish swap %s: %w", l.dir, n, err)
			}
			seg.Close()
			changed = true
		}
	}
	if changed {
		if err := l.fs.SyncDir(l.dir); err != nil {
			return fmt.Errorf("log %s: sync dir: %w", l.dir, err)
		}
	}
	return nil
}

// SegmentBytes returns segment.bytes: the cleaner merges small segments up
// to it.
func (l *Log) SegmentBytes() int64 { return l.config().SegmentBytes }

// MaxDecompressedBytes returns the cap on one batch's decompressed size.
func (l *Log) MaxDecompressedBytes() int { return l.config().MaxDecompressedBytes }

// RollIfOlder rolls the active segment when it holds data and was created
// before t. max.compaction.lag.ms needs it: only sealed segments are
// cleaned, so a quiet compacted log would otherwise keep its updates
// uncompacted until segment.ms. It reports whether it rolled.
func (l *Log) RollIfOlder(t time.Time) (bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return false, ErrClosed
	}
	active := l.segs[len(l.segs)-1]
	if active.Size() == 0 || !active.Created().Before(t) {
		return false, nil
	}
	return true, l.rollLocked(l.config().Now())
}
