package index

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"sort"
	"sync"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrFull is returned by Append when the index reached its maximum size; the
// log rolls the segment when it sees it.
var ErrFull = errors.New("index: full")

// ErrUnordered is returned by Append for an entry that would break the sort
// order.
var ErrUnordered = errors.New("index: entry out of order")

const (
	offsetEntrySize = 8
	timeEntrySize   = 12
)

// file is what both indexes share: a file of fixed-size entries, all of
// them kept in memory. No file descriptor is held between operations: a
// sealed index is read once and closed, and an active one writes its new
// entries when it is synced or sealed (open, write, sync, close), so that
// 10,000 partitions hold one descriptor each (their .log), not three.
type file struct {
	fs        vfs.FS
	path      string
	entrySize int
	maxBytes  int64

	mu     sync.RWMutex
	buf    []byte // valid entries
	writes bool   // accepts appends (the active segment's)
	closed bool
	// onDisk is how many bytes of buf the file holds; fileLen is the file's
	// length as last seen or left (-1: there is no file yet). The file is
	// behind buf when onDisk < len(buf) or fileLen != onDisk.
	onDisk  int
	fileLen int64
}

func openFile(fs vfs.FS, path string, entrySize int, maxBytes int64, writable bool, valid func(prev, cur []byte) bool) (*file, error) {
	maxBytes -= maxBytes % int64(entrySize)
	if maxBytes < int64(entrySize) {
		maxBytes = int64(entrySize)
	}
	x := &file{fs: fs, path: path, entrySize: entrySize, maxBytes: maxBytes, writes: writable, fileLen: -1}
	f, err := fs.Open(path)
	if errors.Is(err, iofs.ErrNotExist) && writable {
		return x, nil // a new active index: the file is made at its first sync
	}
	if err != nil {
		return nil, fmt.Errorf("index %s: open: %w", path, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, fmt.Errorf("index %s: size: %w", path, err)
	}
	x.fileLen = size
	size = min(size, maxBytes)
	size -= size % int64(entrySize)
	raw := make([]byte, size)
	if _, err := f.ReadAt(raw, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("index %s: read: %w", path, err)
	}
	n := 0
	for i := 0; i+entrySize <= len(raw); i += entrySize {
		var prev []byte
		if i > 0 {
			prev = raw[i-entrySize : i]
		}
		if !valid(prev, raw[i:i+entrySize]) {
			break
		}
		n = i + entrySize
	}
	x.buf = raw[:n:n]
	x.onDisk = n
	return x, nil
}

func (x *file) entries() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.buf) / x.entrySize
}

func (x *file) full() bool { return int64(len(x.buf)+x.entrySize) > x.maxBytes }

// appendEntry adds one entry in memory; mu must not be held.
func (x *file) appendEntry(e []byte) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || !x.writes {
		return fmt.Errorf("index %s: append to a read-only or closed index", x.path)
	}
	if x.full() {
		return ErrFull
	}
	x.buf = append(x.buf, e...)
	return nil
}

// truncateEntries keeps the first n entries; the file follows at the next
// sync or seal.
func (x *file) truncateEntries(n int) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if n*x.entrySize >= len(x.buf) {
		return nil
	}
	x.buf = x.buf[:n*x.entrySize]
	x.onDisk = min(x.onDisk, len(x.buf))
	return nil
}

// writeLocked brings the file up to buf: it writes the entries the file
// lacks, cuts anything after them (stale entries, or the zeros of a file
// preallocated by an earlier version) and syncs. mu must be held.
func (x *file) writeLocked() error {
	if x.onDisk == len(x.buf) && x.fileLen == int64(len(x.buf)) {
		return nil
	}
	f, err := x.fs.OpenReadWrite(x.path)
	if err != nil {
		return fmt.Errorf("index %s: open: %w", x.path, err)
	}
	if x.onDisk < len(x.buf) {
		if _, err := f.WriteAt(x.buf[x.onDisk:], int64(x.onDisk)); err != nil {
			f.Close()
			return fmt.Errorf("index %s: write: %w", x.path, err)
		}
	}
	if err := f.Truncate(int64(len(x.buf))); err != nil {
		f.Close()
		return fmt.Errorf("index %s: truncate: %w", x.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("index %s: sync: %w", x.path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("index %s: close: %w", x.path, err)
	}
	x.onDisk, x.fileLen = len(x.buf), int64(len(x.buf))
	return nil
}

// sync makes the entries durable.
func (x *file) sync() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || !x.writes {
		return nil
	}
	return x.writeLocked()
}

// seal writes and syncs the entries, leaving a file of exactly them, and
// makes the index read-only.
func (x *file) seal() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed || !x.writes {
		return nil
	}
	if err := x.writeLocked(); err != nil {
		return err
	}
	x.writes = false
	return nil
}

// close ends appends. Entries not yet synced are not written: an index is a
// hint, and recovery rebuilds the active segment's from the data.
func (x *file) close() error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.closed = true
	return nil
}

// search returns the index of the last entry for which before(entry) is
// true, or -1. before must be monotonic (true then false).
func (x *file) search(before func(e []byte) bool) (int, []byte) {
	n := len(x.buf) / x.entrySize
	i := sort.Search(n, func(i int) bool {
		return !before(x.buf[i*x.entrySize : (i+1)*x.entrySize])
	})
	if i == 0 {
		return -1, nil
	}
	return i - 1, x.buf[(i-1)*x.entrySize : i*x.entrySize]
}

// OffsetIndex maps offsets to file positions in one segment.
type OffsetIndex struct {
	base int64
	file *file
}

// OpenOffsetIndex opens (creating if needed when writable) the offset index
// of the segment with base offset base. maxBytes bounds the file size.
func OpenOffsetIndex(fs vfs.FS, path string, base int64, maxBytes int64, writable bool) (*OffsetIndex, error) {
	f, err := openFile(fs, path, offsetEntrySize, maxBytes, writable, func(prev, cur []byte) bool {
		if prev == nil {
			return true
		}
		return binary.BigEndian.Uint32(cur) > binary.BigEndian.Uint32(prev) &&
			binary.BigEndian.Uint32(cur[4:]) > binary.BigEndian.Uint32(prev[4:])
	})
	if err != nil {
		return nil, err
	}
	return &OffsetIndex{base: base, file: f}, nil
}

// OffsetEntry is one decoded offset index entry.
type OffsetEntry struct {
	Offset   int64 // absolute
	Position int64
}

// Append adds an entry for the batch holding offset that starts at position.
func (x *OffsetIndex) Append(offset, position int64) error {
	rel := offset - x.base
	if rel < 0 || rel > 0xFFFFFFFF || position < 0 || position > 0xFFFFFFFF {
		return fmt.Errorf("index %s: offset %d position %d out of range: %w", x.file.path, offset, position, ErrUnordered)
	}
	x.file.mu.RLock()
	if n := len(x.file.buf); n > 0 {
		last := x.file.buf[n-offsetEntrySize:]
		if uint32(rel) <= binary.BigEndian.Uint32(last) || uint32(position) <= binary.BigEndian.Uint32(last[4:]) {
			x.file.mu.RUnlock()
			return ErrUnordered
		}
	}
	x.file.mu.RUnlock()
	var e [offsetEntrySize]byte
	binary.BigEndian.PutUint32(e[:], uint32(rel))
	binary.BigEndian.PutUint32(e[4:], uint32(position))
	return x.file.appendEntry(e[:])
}

// Lookup returns the last entry at or below offset, or the segment's start
// (base, 0) when there is none.
func (x *OffsetIndex) Lookup(offset int64) OffsetEntry {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	rel := offset - x.base
	if rel < 0 {
		return OffsetEntry{Offset: x.base}
	}
	_, e := x.file.search(func(e []byte) bool { return int64(binary.BigEndian.Uint32(e)) <= rel })
	if e == nil {
		return OffsetEntry{Offset: x.base}
	}
	return OffsetEntry{Offset: x.base + int64(binary.BigEndian.Uint32(e)), Position: int64(binary.BigEndian.Uint32(e[4:]))}
}

// Entries returns all entries (for tests and verification).
func (x *OffsetIndex) Entries() []OffsetEntry {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	out := make([]OffsetEntry, 0, len(x.file.buf)/offsetEntrySize)
	for i := 0; i < len(x.file.buf); i += offsetEntrySize {
		e := x.file.buf[i:]
		out = append(out, OffsetEntry{Offset: x.base + int64(binary.BigEndian.Uint32(e)), Position: int64(binary.BigEndian.Uint32(e[4:]))})
	}
	return out
}

// TruncateAfterPosition drops every entry whose position is >= pos (used
// when the log is truncated to pos bytes).
func (x *OffsetIndex) TruncateAfterPosition(pos int64) error {
	x.file.mu.RLock()
	n := len(x.file.buf) / offsetEntrySize
	keep := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint32(x.file.buf[i*offsetEntrySize+4:])) >= pos
	})
	x.file.mu.RUnlock()
	return x.file.truncateEntries(keep)
}

// Len is the number of entries.
func (x *OffsetIndex) Len() int { return x.file.entries() }

// Full reports whether another entry would exceed the maximum size.
func (x *OffsetIndex) Full() bool {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	return x.file.full()
}

// Sync, Seal and Close: see the file methods.
func (x *OffsetIndex) Sync() error  { return x.file.sync() }
func (x *OffsetIndex) Seal() error  { return x.file.seal() }
func (x *OffsetIndex) Close() error { return x.file.close() }

// TimeIndex maps timestamps to offsets in one segment.
type TimeIndex struct {
	base int64
	file *file
}

// TimeEntry is one decoded time index entry.
type TimeEntry struct {
	Timestamp int64
	Offset    int64 // absolute
}

// OpenTimeIndex opens the time index of the segment with base offset base.
func OpenTimeIndex(fs vfs.FS, path string, base int64, maxBytes int64, writable bool) (*TimeIndex, error) {
	f, err := openFile(fs, path, timeEntrySize, maxBytes, writable, func(prev, cur []byte) bool {
		if prev == nil {
			return true
		}
		return int64(binary.BigEndian.Uint64(cur)) > int64(binary.BigEndian.Uint64(prev)) &&
			binary.BigEndian.Uint32(cur[8:]) >= binary.BigEndian.Uint32(prev[8:])
	})
	if err != nil {
		return nil, err
	}
	return &TimeIndex{base: base, file: f}, nil
}

// Append records that by offset the largest timestamp seen is ts. Entries
// that would not raise the timestamp are ignored (returns nil).
func (x *TimeIndex) Append(ts, offset int64) error {
	rel := offset - x.base
	if rel < 0 || rel > 0xFFFFFFFF {
		return fmt.Errorf("index %s: offset %d out of range: %w", x.file.path, offset, ErrUnordered)
	}
	x.file.mu.RLock()
	if n := len(x.file.buf); n > 0 {
		last := x.file.buf[n-timeEntrySize:]
		if ts <= int64(binary.BigEndian.Uint64(last)) {
			x.file.mu.RUnlock()
			return nil
		}
		if uint32(rel) < binary.BigEndian.Uint32(last[8:]) {
			x.file.mu.RUnlock()
			return ErrUnordered
		}
	}
	x.file.mu.RUnlock()
	var e [timeEntrySize]byte
	binary.BigEndian.PutUint64(e[:], uint64(ts))
	binary.BigEndian.PutUint32(e[8:], uint32(rel))
	return x.file.appendEntry(e[:])
}

// Lookup returns the last entry whose timestamp is <= ts, and false when
// every entry is later (or there are none).
func (x *TimeIndex) Lookup(ts int64) (TimeEntry, bool) {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	_, e := x.file.search(func(e []byte) bool { return int64(binary.BigEndian.Uint64(e)) <= ts })
	if e == nil {
		return TimeEntry{}, false
	}
	return TimeEntry{Timestamp: int64(binary.BigEndian.Uint64(e)), Offset: x.base + int64(binary.BigEndian.Uint32(e[8:]))}, true
}

// Last returns the last entry (the segment's largest timestamp), if any.
func (x *TimeIndex) Last() (TimeEntry, bool) {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	n := len(x.file.buf)
	if n == 0 {
		return TimeEntry{}, false
	}
	e := x.file.buf[n-timeEntrySize:]
	return TimeEntry{Timestamp: int64(binary.BigEndian.Uint64(e)), Offset: x.base + int64(binary.BigEndian.Uint32(e[8:]))}, true
}

// Entries returns all entries.
func (x *TimeIndex) Entries() []TimeEntry {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	out := make([]TimeEntry, 0, len(x.file.buf)/timeEntrySize)
	for i := 0; i < len(x.file.buf); i += timeEntrySize {
		e := x.file.buf[i:]
		out = append(out, TimeEntry{Timestamp: int64(binary.BigEndian.Uint64(e)), Offset: x.base + int64(binary.BigEndian.Uint32(e[8:]))})
	}
	return out
}

// TruncateAfterOffset drops every entry whose offset is >= offset.
func (x *TimeIndex) TruncateAfterOffset(offset int64) error {
	rel := offset - x.base
	x.file.mu.RLock()
	n := len(x.file.buf) / timeEntrySize
	keep := sort.Search(n, func(i int) bool {
		return int64(binary.BigEndian.Uint32(x.file.buf[i*timeEntrySize+8:])) >= rel
	})
	x.file.mu.RUnlock()
	return x.file.truncateEntries(keep)
}

// Len is the number of entries.
func (x *TimeIndex) Len() int { return x.file.entries() }

// Full reports whether another entry would exceed the maximum size.
func (x *TimeIndex) Full() bool {
	x.file.mu.RLock()
	defer x.file.mu.RUnlock()
	return x.file.full()
}

// Sync, Seal and Close: see the file methods.
func (x *TimeIndex) Sync() error  { return x.file.sync() }
func (x *TimeIndex) Seal() error  { return x.file.seal() }
func (x *TimeIndex) Close() error { return x.file.close() }

// unseal makes a sealed file accept appends again.
func (x *file) unseal() {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.closed {
		x.writes = true
	}
}

// Unseal makes a sealed offset index writable again: its segment was
// truncated and is the active one once more.
func (x *OffsetIndex) Unseal() { x.file.unseal() }

// Unseal makes a sealed time index writable again (see OffsetIndex.Unseal).
func (x *TimeIndex) Unseal() { x.file.unseal() }
