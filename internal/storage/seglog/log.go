package seglog

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/fdcache"
	"github.com/stromhq/strom/internal/storage/segment"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Errors returned by the log. Callers (the protocol handlers) map them to
// Kafka error codes; record's sentinel errors (record.ErrCorrupt,
// record.ErrInvalidRecord, record.ErrTooLarge, record.ErrUnsupportedMagic)
// pass through wrapped from Append.
var (
	ErrOffsetOutOfRange = errors.New("log: offset out of range")
	ErrBatchTooLarge    = errors.New("log: batch larger than max.message.bytes")
	ErrEmptyAppend      = errors.New("log: nothing to append")
	// ErrFailed means an fsync of the data failed: whether earlier writes
	// reached the disk is unknown, so the log refuses further writes until
	// reopened (and recovered) — the lesson of PostgreSQL's fsyncgate. It
	// is the only sticky error; see ErrStorage for the transient ones.
	ErrFailed = errors.New("log: failed after an fsync error; reopen to recover")
	ErrClosed = errors.New("log: closed")
)

// Config holds a partition's storage settings, named after Kafka's topic
// configs. Zero values take Kafka's defaults (see withDefaults).
type Config struct {
	SegmentBytes       int64         // segment.bytes (1 GiB)
	SegmentMs          time.Duration // segment.ms (7 days)
	IndexIntervalBytes int64         // index.interval.bytes (4096)
	IndexMaxBytes      int64         // segment.index.bytes (10 MiB)
	RetentionMs        time.Duration // retention.ms (7 days); < 0: forever
	RetentionBytes     int64         // retention.bytes; <= 0: unlimited
	FlushMessages      int64         // flush.messages; <= 0: never by count
	FlushMs            time.Duration // flush.ms; <= 0: never by time
	MaxBatchBytes      int           // max.message.bytes (1 MiB + 12)
	// MaxDecompressedBytes caps the decompressed size of one batch while
	// validating it (a decompression-bomb guard); default 64 MiB.
	MaxDecompressedBytes int
	// LogAppendTime stamps batches with the broker's clock
	// (message.timestamp.type=LogAppendTime).
	LogAppendTime bool
	// SkipVerifyOnRead turns off the CRC check of every batch served.
	SkipVerifyOnRead bool
	// Compaction is cleanup.policy's compact half and its settings (the
	// cleaner reads them; see package cleaner).
	Compaction Compaction
	// Compression is compression.type (Recompress).
	Compression Compression
	// Now is the clock (time.Now by default); tests inject their own.
	Now func() time.Time
	// Files is not a topic config: the data directory's cache of sealed
	// segments' descriptors (nil: a sealed segment opens its file for each
	// read). Read by Open and Create; SetConfig keeps the log's.
	Files *fdcache.Cache
}

func (c Config) segmentConfig() segment.Config {
	return segment.Config{IndexIntervalBytes: c.IndexIntervalBytes, IndexMaxBytes: c.IndexMaxBytes, Files: c.Files}
}

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 1 << 30
	}
	if c.SegmentMs <= 0 {
		c.SegmentMs = 7 * 24 * time.Hour
	}
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	if c.IndexMaxBytes <= 0 {
		c.IndexMaxBytes = 10 << 20
	}
	if c.RetentionMs == 0 {
		c.RetentionMs = 7 * 24 * time.Hour
	}
	if c.MaxBatchBytes <= 0 {
		c.MaxBatchBytes = 1<<20 + 12
	}
	if c.MaxDecompressedBytes <= 0 {
		c.MaxDecompressedBytes = 64 << 20
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// State is what the log directory's checkpoint files say about a log.
type State struct {
	// RecoveryPoint: every offset below it was fsynced before the last
	// checkpoint. Recovery re-validates only the segments after it.
	RecoveryPoint int64
	// LogStartOffset is the first offset readers may see (advanced by
	// retention and DeleteRecords).
	LogStartOffset int64
	// Clean says the previous process closed the log cleanly, so its files
	// are trusted without scanning.
	Clean bool
	// TrustCache says the previous process was killed (not Clean) while
	// the machine kept running since it wrote the log (same boot): the
	// page cache then holds every write that completed, so recovery walks
	// batch headers (sizes, offsets) to rebuild the indexes and cut a
	// write torn by the kill, without reading record data or computing
	// CRCs. After a power loss or an OS crash (another boot) recovery
	// validates every batch.
	TrustCache bool
}

// Log is one partition's log: a sequence of segments in a directory.
type Log struct {
	fs   vfs.FS
	dir  string
	cfgp atomic.Pointer[Config] // replaced whole by SetConfig

	// appendMu serializes writers: Append, roll, retention, close.
	appendMu   sync.Mutex
	unflushed  int64 // records appended since the last flush
	lastFlush  time.Time
	closed     bool
	segMu      sync.RWMutex // guards segs; readers hold it for reading
	segs       []*segment.Segment
	start      atomic.Int64 // log start offset
	end        atomic.Int64 // log end offset (next offset to assign)
	durableEnd atomic.Int64 // every offset below it is fsynced

	dur struct {
		sync.Mutex
		syncing bool
		done    chan struct{} // closed when the running sync finishes
		err     error         // sticky fsync failure
	}

	// hl is the log's Health (health.go); healthNow mirrors hl.state for a
	// lock-free check on every append.
	hl struct {
		sync.Mutex
		state Health
		err   error
		hook  func(Health, error)
	}
	healthNow atomic.Int32
	errCounts [len(ErrorKinds)]atomic.Int64

	sig struct {
		sync.Mutex
		ch    chan struct{}
		taken bool // ch was handed out by Changed since it was made
	}

	w watch // the data directory's hooks (watch.go)
}

// Open opens (creating if needed) the log in dir. With st.Clean the files are
// trusted; otherwise every segment from the one holding st.RecoveryPoint on is
// re-validated and truncated at the first bad byte.
func Open(fs vfs.FS, dir string, cfg Config, st State) (*Log, error) {
	cfg = cfg.withDefaults()
	if _, err := fs.Stat(dir); err != nil {
		// A new partition directory is durable only once its parent is synced.
		if err := fs.MkdirAll(dir); err != nil {
			return nil, fmt.Errorf("log %s: mkdir: %w", dir, err)
		}
		if err := fs.SyncDir(filepath.Dir(dir)); err != nil {
			return nil, fmt.Errorf("log %s: sync parent: %w", dir, err)
		}
	}
	l := &Log{fs: fs, dir: dir, lastFlush: cfg.Now()}
	l.cfgp.Store(&cfg)
	l.sig.ch = make(chan struct{})
	if err := l.recoverSwaps(); err != nil {
		return nil, err
	}
	bases, err := l.listSegments()
	if err != nil {
		return nil, err
	}
	// A reset a crash interrupted (reset.go): every old segment goes, the
	// log restarts empty at the reset's offset.
	reset, hasReset, err := l.readResetIntent()
	if err != nil {
		return nil, err
	}
	if hasReset {
		if err := l.finishReset(bases); err != nil {
			return nil, err
		}
		bases = nil
		st = State{RecoveryPoint: reset, LogStartOffset: reset}
	}
	// A truncation a crash interrupted is finished below; recovery must
	// first read every segment from the one it cut.
	trunc, hasTrunc, err := l.readTruncateIntent()
	if err != nil {
		return nil, err
	}
	if hasTrunc {
		st.Clean = false
		st.RecoveryPoint = min(st.RecoveryPoint, trunc)
	}
	segCfg := cfg.segmentConfig()
	if len(bases) == 0 {
		base := max(st.LogStartOffset, 0)
		s, err := segment.Create(fs, dir, base, segCfg, cfg.Now())
		if err != nil {
			return nil, fmt.Errorf("log %s: %w", dir, err)
		}
		if err := fs.SyncDir(dir); err != nil {
			s.Close()
			return nil, fmt.Errorf("log %s: sync dir: %w", dir, err)
		}
		l.segs = []*segment.Segment{s}
		if hasReset {
			if err := l.removeResetIntent(); err != nil {
				s.Close()
				return nil, err
			}
		}
	} else if err := l.openSegments(bases, segCfg, st); err != nil {
		for _, s := range l.segs {
			s.Close()
		}
		return nil, err
	}
	l.end.Store(l.segs[len(l.segs)-1].NextOffset())
	if hasTrunc {
		if err := l.finishTruncate(trunc); err != nil {
			for _, s := range l.segs {
				s.Close()
			}
			return nil, err
		}
	}
	last := l.segs[len(l.segs)-1]
	l.start.Store(min(max(st.LogStartOffset, l.segs[0].Base()), l.end.Load()))
	if st.Clean {
		l.durableEnd.Store(l.end.Load())
	} else {
		// What recovery validated may only be in the page cache.
		if err := last.Sync(); err != nil {
			l.Close()
			return nil, err
		}
		l.durableEnd.Store(l.end.Load())
	}
	return l, nil
}

// Create makes a new, empty log in dir, which must not exist yet. Unlike
// Open it does not sync dir's parent: the new directory's entry there is
// durable only once the caller syncs it (logdir does, once for all the logs
// of a creation). Everything inside dir is durable on return.
func Create(fs vfs.FS, dir string, cfg Config) (*Log, error) {
	cfg = cfg.withDefaults()
	if err := fs.MkdirAll(dir); err != nil {
		return nil, fmt.Errorf("log %s: mkdir: %w", dir, err)
	}
	segCfg := cfg.segmentConfig()
	s, err := segment.Create(fs, dir, 0, segCfg, cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("log %s: %w", dir, err)
	}
	if err := fs.SyncDir(dir); err != nil {
		s.Close()
		return nil, fmt.Errorf("log %s: sync dir: %w", dir, err)
	}
	l := &Log{fs: fs, dir: dir, lastFlush: cfg.Now(), segs: []*segment.Segment{s}}
	l.cfgp.Store(&cfg)
	l.sig.ch = make(chan struct{})
	return l, nil
}

func (l *Log) listSegments() ([]int64, error) {
	names, err := l.fs.List(l.dir)
	if err != nil {
		return nil, fmt.Errorf("log %s: list: %w", l.dir, err)
	}
	var bases []int64
	for _, n := range names {
		if !strings.HasSuffix(n, ".log") || len(n) != 24 {
			continue
		}
		b, err := strconv.ParseInt(strings.TrimSuffix(n, ".log"), 10, 64)
		if err != nil || b < 0 {
			continue
		}
		bases = append(bases, b)
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	return bases, nil
}

func (l *Log) openSegments(bases []int64, segCfg segment.Config, st State) error {
	// The first segment that needs recovery: the one holding the recovery
	// point (the last one whose base is <= it).
	recoverFrom := len(bases) // none
	if !st.Clean {
		recoverFrom = 0
		for i, b := range bases {
			if b <= st.RecoveryPoint {
				recoverFrom = i
			}
		}
	}
	for i, b := range bases {
		active := i == len(bases)-1
		next := int64(-1)
		if !active {
			next = bases[i+1]
		}
		s, err := segment.Open(l.fs, l.dir, b, segCfg, segment.OpenOptions{Active: active, NextOffset: next, Recover: i >= recoverFrom})
		if err != nil {
			return fmt.Errorf("log %s: %w", l.dir, err)
		}
		l.segs = append(l.segs, s)
		if i < recoverFrom {
			continue
		}
		minBase := b
		if i > 0 {
			minBase = l.segs[i-1].NextOffset()
		}
		recover := s.Recover
		if st.TrustCache {
			recover = s.RecoverTrusted
		}
		cut, err := recover(minBase)
		if errors.Is(err, segment.ErrIndexWrite) {
			// A full disk must not keep the broker from starting: the
			// segment serves reads from its in-memory indexes, and the
			// log starts Degraded (appends retry, Probe clears it).
			l.noteError(err, Degraded)
		} else if err != nil {
			return fmt.Errorf("log %s: recover: %w", l.dir, err)
		}
		if cut > 0 && !active {
			// Data after a hole cannot be trusted to follow it: drop the
			// later segments, as Kafka does, and make this one active.
			for _, later := range bases[i+1:] {
				ls, err := segment.Open(l.fs, l.dir, later, segCfg, segment.OpenOptions{NextOffset: later})
				if err == nil {
					err = ls.Delete()
				}
				if err != nil {
					return fmt.Errorf("log %s: drop segment after a corrupt one: %w", l.dir, err)
				}
			}
			s.Close()
			s, err = segment.Open(l.fs, l.dir, b, segCfg, segment.OpenOptions{Active: true, NextOffset: -1})
			if err != nil {
				return fmt.Errorf("log %s: %w", l.dir, err)
			}
			l.segs[i] = s
			return nil
		}
	}
	return nil
}

func (l *Log) config() *Config { return l.cfgp.Load() }

// SetConfig changes the log's settings (a topic's configs were altered).
// Segment and index sizes apply to segments created from now on.
func (l *Log) SetConfig(cfg Config) {
	cfg = cfg.withDefaults()
	cfg.Files = l.config().Files
	l.cfgp.Store(&cfg)
	if cfg.FlushMs > 0 {
		// Records may wait for the flush.ms just set (watch.go).
		l.appendMu.Lock()
		l.flushPendingLocked()
		l.appendMu.Unlock()
	}
}

// Config returns the log's current settings.
func (l *Log) Config() Config { return *l.config() }

// Dir returns the log's directory.
func (l *Log) Dir() string { return l.dir }

// StartOffset returns the log start offset.
func (l *Log) StartOffset() int64 { return l.start.Load() }

// EndOffset returns the log end offset: the offset the next record gets.
// Every offset below it is readable (single replica: the high watermark).
func (l *Log) EndOffset() int64 { return l.end.Load() }

// DurableOffset returns the offset below which everything is fsynced (the
// recovery point to checkpoint).
func (l *Log) DurableOffset() int64 { return l.durableEnd.Load() }

// Changed returns a channel closed at the next append (or truncation). Long
// polls select on it, then call Changed again.
func (l *Log) Changed() <-chan struct{} {
	l.sig.Lock()
	defer l.sig.Unlock()
	l.sig.taken = true
	return l.sig.ch
}

// signal wakes whoever waits on Changed's channel. A channel nobody was
// handed has nobody to wake and is kept: an append with no long poll
// waiting allocates nothing here.
func (l *Log) signal() {
	l.sig.Lock()
	if l.sig.taken {
		close(l.sig.ch)
		l.sig.ch = make(chan struct{})
		l.sig.taken = false
	}
	l.sig.Unlock()
}

// Size returns the total bytes of the log's segments.
func (l *Log) Size() int64 {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	var n int64
	for _, s := range l.segs {
		n += s.Size()
	}
	return n
}

// NumSegments returns the number of segments.
func (l *Log) NumSegments() int {
	l.segMu.RLock()
	defer l.segMu.RUnlock()
	return len(l.segs)
}

// AppendOptions carries what the broker knows about an append.
type AppendOptions struct {
	// LeaderEpoch is written into each batch's PartitionLeaderEpoch field
	// (clients' values are overwritten, never rejected).
	LeaderEpoch int32
}

// AppendResult describes an append.
type AppendResult struct {
	FirstOffset   int64
	LastOffset    int64
	LogAppendTime int64 // record.NoTimestamp unless LogAppendTime applies
	Batches       []record.BatchHeader
}

// Validate checks that data is one or more whole, valid v2 batches within the
// size limits, returning their headers. It runs on the caller's goroutine
// before the append lock, so producers validate in parallel.
func (l *Log) Validate(data []byte) ([]record.BatchHeader, error) {
	return l.ValidateInto(nil, data)
}

// ValidateInto is Validate appending the headers to dst[:0]: a caller
// with room for them (one batch, the usual produce) allocates nothing.
func (l *Log) ValidateInto(dst []record.BatchHeader, data []byte) ([]record.BatchHeader, error) {
	if len(data) == 0 {
		return nil, ErrEmptyAppend
	}
	hdrs := dst[:0]
	for off := 0; off < len(data); {
		h, err := record.ReadBatchHeader(data[off:])
		if err != nil {
			return nil, fmt.Errorf("log %s: batch %d: %w", l.dir, len(hdrs), err)
		}
		size := h.Size()
		if size > len(data)-off {
			return nil, fmt.Errorf("log %s: batch %d claims %d bytes, %d remain: %w", l.dir, len(hdrs), size, len(data)-off, record.ErrCorrupt)
		}
		if size > l.config().MaxBatchBytes {
			return nil, fmt.Errorf("log %s: batch of %d bytes > %d: %w", l.dir, size, l.config().MaxBatchBytes, ErrBatchTooLarge)
		}
		if _, err := record.ValidateBatch(data[off:off+size], l.config().MaxDecompressedBytes); err != nil {
			return nil, fmt.Errorf("log %s: batch %d: %w", l.dir, len(hdrs), err)
		}
		if err := l.checkKeys(data[off : off+size]); err != nil {
			return nil, fmt.Errorf("log %s: batch %d: %w", l.dir, len(hdrs), err)
		}
		hdrs = append(hdrs, h)
		off += size
	}
	return hdrs, nil
}

// Append validates data (one or more v2 batches), assigns offsets by
// rewriting each batch's base offset in place (data is modified), and writes
// it. It returns once the data is written (visible to readers); call
// WaitDurable for fsync. Nothing is written when validation fails.
func (l *Log) Append(data []byte, opts AppendOptions) (AppendResult, error) {
	hdrs, err := l.Validate(data)
	if err != nil {
		return AppendResult{}, err
	}
	if data, hdrs, err = l.Recompress(data, hdrs); err != nil {
		return AppendResult{}, err
	}
	return l.AppendValidated(data, hdrs, opts)
}

// AppendValidated is Append for data whose headers came from Validate.
func (l *Log) AppendValidated(data []byte, hdrs []record.BatchHeader, opts AppendOptions) (AppendResult, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return AppendResult{}, ErrClosed
	}
	if err := l.failure(); err != nil {
		return AppendResult{}, err
	}
	var deltas int64
	for _, h := range hdrs {
		deltas += int64(h.LastOffsetDelta) + 1
	}
	now := l.config().Now()
	if err := l.maybeRollLocked(int64(len(data)), deltas, now); err != nil {
		return AppendResult{}, err
	}
	res := AppendResult{FirstOffset: l.end.Load(), LogAppendTime: record.NoTimestamp, Batches: hdrs}
	next := res.FirstOffset
	off := 0
	var records int64
	for i := range hdrs {
		h := &hdrs[i]
		b := data[off : off+h.Size()]
		record.SetBaseOffset(b, next)
		record.SetPartitionLeaderEpoch(b, opts.LeaderEpoch)
		h.BaseOffset, h.PartitionLeaderEpoch = next, opts.LeaderEpoch
		if l.config().LogAppendTime {
			ms := now.UnixMilli()
			record.SetLogAppendTime(b, ms)
			h.MaxTimestamp = ms
			h.Attributes |= 0x08
			res.LogAppendTime = ms
		}
		next = h.LastOffset() + 1
		records += int64(h.NumRecords)
		off += h.Size()
	}
	active := l.segs[len(l.segs)-1]
	if err := active.Append(data, hdrs); err != nil {
		// The segment truncated whatever part of the batch was written.
		return AppendResult{}, l.transient("append", err)
	}
	res.LastOffset = next - 1
	l.end.Store(next)
	l.unflushed += records
	l.flushPendingLocked()
	l.signal()
	l.noteOK()
	if l.config().FlushMessages > 0 && l.unflushed >= l.config().FlushMessages {
		if err := l.flushLocked(); errors.Is(err, ErrFailed) {
			return res, err
		}
		// Any other error: the data is written and fsynced, only an
		// index file is behind (a hint, written again at the next flush
		// or seal; the log is marked Degraded). Failing the append
		// would make the producer write it twice.
	}
	return res, nil
}

// maybeRollLocked starts a new segment when the active one is full or old;
// appendMu must be held.
func (l *Log) maybeRollLocked(size, offsets int64, now time.Time) error {
	active := l.segs[len(l.segs)-1]
	if active.Sealed() {
		// An earlier roll sealed it but could not create the next
		// segment: finish that roll.
		return l.rollLocked(now)
	}
	if active.Size() == 0 {
		return nil
	}
	end := l.end.Load()
	if active.Size()+size <= l.config().SegmentBytes &&
		now.Sub(active.Created()) < l.config().SegmentMs &&
		!active.IndexFull() &&
		end+offsets-active.Base() <= math.MaxUint32 {
		return nil
	}
	return l.rollLocked(now)
}

// rollLocked seals the active segment and starts the next one. Only a
// failed fsync of the old segment's data is sticky (ErrFailed); failing to
// write its indexes, or to create, open or make durable the new segment's
// files (EMFILE, ENOSPC, EPERM...), is ErrStorage: the old segment stays
// the last one (sealed or not), and the next append redoes the roll.
func (l *Log) rollLocked(now time.Time) error {
	active := l.segs[len(l.segs)-1]
	end := l.end.Load()
	if err := active.Seal(); err != nil {
		return l.classify("roll", err)
	}
	// Sealing synced the old segment: everything before end is durable.
	l.advanceDurable(end)
	s, err := segment.Create(l.fs, l.dir, end, l.config().segmentConfig(), now)
	if err != nil {
		return l.transient("roll", err)
	}
	// Only the new, empty file's entry is at stake here: the old segment's
	// data was fsynced by Seal and its entry made durable when it was
	// created. So a failed directory sync is transient too.
	if err := l.fs.SyncDir(l.dir); err != nil {
		s.Delete()
		return l.transient("roll: sync dir", err)
	}
	l.segMu.Lock()
	l.segs = append(l.segs, s)
	l.segMu.Unlock()
	return nil
}

// Roll seals the active segment and starts a new one (when the active one
// holds data).
func (l *Log) Roll() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	if l.segs[len(l.segs)-1].Size() == 0 {
		return nil
	}
	return l.rollLocked(l.config().Now())
}

func advance(v *atomic.Int64, to int64) {
	for {
		cur := v.Load()
		if to <= cur || v.CompareAndSwap(cur, to) {
			return
		}
	}
}

func (l *Log) failure() error {
	l.dur.Lock()
	defer l.dur.Unlock()
	return l.dur.err
}

func (l *Log) setFailure(err error) {
	l.dur.Lock()
	if l.dur.err == nil {
		l.dur.err = fmt.Errorf("%w: %v", ErrFailed, err)
	}
	l.dur.Unlock()
	l.noteError(err, Failed)
}

// WaitDurable returns once every offset <= offset is fsynced. Concurrent
// callers share fsyncs (group commit): while one fsync runs, the callers
// that arrive wait for the next one, which covers all of them.
func (l *Log) WaitDurable(ctx context.Context, offset int64) error {
	for {
		if l.durableEnd.Load() > offset {
			return nil
		}
		// Callers wait for offsets they appended, below the end offset;
		// only TruncateTo can take them away.
		if offset >= l.end.Load() {
			return fmt.Errorf("log %s: wait for offset %d, end %d: %w", l.dir, offset, l.end.Load(), ErrTruncated)
		}
		l.dur.Lock()
		if l.dur.err != nil {
			err := l.dur.err
			l.dur.Unlock()
			return err
		}
		if l.durableEnd.Load() > offset {
			l.dur.Unlock()
			return nil
		}
		if !l.dur.syncing {
			l.dur.syncing = true
			done := make(chan struct{})
			l.dur.done = done
			l.dur.Unlock()
			err := l.syncActive()
			l.dur.Lock()
			l.dur.syncing = false
			closed := errors.Is(err, ErrClosed)
			failed := err != nil && !closed && l.dur.err == nil
			if failed {
				l.dur.err = fmt.Errorf("%w: %v", ErrFailed, err)
			}
			close(done)
			l.dur.Unlock()
			if failed {
				l.noteError(err, Failed)
			}
			if closed {
				return err // deleted: nothing will ever be durable
			}
			continue
		}
		done := l.dur.done
		l.dur.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// syncActive fsyncs the active segment and advances the durable offset to
// the end offset observed before the fsync.
func (l *Log) syncActive() error {
	l.segMu.RLock()
	if len(l.segs) == 0 {
		// Deleted (a topic deletion) while a producer or the snapshot
		// loop was about to wait for an fsync.
		l.segMu.RUnlock()
		return ErrClosed
	}
	active := l.segs[len(l.segs)-1]
	target := active.NextOffset()
	l.segMu.RUnlock()
	if err := active.Sync(); err != nil {
		return err
	}
	l.advanceDurable(target)
	return nil
}

// Flush fsyncs everything appended so far (data and indexes).
func (l *Log) Flush() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return ErrClosed
	}
	return l.flushLocked()
}

func (l *Log) flushLocked() error {
	end := l.end.Load()
	if end > 0 {
		if err := l.WaitDurable(context.Background(), end-1); err != nil {
			return err
		}
	}
	l.segMu.RLock()
	active := l.segs[len(l.segs)-1]
	l.segMu.RUnlock()
	if err := active.SyncIndexes(); err != nil {
		return l.transient("flush", err)
	}
	l.unflushed = 0
	l.lastFlush = l.config().Now()
	return nil
}

// FlushIfDue applies flush.ms: it flushes when the last flush is older than
// FlushMs and there is unflushed data. The log directory's scheduler calls it.
func (l *Log) FlushIfDue(now time.Time) error {
	if l.config().FlushMs <= 0 {
		return nil
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed || l.unflushed == 0 || now.Sub(l.lastFlush) < l.config().FlushMs {
		return nil
	}
	return l.flushLocked()
}

// Close seals the active segment (trimming its indexes and syncing it) and
// closes every file. A log closed this way reopens with State.Clean.
func (l *Log) Close() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	l.segMu.Lock()
	defer l.segMu.Unlock()
	var first error
	if l.failure() == nil {
		if err := l.segs[len(l.segs)-1].Seal(); err != nil {
			first = err
		} else {
			l.advanceDurable(l.end.Load())
		}
	}
	for _, s := range l.segs {
		if err := s.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Delete closes the log and removes its directory.
func (l *Log) Delete() error {
	l.Release()
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("log %s: delete: %w", l.dir, err)
	}
	return nil
}

// Release closes the log's files without syncing or sealing anything: the
// log is about to be deleted. Delete calls it; package logdir calls it for
// every log of a deletion first, so that their descriptors are free
// before any directory is removed (a removal needs one).
func (l *Log) Release() {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.closed = true
	l.segMu.Lock()
	defer l.segMu.Unlock()
	for _, s := range l.segs {
		s.Close()
	}
	l.segs = nil
}
