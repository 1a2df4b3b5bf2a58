package cleaner

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path/filepath"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// CheckpointFile, in a partition's directory, holds the first dirty
// offset: everything below it was cleaned with every key above it known.
// Losing it costs a full pass, never data.
const CheckpointFile = "cleaner-offset-checkpoint"

const (
	checkpointMagic   = "SCLN"
	checkpointVersion = 1
	readChunk         = 1 << 20
)

// Options configure a Cleaner.
type Options struct {
	// DedupeBufferBytes is this cleaner's share of
	// log.cleaner.dedupe.buffer.size: the key map's memory, allocated
	// once. A log with more dirty keys than fit is cleaned in passes.
	DedupeBufferBytes int64
	Throttle          *Throttle
	Now               func() time.Time // time.Now when nil
}

// Cleaner cleans logs one at a time; each worker owns one (its key map is
// not shared).
type Cleaner struct {
	fs   vfs.FS
	keys *keyMap
	opts Options
}

// New makes a cleaner whose logs live on fsys.
func New(fsys vfs.FS, opts Options) *Cleaner {
	if opts.DedupeBufferBytes <= 0 {
		opts.DedupeBufferBytes = 128 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Cleaner{fs: fsys, keys: newKeyMap(opts.DedupeBufferBytes), opts: opts}
}

// MapCapacity is how many distinct keys one pass can hold at most.
func (c *Cleaner) MapCapacity() int { return max(int(float64(c.keys.maxSlots)*loadFactor), 1) }

// bytesPerKey sizes a pass's key map from its dirty bytes: a record costs
// at least this many bytes of log (a few bytes of key and value, the
// record's own fields, a share of its batch header).
const bytesPerKey = 16

// Progress is a log's state as the cleaner sees it.
type Progress struct {
	FirstDirty     int64 // the next pass maps keys from here
	CleanableBytes int64 // sealed segments below the bound and past min.compaction.lag.ms
	DirtyBytes     int64 // those of them at or after FirstDirty
	DirtyRatio     float64
	// Due says a pass should run: compaction is on and the dirty ratio
	// reached min.cleanable.dirty.ratio, or the oldest dirty segment is
	// older than max.compaction.lag.ms.
	Due bool
	// cleanable is the prefix of the sealed segments a pass may touch.
	cleanable []seglog.SealedSegment
}

// Progress computes l's dirty ratio, bounded by bound: no segment with an
// offset at or past it is cleaned (the high watermark today; with
// replication the offset every replica has, and with transactions the
// last stable offset).
func (c *Cleaner) Progress(l *seglog.Log, bound int64) (Progress, error) {
	return Inspect(c.fs, l, bound, c.opts.Now())
}

// Inspect is Progress for callers without a Cleaner (schedulers, views).
func Inspect(fsys vfs.FS, l *seglog.Log, bound int64, now time.Time) (Progress, error) {
	var p Progress
	segs, err := l.SealedSegments()
	if err != nil {
		return p, err
	}
	cmp := l.Compaction()
	firstDirty, err := ReadCheckpoint(fsys, l.Dir())
	if err != nil {
		return p, err
	}
	if len(segs) > 0 {
		firstDirty = max(firstDirty, segs[0].Base)
	}
	p.FirstDirty = firstDirty
	var oldestDirty time.Time
	for _, s := range segs {
		// Without min.compaction.lag.ms, timestamps do not matter (a
		// producer's clock ahead of ours must not stall cleaning).
		if s.End > bound || cmp.MinLag > 0 && segTime(s).After(now.Add(-cmp.MinLag)) {
			break
		}
		p.cleanable = append(p.cleanable, s)
		p.CleanableBytes += s.Size
		if s.End > firstDirty {
			p.DirtyBytes += s.Size
			if oldestDirty.IsZero() {
				oldestDirty = segTime(s)
			}
		}
	}
	if p.CleanableBytes > 0 {
		p.DirtyRatio = float64(p.DirtyBytes) / float64(p.CleanableBytes)
	}
	p.Due = cmp.Enabled && p.DirtyBytes > 0 &&
		(p.DirtyRatio >= cmp.MinCleanableRatio || cmp.MaxLag < time.Duration(math.MaxInt64) && now.Sub(oldestDirty) > cmp.MaxLag)
	return p, nil
}

// segTime is a segment's age for the lag settings: its newest record's
// timestamp, or when it was created if it has none.
func segTime(s seglog.SealedSegment) time.Time {
	if s.MaxTimestamp >= 0 {
		return time.UnixMilli(s.MaxTimestamp)
	}
	return s.Created
}

// Result describes one pass.
type Result struct {
	FirstDirty int64 // where the pass started mapping keys
	MapEnd     int64 // where it stopped: the next pass starts there
	Partial    bool  // the key map filled before the dirty section's end
	Keys       int   // distinct keys mapped
	SegmentsIn int
	GroupsOut  int
	BytesIn    int64
	BytesOut   int64
	Removed    int64 // records removed
	Duration   time.Duration
}

// Clean runs one pass over l (see the package doc): map the dirty keys from
// the first dirty offset until the map is full or the cleanable section
// ends, then rewrite every cleanable segment below that point, a group at a
// time, through seglog.ReplaceSegments, and advance the checkpoint. A pass
// with nothing dirty does nothing.
func (c *Cleaner) Clean(ctx context.Context, l *seglog.Log, bound int64) (Result, error) {
	start := time.Now()
	segs, err := l.SealedSegments()
	if err != nil || len(segs) == 0 {
		return Result{}, err
	}
	txns, err := readTxnOutcomes(l, segs[0].Base)
	if err != nil {
		return Result{}, err
	}
	p, err := c.Progress(l, min(bound, txns.undecided))
	if err != nil || p.DirtyBytes == 0 {
		return Result{}, err
	}
	res := Result{FirstDirty: p.FirstDirty}
	if err := c.buildMap(ctx, l, p, txns.aborted, &res); err != nil {
		return res, err
	}
	last, err := lastBatches(l, p.cleanable[0].Base)
	if err != nil {
		return res, err
	}
	nowMs := c.opts.Now().UnixMilli()
	horizon := nowMs + l.Compaction().DeleteRetention.Milliseconds()
	if horizon < nowMs {
		horizon = math.MaxInt64
	}
	for _, g := range groups(p.cleanable, res.MapEnd, l.SegmentBytes()) {
		w := groupWriter{c: c, l: l, g: g, res: &res, last: last, mapEnd: res.MapEnd,
			rc: recordContext{keys: c.keys, now: nowMs}, horizon: horizon, aborted: txns.aborted, empty: txns.empty}
		if err := l.ReplaceSegments(g[0].Base, g[len(g)-1].End, func(out io.Writer) error { return w.write(ctx, out) }); err != nil {
			return res, err
		}
		res.SegmentsIn += len(g)
		res.GroupsOut++
	}
	if err := WriteCheckpoint(c.fs, l.Dir(), res.MapEnd); err != nil {
		return res, err
	}
	res.Duration = time.Since(start)
	return res, nil
}

// buildMap maps every key of the dirty section to its latest offset, from
// p.FirstDirty to the end of the cleanable segments or the first key that
// does not fit (res.MapEnd, res.Partial).
func (c *Cleaner) buildMap(ctx context.Context, l *seglog.Log, p Progress, aborted map[int64]bool, res *Result) error {
	c.keys.reset(int(min(p.DirtyBytes/bytesPerKey, math.MaxInt32)))
	res.MapEnd = p.cleanable[len(p.cleanable)-1].End
	maxDecomp := l.MaxDecompressedBytes()
	for _, s := range p.cleanable {
		if s.End <= p.FirstDirty {
			continue
		}
		full, err := eachBatch(ctx, c, l, s, max(s.Base, p.FirstDirty), func(h record.BatchHeader, b []byte) (bool, error) {
			if h.LastOffset() < p.FirstDirty || h.IsControl() || aborted[h.BaseOffset] {
				return true, nil // an aborted transaction's records hide nothing
			}
			_, recs, err := record.Records(b, maxDecomp)
			if err != nil {
				return false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
			}
			for i := range recs {
				off := h.BaseOffset + int64(recs[i].OffsetDelta)
				if off < p.FirstDirty || recs[i].Key == nil {
					continue
				}
				if !c.keys.put(recs[i].Key, off) {
					res.MapEnd, res.Partial = off, true
					return false, nil
				}
			}
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("cleaner %s: map keys: %w", l.Dir(), err)
		}
		if full {
			break
		}
	}
	res.Keys = c.keys.used
	if res.MapEnd <= p.FirstDirty {
		return fmt.Errorf("cleaner %s: the key map holds no key (dedupe buffer too small)", l.Dir())
	}
	return nil
}

// eachBatch calls fn with every batch of sealed segment s from the one
// holding offset from, until fn returns false (then it returns true).
func eachBatch(ctx context.Context, c *Cleaner, l *seglog.Log, s seglog.SealedSegment, from int64, fn func(h record.BatchHeader, b []byte) (bool, error)) (bool, error) {
	for off := from; off < s.End; {
		data, err := l.ReadSealed(s.Base, off, readChunk)
		if err != nil {
			return false, err
		}
		if len(data) == 0 {
			return false, nil
		}
		if err := c.opts.Throttle.Wait(ctx, len(data)); err != nil {
			return false, err
		}
		for len(data) > 0 {
			h, err := record.ReadBatchHeader(data)
			if err != nil {
				return false, err
			}
			more, err := fn(h, data[:h.Size()])
			if err != nil || !more {
				return !more, err
			}
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return false, nil
}

// lastBatches returns, per producer id, the last offset of its last batch
// in the log from offset from: that batch is kept (empty if need be) so
// the producer's epoch and sequence survive a restart that rebuilds them
// from the log.
func lastBatches(l *seglog.Log, from int64) (map[int64]int64, error) {
	last := map[int64]int64{}
	err := l.WalkHeaders(from, func(h record.BatchHeader) bool {
		if h.ProducerID >= 0 {
			last[h.ProducerID] = h.LastOffset()
		}
		return true
	})
	return last, err
}

// groups splits the cleanable segments below mapEnd into runs rewritten
// as one segment each: their input fits in segment.bytes and their offsets
// in one segment's 32-bit relative range.
func groups(segs []seglog.SealedSegment, mapEnd, segmentBytes int64) [][]seglog.SealedSegment {
	var out [][]seglog.SealedSegment
	var cur []seglog.SealedSegment
	var size int64
	for _, s := range segs {
		if s.Base >= mapEnd {
			break
		}
		if len(cur) > 0 && (size+s.Size > segmentBytes || s.End-cur[0].Base > math.MaxInt32) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, s)
		size += s.Size
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// groupWriter writes the cleaned batches of one group.
type groupWriter struct {
	c       *Cleaner
	l       *seglog.Log
	g       []seglog.SealedSegment
	res     *Result
	last    map[int64]int64
	mapEnd  int64
	rc      recordContext
	horizon int64
	aborted map[int64]bool // base offsets of aborted transactional batches
	empty   map[int64]bool // base offsets of markers with no batch of their transaction left
	buf     []byte
}

func (w *groupWriter) write(ctx context.Context, out io.Writer) error {
	maxDecomp := w.l.MaxDecompressedBytes()
	for _, s := range w.g {
		w.res.BytesIn += s.Size
		_, err := eachBatch(ctx, w.c, w.l, s, s.Base, func(h record.BatchHeader, b []byte) (bool, error) {
			_, recs, err := record.Records(b, maxDecomp)
			if err != nil {
				return false, fmt.Errorf("batch at offset %d: %w", h.BaseOffset, err)
			}
			w.rc.batch = h
			w.rc.aborted = h.IsTransactional() && !h.IsControl() && w.aborted[h.BaseOffset]
			w.rc.emptyMarker = h.IsControl() && w.empty[h.BaseOffset]
			w.rc.lastOfProducer = h.ProducerID >= 0 && w.last[h.ProducerID] == h.LastOffset()
			kept := recs[:0:0]
			tombstones := false
			for i := range recs {
				w.rc.offset = h.BaseOffset + int64(recs[i].OffsetDelta)
				if retain(&w.rc, &recs[i]) == keep {
					kept = append(kept, recs[i])
					tombstones = tombstones || recs[i].Value == nil
				}
			}
			w.res.Removed += int64(len(recs) - len(kept))
			// A horizon only for batches wholly below the map end: their
			// keys' older values were removed by this very pass.
			// An empty marker kept gets one too (rules.go): its
			// transaction's records are all gone.
			_, hasHorizon := h.DeleteHorizon()
			horizon := int64(-1)
			if !hasHorizon && (tombstones && h.LastOffset() < w.mapEnd || w.rc.emptyMarker && len(kept) > 0) {
				horizon = w.horizon
			}
			var outBatch []byte
			switch {
			case len(kept) == len(recs) && horizon < 0 && (len(recs) > 0 || h.ProducerID >= 0 && w.last[h.ProducerID] == h.LastOffset()):
				outBatch = b // unchanged
			case len(kept) == 0 && (h.ProducerID < 0 || w.last[h.ProducerID] != h.LastOffset()):
				return true, nil // dropped whole
			default:
				w.buf, err = record.AppendCompacted(w.buf[:0], h, kept, horizon)
				if err != nil {
					return false, err
				}
				outBatch = w.buf
			}
			if err := w.c.opts.Throttle.Wait(ctx, len(outBatch)); err != nil {
				return false, err
			}
			if _, err := out.Write(outBatch); err != nil {
				return false, err
			}
			w.res.BytesOut += int64(len(outBatch))
			return true, nil
		})
		if err != nil {
			return fmt.Errorf("cleaner %s: segment %d: %w", w.l.Dir(), s.Base, err)
		}
	}
	return nil
}

// ReadCheckpoint returns the first dirty offset recorded in dir (0 when
// there is none: everything is dirty).
func ReadCheckpoint(fsys vfs.FS, dir string) (int64, error) {
	b, err := atomicfile.ReadBytes(fsys, filepath.Join(dir, CheckpointFile), 1<<10)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("cleaner %s: checkpoint: %w", dir, err)
	}
	v, payload, err := atomicfile.Decode(b, checkpointMagic)
	if err != nil || v != checkpointVersion || len(payload) != 8 {
		// A damaged checkpoint costs a full pass, nothing else.
		return 0, nil
	}
	return int64(binary.BigEndian.Uint64(payload)), nil
}

// WriteCheckpoint records offset as dir's first dirty offset (temp file,
// fsync, rename, directory fsync).
func WriteCheckpoint(fsys vfs.FS, dir string, offset int64) error {
	var payload [8]byte
	binary.BigEndian.PutUint64(payload[:], uint64(offset))
	if err := atomicfile.Write(fsys, filepath.Join(dir, CheckpointFile), checkpointMagic, checkpointVersion, payload[:]); err != nil {
		return fmt.Errorf("cleaner %s: checkpoint: %w", dir, err)
	}
	return nil
}
