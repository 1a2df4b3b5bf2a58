package seglog

import (
	"sync/atomic"
	"time"
)

// Watch hooks for the data directory (package logdir), whose periodic
// passes visit only the logs that need them: a broker with 10,000 idle
// partitions must not walk 10,000 logs every second.
//
//   - Checkpoint: OnCheckpointDue's function is called when the durable
//     offset or the start offset moves (any move: they also go back, by a
//     truncation or a reset) for the first time since the last
//     CheckpointOffsets. CheckpointOffsets clears that mark before it reads
//     the offsets, so a move that races the read is either read or calls
//     the function again: a log whose offsets moved is never left out.
//   - flush.ms: OnFlushPending's function is called when the log has
//     records appended and not flushed while flush.ms is set, for the
//     first time since the last FlushPending that said it had none.
//     FlushPending flushes when due and says whether the log must be
//     visited again; the mark is kept under appendMu, which every append
//     holds, so no append is missed between its answer and the next one.
//
// The functions run on whatever goroutine moved the offsets or appended,
// possibly with the log's locks held: they must only take note (no call
// into this log, nothing that blocks).
type watch struct {
	ckptDue  atomic.Bool // the offsets moved since CheckpointOffsets
	onCkpt   atomic.Pointer[func()]
	flushSet bool // under appendMu: OnFlushPending's function was called and FlushPending has not answered false since
	onFlush  atomic.Pointer[func()]
}

// OnCheckpointDue sets fn (see watch): called when the durable or start
// offset moves after the last CheckpointOffsets.
func (l *Log) OnCheckpointDue(fn func()) { l.w.onCkpt.Store(&fn) }

// CheckpointOffsets returns the durable offset (the recovery point) and the
// start offset, and re-arms OnCheckpointDue's function: the next move calls
// it.
func (l *Log) CheckpointOffsets() (durable, start int64) {
	l.w.ckptDue.Store(false)
	return l.durableEnd.Load(), l.start.Load()
}

// checkpointDue notes a move of the durable or start offset, after it was
// stored.
func (l *Log) checkpointDue() {
	if l.w.ckptDue.Load() || !l.w.ckptDue.CompareAndSwap(false, true) {
		return // noted already since the last CheckpointOffsets
	}
	if fn := l.w.onCkpt.Load(); fn != nil {
		(*fn)()
	}
}

func (l *Log) setDurable(v int64) {
	l.durableEnd.Store(v)
	l.checkpointDue()
}

func (l *Log) advanceDurable(v int64) {
	advance(&l.durableEnd, v)
	l.checkpointDue()
}

func (l *Log) setStart(v int64) {
	l.start.Store(v)
	l.checkpointDue()
}

func (l *Log) advanceStart(v int64) {
	advance(&l.start, v)
	l.checkpointDue()
}

// OnFlushPending sets fn (see watch): called when records wait for
// flush.ms and FlushPending has not been told so yet. A log that already
// has such records when fn is set calls it at once.
func (l *Log) OnFlushPending(fn func()) {
	l.w.onFlush.Store(&fn)
	l.appendMu.Lock()
	l.w.flushSet = false
	l.flushPendingLocked()
	l.appendMu.Unlock()
}

// flushPendingLocked calls OnFlushPending's function when records wait
// for flush.ms and it has not been called since FlushPending last said
// there were none; appendMu must be held.
func (l *Log) flushPendingLocked() {
	if l.w.flushSet || l.closed || l.unflushed == 0 || l.config().FlushMs <= 0 {
		return
	}
	if fn := l.w.onFlush.Load(); fn != nil {
		l.w.flushSet = true
		(*fn)()
	}
}

// FlushPending applies flush.ms (FlushIfDue) and reports whether the log
// still has records waiting for it, to be visited again. Once it says
// false, the next append that leaves records waiting calls OnFlushPending's
// function.
func (l *Log) FlushPending(now time.Time) (again bool, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	fms := l.config().FlushMs
	if !l.closed && l.unflushed > 0 && fms > 0 && now.Sub(l.lastFlush) >= fms {
		err = l.flushLocked()
	}
	again = !l.closed && l.unflushed > 0 && fms > 0
	if !again {
		l.w.flushSet = false
	}
	return again, err
}
