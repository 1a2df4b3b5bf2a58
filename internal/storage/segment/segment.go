package segment

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/bufpool"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/fdcache"
	"github.com/stromhq/strom/internal/storage/index"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Config holds the per-segment settings that come from the topic's configs.
type Config struct {
	// IndexIntervalBytes is index.interval.bytes: an index entry is added
	// once at least this many bytes were appended since the last entry.
	IndexIntervalBytes int64
	// IndexMaxBytes is segment.index.bytes: the maximum size (entries, never
	// preallocated) of an index file; a full index rolls the segment.
	IndexMaxBytes int64
	// Files holds the descriptors of sealed segments, which keep none of
	// their own; nil opens the file for each read.
	Files *fdcache.Cache
}

// ErrCorrupt is returned when a batch read from the file fails its checks.
var ErrCorrupt = errors.New("segment: corrupt data")

// ErrSync marks a failed fsync of the segment's data: whether the pages
// written since the last good fsync reached the disk is unknown (the kernel
// may have dropped them), so the log must stop and be recovered.
var ErrSync = errors.New("segment: fsync of the data failed")

// ErrIndexWrite marks a failure to write an index file (disk full, too many
// open files, a permission). The entries stay in memory and the segment
// serves reads and appends; the file is written at the next sync or seal,
// or rebuilt from the data at the next start. Nothing acknowledged is at
// risk: an index is a hint.
var ErrIndexWrite = errors.New("segment: index file not written")

// FileNames returns the log, offset index and time index paths of the segment
// with the given base offset in dir.
func FileNames(dir string, base int64) (log, offsetIndex, timeIndex string) {
	name := fmt.Sprintf("%020d", base)
	return filepath.Join(dir, name+".log"), filepath.Join(dir, name+".index"), filepath.Join(dir, name+".timeindex")
}

// Segment is one <base>.log file with its two indexes.
type Segment struct {
	fs   vfs.FS
	dir  string
	base int64
	cfg  Config

	// fileMu guards log, the active segment's file (read-write); nil once
	// sealed, when reads go through cfg.Files. Readers hold fileMu for
	// reading while they use log, so that Seal never closes it under them.
	fileMu sync.RWMutex
	log    vfs.File

	// size is the number of bytes of whole batches in the file; readers
	// never look past it, so a batch becomes visible only once fully
	// written. nextOffset is one past the last offset in the segment.
	size       atomic.Int64
	nextOffset atomic.Int64
	// verified is the length of the file's prefix whose batches this
	// process has checked (CRC-32C) or written itself: Read checks only
	// the batches that end past it, once, and moves it up over what it
	// checked (see the package doc). It may lag size, never lead the
	// bytes it vouches for; TruncateTo lowers it with size.
	verified atomic.Int64

	// Written only by the appender (the log's single writer).
	bytesSinceIndex int64
	maxTimestamp    int64 // largest timestamp appended, record.NoTimestamp if none
	maxTsOffset     int64 // offset of the batch that set it
	created         time.Time
	sealed          atomic.Bool // read-only; set once by the appender

	idxMu   sync.Mutex // guards loading the indexes of a sealed segment
	offIdx  *index.OffsetIndex
	timeIdx *index.TimeIndex
}

// Create makes a new, empty, active segment with base offset base.
func Create(fs vfs.FS, dir string, base int64, cfg Config, now time.Time) (*Segment, error) {
	logPath, offPath, timePath := FileNames(dir, base)
	f, err := fs.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("segment %020d: create: %w", base, err)
	}
	s := &Segment{fs: fs, dir: dir, base: base, cfg: cfg, log: f, created: now, maxTimestamp: record.NoTimestamp, maxTsOffset: base}
	s.nextOffset.Store(base)
	// Stale index files from an earlier life of this base offset must go.
	for _, p := range []string{offPath, timePath} {
		if err := fs.Remove(p); err != nil && !errors.Is(err, errNotExist) {
			f.Close()
			return nil, fmt.Errorf("segment %020d: remove stale index: %w", base, err)
		}
	}
	if err := s.openIndexes(true); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// OpenOptions says how much to trust the files of an existing segment.
type OpenOptions struct {
	// Active opens the segment for appends (indexes in memory, written at
	// SyncIndexes and Seal).
	Active bool
	// NextOffset, when >= 0, is the known end of the segment (the base of
	// the following segment); when < 0 the end is found by scanning the
	// tail of the log from the last index entry.
	NextOffset int64
	// Created is the time to use for segment.ms (the file's mtime is used
	// when zero).
	Created time.Time
	// Recover skips every check of the existing files: the caller is about
	// to call Recover, which rebuilds everything from the data.
	Recover bool
}

// Open opens an existing segment without reading its data (beyond the tail
// after the last index entry, when the end offset is unknown). Indexes of a
// sealed segment are loaded on first use. Call Recover instead of trusting
// the files after an unclean shutdown.
func Open(fs vfs.FS, dir string, base int64, cfg Config, opts OpenOptions) (*Segment, error) {
	logPath, _, _ := FileNames(dir, base)
	fi, err := fs.Stat(logPath)
	if err != nil {
		return nil, fmt.Errorf("segment %020d: open: %w", base, err)
	}
	s := &Segment{fs: fs, dir: dir, base: base, cfg: cfg, created: opts.Created,
		maxTimestamp: record.NoTimestamp, maxTsOffset: base}
	size := fi.Size()
	if opts.Active {
		// Only the active segment holds a descriptor of its own.
		f, err := fs.OpenReadWrite(logPath)
		if err != nil {
			return nil, fmt.Errorf("segment %020d: open: %w", base, err)
		}
		if size, err = f.Size(); err != nil {
			f.Close()
			return nil, fmt.Errorf("segment %020d: size: %w", base, err)
		}
		s.log = f
	}
	s.sealed.Store(!opts.Active)
	if s.created.IsZero() {
		s.created = fi.ModTime()
	}
	s.size.Store(size)
	s.nextOffset.Store(base)
	if opts.Recover {
		return s, nil
	}
	if opts.NextOffset >= 0 && !opts.Active {
		s.nextOffset.Store(opts.NextOffset)
		return s, nil
	}
	if opts.Active {
		if err := s.openIndexes(true); err != nil {
			s.log.Close()
			return nil, err
		}
		if last, ok := s.timeIdx.Last(); ok {
			s.maxTimestamp, s.maxTsOffset = last.Timestamp, last.Offset
		}
	}
	if err := s.checkIndexes(); err != nil || s.scanTail() != nil {
		// Inconsistent indexes or a damaged tail although the files were
		// to be trusted: rebuild from the data rather than refuse to start.
		if _, rerr := s.Recover(0); rerr != nil && !errors.Is(rerr, ErrIndexWrite) {
			s.Close()
			return nil, rerr
		}
	}
	return s, nil
}

// scanTail finds nextOffset (and for an active segment the max timestamp of
// the tail) by walking batch headers after the last offset index entry. On a
// clean start this is the only data read: about one index interval.
func (s *Segment) scanTail() error {
	if err := s.loadIndexes(); err != nil {
		return err
	}
	return s.walkHeaders(s.offIdx.Lookup(1<<62).Position, func(h record.BatchHeader, _ int64) bool {
		s.nextOffset.Store(h.LastOffset() + 1)
		if !s.sealed.Load() {
			s.noteTimestamp(h, int64(h.Size()))
		}
		return true
	})
}

// walkHeaders calls fn with each batch header from position pos to the end,
// reading the file in chunks (header by header where batches are large),
// until fn returns false. A header that does not parse or a batch that
// overruns the file is ErrCorrupt.
func (s *Segment) walkHeaders(pos int64, fn func(h record.BatchHeader, pos int64) bool) error {
	f, release, err := s.reader()
	if err != nil {
		return err
	}
	defer release()
	return s.walkHeadersIn(f, pos, s.size.Load(), fn)
}

// walkHeadersIn is walkHeaders over f, whose first size bytes are the
// segment's.
func (s *Segment) walkHeadersIn(f vfs.File, pos, size int64, fn func(h record.BatchHeader, pos int64) bool) error {
	r := newChunkReader(f, s.base, size) // a chunk at a time: chunkread.go
	defer r.release()
	for pos < size {
		if size-pos < record.BatchHeaderSize {
			return fmt.Errorf("segment %020d: %d stray bytes at %d: %w", s.base, size-pos, pos, ErrCorrupt)
		}
		b, err := r.header(pos)
		if err != nil {
			return err
		}
		h, err := record.ReadBatchHeader(b)
		if err != nil || pos+int64(h.Size()) > size {
			return fmt.Errorf("segment %020d: bad batch at %d: %w", s.base, pos, ErrCorrupt)
		}
		if !fn(h, pos) {
			return nil
		}
		r.next(h.Size())
		pos += int64(h.Size())
	}
	return nil
}

// WalkHeaders calls fn with the header of every batch whose last offset is
// >= from, in order, until fn returns false.
func (s *Segment) WalkHeaders(from int64, fn func(h record.BatchHeader) bool) error {
	if err := s.ensureIndexes(); err != nil {
		return err
	}
	pos := s.offIdx.Lookup(from).Position
	return s.walkHeaders(pos, func(h record.BatchHeader, _ int64) bool {
		if h.LastOffset() < from {
			return true
		}
		return fn(h)
	})
}

func (s *Segment) openIndexes(writable bool) error {
	_, offPath, timePath := FileNames(s.dir, s.base)
	oi, err := index.OpenOffsetIndex(s.fs, offPath, s.base, s.cfg.IndexMaxBytes, writable)
	if err != nil {
		return fmt.Errorf("segment %020d: %w", s.base, err)
	}
	ti, err := index.OpenTimeIndex(s.fs, timePath, s.base, s.cfg.IndexMaxBytes, writable)
	if err != nil {
		oi.Close()
		return fmt.Errorf("segment %020d: %w", s.base, err)
	}
	s.offIdx, s.timeIdx = oi, ti
	return nil
}

// loadIndexes opens the indexes of a sealed segment on first use, and
// rebuilds them from the data when they are missing or inconsistent.
func (s *Segment) loadIndexes() error {
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.offIdx != nil {
		return nil
	}
	_, offPath, timePath := FileNames(s.dir, s.base)
	_, err1 := s.fs.Stat(offPath)
	_, err2 := s.fs.Stat(timePath)
	if err1 == nil && err2 == nil {
		if err := s.openIndexes(false); err == nil {
			if s.checkIndexes() == nil {
				return nil
			}
			s.offIdx.Close()
			s.timeIdx.Close()
			s.offIdx, s.timeIdx = nil, nil
		}
	}
	return s.rebuildIndexesLocked()
}

// checkIndexes verifies that the index entries point inside the data.
func (s *Segment) checkIndexes() error {
	size := s.size.Load()
	entries := s.offIdx.Entries()
	if n := len(entries); n > 0 && entries[n-1].Position >= size {
		return fmt.Errorf("segment %020d: offset index points past the log (%d >= %d): %w", s.base, entries[n-1].Position, size, ErrCorrupt)
	}
	if next := s.nextOffset.Load(); next > s.base {
		if n := len(entries); n > 0 && entries[n-1].Offset >= next {
			return fmt.Errorf("segment %020d: offset index past the end offset: %w", s.base, ErrCorrupt)
		}
		if last, ok := s.timeIdx.Last(); ok && last.Offset >= next {
			return fmt.Errorf("segment %020d: time index past the end offset: %w", s.base, ErrCorrupt)
		}
	}
	return nil
}

// rebuildIndexesLocked recreates the index files of a sealed segment from
// its data; idxMu must be held.
func (s *Segment) rebuildIndexesLocked() error {
	_, offPath, timePath := FileNames(s.dir, s.base)
	for _, p := range []string{offPath, timePath} {
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, errNotExist) {
			return fmt.Errorf("segment %020d: remove index: %w", s.base, err)
		}
	}
	if err := s.openIndexes(true); err != nil {
		return err
	}
	f, release, err := s.reader()
	if err != nil {
		return err
	}
	_, err = s.scanAndIndex(f, 0, false, false)
	release()
	if err != nil {
		return err
	}
	if err := s.sealIndexes(); err != nil {
		if !errors.Is(err, ErrIndexWrite) {
			return err
		}
		// On a full disk the rebuilt entries stay in memory only: reads
		// are served from them, and the next start rebuilds the files.
		s.dropIndexFiles()
	}
	return nil
}

// dropIndexFiles removes the index files of a sealed segment whose final
// write failed (best effort: removing needs no free space). A file left
// with part of its entries would be trusted at the next clean start, and a
// time index short of its last entry makes the segment look older than it
// is to retention. Without files, the next start rebuilds them.
func (s *Segment) dropIndexFiles() {
	_, offPath, timePath := FileNames(s.dir, s.base)
	_ = s.fs.Remove(offPath)
	_ = s.fs.Remove(timePath)
}

// Base returns the segment's base offset.
func (s *Segment) Base() int64 { return s.base }

// NextOffset returns one past the last offset stored in the segment.
func (s *Segment) NextOffset() int64 { return s.nextOffset.Load() }

// Size returns the bytes of whole batches in the segment.
func (s *Segment) Size() int64 { return s.size.Load() }

// Created is the time the segment was created, for segment.ms.
func (s *Segment) Created() time.Time { return s.created }

// MaxTimestamp returns the largest timestamp in the segment (NoTimestamp
// when it has none). For a sealed segment it comes from the time index.
func (s *Segment) MaxTimestamp() (int64, error) {
	if !s.sealed.Load() {
		return s.maxTimestamp, nil
	}
	if err := s.loadIndexes(); err != nil {
		return 0, err
	}
	if last, ok := s.timeIdx.Last(); ok {
		return last.Timestamp, nil
	}
	return record.NoTimestamp, nil
}

// IndexFull reports whether an index has no room for another entry.
func (s *Segment) IndexFull() bool { return s.offIdx.Full() || s.timeIdx.Full() }

// Append writes whole batches (already validated, offsets assigned, headers
// parsed into hdrs) at the end of the segment. On a write error the segment
// is truncated back to its previous size.
func (s *Segment) Append(data []byte, hdrs []record.BatchHeader) error {
	if s.sealed.Load() {
		return fmt.Errorf("segment %020d: append to a sealed segment", s.base)
	}
	pos := s.size.Load()
	if _, err := s.log.WriteAt(data, pos); err != nil {
		// Leave no partial batch behind for readers or recovery.
		_ = s.log.Truncate(pos)
		return fmt.Errorf("segment %020d: write: %w", s.base, err)
	}
	at := pos
	for _, h := range hdrs {
		if err := s.indexBatch(h, at); err != nil {
			_ = s.log.Truncate(pos)
			return err
		}
		at += int64(h.Size())
	}
	s.nextOffset.Store(hdrs[len(hdrs)-1].LastOffset() + 1)
	s.size.Store(pos + int64(len(data)))
	// The batches were checked (or built) in memory before this write.
	s.noteVerified(pos, pos+int64(len(data)))
	return nil
}

// noteVerified records that the bytes [from, to) hold good batches: the
// verified prefix grows to to when it reaches from. A range past the
// prefix is not remembered (it is checked again on its next read).
func (s *Segment) noteVerified(from, to int64) {
	for {
		v := s.verified.Load()
		if v < from || v >= to {
			return
		}
		if s.verified.CompareAndSwap(v, to) {
			return
		}
	}
}

// Verified is the length of the segment's prefix that reads serve without
// checking CRCs again (for tests and metrics).
func (s *Segment) Verified() int64 { return s.verified.Load() }

func (s *Segment) noteTimestamp(h record.BatchHeader, size int64) bool {
	s.bytesSinceIndex += size
	if h.MaxTimestamp > s.maxTimestamp {
		s.maxTimestamp, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
	}
	return s.bytesSinceIndex > s.cfg.IndexIntervalBytes
}

// indexBatch updates the indexes for a batch written at pos.
func (s *Segment) indexBatch(h record.BatchHeader, pos int64) error {
	if !s.noteTimestamp(h, int64(h.Size())) {
		return nil
	}
	if err := s.offIdx.Append(h.BaseOffset, pos); err != nil && !errors.Is(err, index.ErrFull) {
		return fmt.Errorf("segment %020d: %w", s.base, err)
	}
	if s.maxTimestamp != record.NoTimestamp {
		if err := s.timeIdx.Append(s.maxTimestamp, s.maxTsOffset); err != nil && !errors.Is(err, index.ErrFull) {
			return fmt.Errorf("segment %020d: %w", s.base, err)
		}
	}
	s.bytesSinceIndex = 0
	return nil
}

// Sync makes the data written so far durable. A sealed segment was synced
// when it was sealed.
func (s *Segment) Sync() error {
	s.fileMu.RLock()
	defer s.fileMu.RUnlock()
	if s.log == nil {
		return nil // sealed: synced then
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrSync, err)
	}
	return nil
}

// SyncIndexes makes the index entries durable. A failure wraps
// ErrIndexWrite.
func (s *Segment) SyncIndexes() error {
	if s.offIdx == nil {
		return nil
	}
	if err := s.offIdx.Sync(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrIndexWrite, err)
	}
	if err := s.timeIdx.Sync(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrIndexWrite, err)
	}
	return nil
}

// sealIndexes adds the final time entry and writes both index files; a
// write failure wraps ErrIndexWrite and leaves the indexes writable, so a
// later call retries (the final time entry is not added twice).
func (s *Segment) sealIndexes() error {
	if s.maxTimestamp != record.NoTimestamp {
		// A final time entry so that the sealed segment's largest
		// timestamp can be read from its time index alone.
		if err := s.timeIdx.Append(s.maxTimestamp, s.maxTsOffset); err != nil && !errors.Is(err, index.ErrFull) {
			return fmt.Errorf("segment %020d: %w", s.base, err)
		}
	}
	if err := s.offIdx.Seal(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrIndexWrite, err)
	}
	if err := s.timeIdx.Seal(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrIndexWrite, err)
	}
	return nil
}

// Seal makes the segment read-only: the indexes are trimmed to their entries
// and everything is synced. Used on roll and on clean shutdown. A failed
// fsync of the data wraps ErrSync; a failed index write wraps ErrIndexWrite
// and leaves the segment active (synced), so Seal can be retried.
func (s *Segment) Seal() error {
	if s.sealed.Load() {
		return nil
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("segment %020d: %w: %w", s.base, ErrSync, err)
	}
	s.idxMu.Lock()
	err := s.sealIndexes()
	s.idxMu.Unlock()
	if err != nil {
		return err
	}
	s.sealed.Store(true)
	// From now on reads go through the shared descriptor cache.
	s.fileMu.Lock()
	f := s.log
	s.log = nil
	s.fileMu.Unlock()
	f.Close() // synced above: nothing to report
	return nil
}

// Sealed reports whether the segment is read-only.
func (s *Segment) Sealed() bool { return s.sealed.Load() }

// Close closes the files without syncing them, the cached descriptor
// included.
func (s *Segment) Close() error {
	s.fileMu.Lock()
	var err error
	if s.log != nil {
		err = s.log.Close()
		s.log = nil
	}
	s.fileMu.Unlock()
	if s.cfg.Files != nil {
		logPath, _, _ := FileNames(s.dir, s.base)
		s.cfg.Files.Forget(logPath)
	}
	s.idxMu.Lock()
	if s.offIdx != nil {
		s.offIdx.Close()
		s.timeIdx.Close()
	}
	s.idxMu.Unlock()
	return err
}

// Delete closes and removes the segment's files.
func (s *Segment) Delete() error {
	s.Close()
	logPath, offPath, timePath := FileNames(s.dir, s.base)
	var first error
	for _, p := range []string{logPath, offPath, timePath} {
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, errNotExist) && first == nil {
			first = fmt.Errorf("segment %020d: delete: %w", s.base, err)
		}
	}
	return first
}

// reader returns the file to read the segment's data from, and the
// function to call when done: the active segment's own file, or a sealed
// one's from the descriptor cache.
func (s *Segment) reader() (vfs.File, func(), error) {
	s.fileMu.RLock()
	if s.log != nil {
		return s.log, s.fileMu.RUnlock, nil
	}
	s.fileMu.RUnlock()
	logPath, _, _ := FileNames(s.dir, s.base)
	if s.cfg.Files == nil {
		f, err := s.fs.Open(logPath)
		if err != nil {
			return nil, nil, fmt.Errorf("segment %020d: open: %w", s.base, err)
		}
		return f, func() { f.Close() }, nil
	}
	f, release, err := s.cfg.Files.Acquire(logPath)
	if err != nil {
		return nil, nil, fmt.Errorf("segment %020d: %w", s.base, err)
	}
	return f, release, nil
}

// ensureIndexes is for readers of sealed segments.
func (s *Segment) ensureIndexes() error {
	if s.sealed.Load() {
		return s.loadIndexes()
	}
	return nil
}

// Read returns whole batches starting with the one that holds offset, up to
// maxBytes (at least one whole batch when minOne is set, whatever its size).
// Each batch's CRC is verified when verify is set. It returns nil when no
// batch in the segment ends at or after offset.
func (s *Segment) Read(offset int64, maxBytes int, minOne, verify bool) ([]byte, error) {
	if err := s.ensureIndexes(); err != nil {
		return nil, err
	}
	f, release, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer release()
	size := s.size.Load()
	pos, err := s.findBatch(f, offset, size)
	if err != nil || pos < 0 {
		return nil, err
	}
	end := size
	if maxBytes >= 0 && pos+int64(maxBytes) < end {
		end = pos + int64(maxBytes)
	}
	if end-pos < record.BatchHeaderSize && minOne {
		end = min(size, pos+record.BatchHeaderSize)
	}
	// Batches ending at or below checked were verified by this process
	// before (or written by it): they are not hashed again.
	checked := s.verified.Load()
	// A reused buffer (bufpool: the Kafka server gives fetch buffers back
	// once written) holds stale bytes: only what ReadAt returned counts.
	buf := bufpool.Get(int(end - pos))
	nr, err := f.ReadAt(buf, pos)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("segment %020d: read at %d: %w", s.base, pos, err)
	}
	buf = buf[:nr]
	// Keep whole batches only.
	var n int
	for n < len(buf) {
		if len(buf)-n < record.BatchHeaderSize {
			break
		}
		h, err := record.ReadBatchHeader(buf[n:])
		if err != nil {
			return nil, fmt.Errorf("segment %020d: batch at %d: %w: %v", s.base, pos+int64(n), ErrCorrupt, err)
		}
		bs := h.Size()
		if n+bs > len(buf) {
			if n == 0 && minOne && pos+int64(bs) <= size {
				// The first batch is larger than maxBytes: return it whole.
				whole := make([]byte, bs)
				if _, err := f.ReadAt(whole, pos); err != nil && !errors.Is(err, io.EOF) {
					return nil, fmt.Errorf("segment %020d: read at %d: %w", s.base, pos, err)
				}
				buf = whole
				n = bs
				if verify && pos+int64(bs) > checked {
					if _, err := record.CheckCRC(buf); err != nil {
						return nil, fmt.Errorf("segment %020d: batch at %d: %w: %v", s.base, pos, ErrCorrupt, err)
					}
				}
			}
			break
		}
		if verify && pos+int64(n+bs) > checked {
			if _, err := record.CheckCRC(buf[n : n+bs]); err != nil {
				return nil, fmt.Errorf("segment %020d: batch at offset %d (position %d): %w: %v", s.base, h.BaseOffset, pos+int64(n), ErrCorrupt, err)
			}
		}
		n += bs
	}
	if verify {
		s.noteVerified(pos, pos+int64(n))
	}
	return buf[:n], nil
}

// findBatch returns the position of the first batch whose last offset is >=
// offset, or -1 if there is none below size.
func (s *Segment) findBatch(f vfs.File, offset int64, size int64) (int64, error) {
	pos := int64(0)
	if s.offIdx != nil {
		pos = s.offIdx.Lookup(offset).Position
	}
	var hdr [record.BatchHeaderSize]byte
	for pos < size {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return 0, fmt.Errorf("segment %020d: read header at %d: %w", s.base, pos, err)
		}
		h, err := record.ReadBatchHeader(hdr[:])
		if err != nil {
			return 0, fmt.Errorf("segment %020d: header at %d: %w: %v", s.base, pos, ErrCorrupt, err)
		}
		if h.LastOffset() >= offset {
			return pos, nil
		}
		pos += int64(h.Size())
	}
	return -1, nil
}

// FindTimestamp returns the first batch (its raw bytes) whose max timestamp
// is >= ts, or nil when the segment has none.
func (s *Segment) FindTimestamp(ts int64) ([]byte, error) {
	if err := s.ensureIndexes(); err != nil {
		return nil, err
	}
	f, release, err := s.reader()
	if err != nil {
		return nil, err
	}
	defer release()
	start := s.base
	if e, ok := s.timeIdx.Lookup(ts); ok {
		start = e.Offset
	}
	pos := s.offIdx.Lookup(start).Position
	size := s.size.Load()
	var hdr [record.BatchHeaderSize]byte
	for pos < size {
		if _, err := f.ReadAt(hdr[:], pos); err != nil {
			return nil, fmt.Errorf("segment %020d: read header at %d: %w", s.base, pos, err)
		}
		h, err := record.ReadBatchHeader(hdr[:])
		if err != nil {
			return nil, fmt.Errorf("segment %020d: header at %d: %w: %v", s.base, pos, ErrCorrupt, err)
		}
		if h.MaxTimestamp >= ts {
			buf := make([]byte, h.Size())
			if _, err := f.ReadAt(buf, pos); err != nil {
				return nil, fmt.Errorf("segment %020d: read at %d: %w", s.base, pos, err)
			}
			if _, err := record.CheckCRC(buf); err != nil {
				return nil, fmt.Errorf("segment %020d: batch at %d: %w: %v", s.base, pos, ErrCorrupt, err)
			}
			return buf, nil
		}
		pos += int64(h.Size())
	}
	return nil, nil
}

// Modified returns the log file's modification time (zero if unknown).
func (s *Segment) Modified() time.Time {
	logPath, _, _ := FileNames(s.dir, s.base)
	fi, err := s.fs.Stat(logPath)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
