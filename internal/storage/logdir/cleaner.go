package logdir

import (
	"context"
	"errors"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// CleanerOptions configure the log cleaner (StartCleaner); zero values take
// Kafka's defaults.
type CleanerOptions struct {
	Threads             int           // log.cleaner.threads (1)
	DedupeBufferBytes   int64         // log.cleaner.dedupe.buffer.size, shared by the threads (128 MiB)
	IOMaxBytesPerSecond float64       // log.cleaner.io.max.bytes.per.second (<= 0: unlimited)
	Backoff             time.Duration // log.cleaner.backoff.ms: how often logs are checked (15 s)
	// Bound is the offset a log may be cleaned up to (exclusive): nil is
	// the log end offset, the high watermark of a single replica. The
	// replicated log gives the offset every replica has; transactions,
	// the last stable offset.
	Bound func(p Partition, l *seglog.Log) int64
	Now   func() time.Time // time.Now when nil
}

// CleanerState is one compacted partition's cleaning, for views.
type CleanerState struct {
	Partition
	cleaner.Progress
	Running      bool
	Passes       int64
	LastClean    time.Time // when the last pass ended
	LastDuration time.Duration
	LastBytesIn  int64
	LastBytesOut int64
	LastErr      string // the last pass's error, if it failed
}

// CleanerMetrics are the cleaner's totals since the directory opened.
type CleanerMetrics struct {
	Passes, Failures, BytesIn, BytesOut, RecordsRemoved int64
}

// cleanerRun is the running cleaner's state, owned by the Dir.
type cleanerRun struct {
	mu      sync.Mutex
	cancel  context.CancelFunc // nil: not started
	wg      sync.WaitGroup     // the scheduler and the workers
	opts    CleanerOptions
	running map[Partition]bool
	last    map[Partition]*CleanerState

	passes, failures, bytesIn, bytesOut, removed atomic.Int64
}

// StartCleaner starts the log cleaner: a scheduler that every Backoff
// picks the compacted logs that are due (dirty ratio, max.compaction.lag.ms),
// most dirty first, and Threads workers that clean them, each with its own
// key map of DedupeBufferBytes/Threads. Close stops them (a running pass is
// abandoned: its .cleaned file is removed, nothing changed). Starting twice
// is a no-op.
func (d *Dir) StartCleaner(opts CleanerOptions) {
	if opts.Threads <= 0 {
		opts.Threads = 1
	}
	if opts.DedupeBufferBytes <= 0 {
		opts.DedupeBufferBytes = 128 << 20
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 15 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Bound == nil {
		opts.Bound = func(_ Partition, l *seglog.Log) int64 { return l.EndOffset() }
	}
	c := &d.cln
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cancel != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel, c.opts = cancel, opts
	c.running, c.last = map[Partition]bool{}, map[Partition]*CleanerState{}
	work := make(chan Partition)
	throttle := cleaner.NewThrottle(opts.IOMaxBytesPerSecond)
	for range opts.Threads {
		cl := cleaner.New(d.fs, cleaner.Options{DedupeBufferBytes: opts.DedupeBufferBytes / int64(opts.Threads), Throttle: throttle, Now: opts.Now})
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				select {
				case <-ctx.Done():
					return
				case p := <-work:
					d.cleanOne(ctx, cl, p)
				}
			}
		}()
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(opts.Backoff)
		defer t.Stop()
		for {
			d.rollLagging()
			for _, p := range d.dueLogs() {
				select {
				case <-ctx.Done():
					return
				case work <- p:
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// stopCleaner stops the cleaner and waits for its goroutines.
func (d *Dir) stopCleaner() {
	c := &d.cln
	c.mu.Lock()
	cancel := c.cancel
	c.mu.Unlock()
	if cancel != nil {
		cancel()
		c.wg.Wait()
	}
}

// rollLagging rolls the active segment of every compacted log whose
// max.compaction.lag.ms has passed since the segment was created, so that
// the cleaner may clean it (it never touches the active segment).
func (d *Dir) rollLagging() {
	now := d.cln.opts.Now()
	for _, l := range d.openLogs() {
		cmp := l.Compaction()
		if !cmp.Enabled || cmp.MaxLag <= 0 || cmp.MaxLag == time.Duration(math.MaxInt64) {
			continue
		}
		if _, err := l.RollIfOlder(now.Add(-cmp.MaxLag)); err != nil && !errors.Is(err, seglog.ErrClosed) {
			d.logger.Warn("roll for max.compaction.lag.ms failed", "dir", l.Dir(), "err", err)
		}
	}
}

// dueLogs returns the compacted logs a pass should run on, most dirty
// first, and marks them running.
func (d *Dir) dueLogs() []Partition {
	c := &d.cln
	var due []CleanerState
	for _, st := range d.inspect() {
		if st.Due && !st.Running {
			due = append(due, st)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].DirtyRatio > due[j].DirtyRatio })
	out := make([]Partition, 0, len(due))
	c.mu.Lock()
	for _, st := range due {
		c.running[st.Partition] = true
		out = append(out, st.Partition)
	}
	c.mu.Unlock()
	return out
}

// inspect returns the state of every open compacted log.
func (d *Dir) inspect() []CleanerState {
	c := &d.cln
	d.mu.Lock()
	logs := make(map[Partition]*seglog.Log, len(d.logs))
	for p, l := range d.logs {
		if l.Compaction().Enabled {
			logs[p] = l
		}
	}
	d.mu.Unlock()
	c.mu.Lock()
	opts := c.opts
	c.mu.Unlock()
	if opts.Bound == nil {
		opts.Bound = func(_ Partition, l *seglog.Log) int64 { return l.EndOffset() }
		opts.Now = time.Now
	}
	out := make([]CleanerState, 0, len(logs))
	for p, l := range logs {
		pr, err := cleaner.Inspect(d.fs, l, opts.Bound(p, l), opts.Now())
		if err != nil {
			continue // closed or deleted meanwhile
		}
		st := CleanerState{Partition: p, Progress: pr}
		c.mu.Lock()
		if last := c.last[p]; last != nil {
			st.Passes, st.LastClean, st.LastDuration = last.Passes, last.LastClean, last.LastDuration
			st.LastBytesIn, st.LastBytesOut, st.LastErr = last.LastBytesIn, last.LastBytesOut, last.LastErr
		}
		st.Running = c.running[p]
		c.mu.Unlock()
		out = append(out, st)
	}
	return out
}

// cleanOne runs one pass on p's log and records how it went; a partial
// pass leaves the log due, so the scheduler picks it again.
func (d *Dir) cleanOne(ctx context.Context, cl *cleaner.Cleaner, p Partition) {
	c := &d.cln
	defer func() {
		c.mu.Lock()
		delete(c.running, p)
		c.mu.Unlock()
	}()
	l, ok := d.Log(p)
	if !ok {
		return
	}
	res, err := cl.Clean(ctx, l, c.opts.Bound(p, l))
	if ctx.Err() != nil || errors.Is(err, seglog.ErrClosed) {
		return // stopping, or the log went away
	}
	c.passes.Add(1)
	c.bytesIn.Add(res.BytesIn)
	c.bytesOut.Add(res.BytesOut)
	c.removed.Add(res.Removed)
	c.mu.Lock()
	st := c.last[p]
	if st == nil {
		st = &CleanerState{Partition: p}
		c.last[p] = st
	}
	st.Passes++
	st.LastClean, st.LastDuration = c.opts.Now(), res.Duration
	st.LastBytesIn, st.LastBytesOut, st.LastErr = res.BytesIn, res.BytesOut, ""
	if err != nil {
		st.LastErr = err.Error()
	}
	c.mu.Unlock()
	if err != nil && !errors.Is(err, seglog.ErrSegmentsChanged) {
		c.failures.Add(1)
		d.logger.Error("log cleaning failed", "dir", l.Dir(), "err", err)
		return
	}
	if res.GroupsOut > 0 {
		d.logger.Info("cleaned log", "dir", l.Dir(), "segments", res.SegmentsIn, "into", res.GroupsOut,
			"bytes_in", res.BytesIn, "bytes_out", res.BytesOut, "records_removed", res.Removed,
			"keys", res.Keys, "partial", res.Partial, "took", res.Duration)
	}
}

// CleanerStates returns the cleaning state of every compacted partition,
// sorted by topic and partition.
func (d *Dir) CleanerStates() []CleanerState {
	out := d.inspect()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition.Partition < out[j].Partition.Partition
	})
	return out
}

// CleanerMetrics returns the cleaner's totals.
func (d *Dir) CleanerMetrics() CleanerMetrics {
	c := &d.cln
	return CleanerMetrics{Passes: c.passes.Load(), Failures: c.failures.Load(), BytesIn: c.bytesIn.Load(),
		BytesOut: c.bytesOut.Load(), RecordsRemoved: c.removed.Load()}
}
