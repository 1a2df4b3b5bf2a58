package raftlog

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// A region too large to ride inline in a snapshot's Data (Region's
// maxBytes) travels beside it, in chunks: the leader reads it from its
// log as it sends (RegionReader), the follower checks each chunk
// (RegionCheck), spools it into a file of the partition directory and
// installs from that file (InstallSnapshotRegionFile). Neither side holds
// more than a chunk in memory. Who moves the chunks (a socket) is not
// this package's business.

// RegionStreamFile is the file in the partition directory that holds,
// during an install of a streamed region (InstallSnapshotRegionFile), the
// leader's batches below its anchor: raw batches, no header (each batch
// carries its CRC; the file was fsynced before it got this name). It is
// renamed from the caller's spool before the install's commit point (the
// state with the reset, region and stream flags), read again by Open if a
// crash cuts the install after it, removed once the install is done; Open
// removes one whose install never committed.
const RegionStreamFile = "raft-region-stream"

// regionFillChunk is how much of RegionStreamFile the install reads and
// appends at a time.
const regionFillChunk = 1 << 20

// RegionReader reads the batches in [start, to) of a leader's log in
// chunks of whole batches, as they are when read. It holds no lock of the
// Storage between chunks and may run on any goroutine (one at a time):
// the log serves reads concurrently with appends, the cleaner (which
// rewrites segments below the anchor, keeping offsets: a batch it dropped
// is skipped, the next read starts after the last batch sent) and
// retention (a start moved past the next offset fails the read).
type RegionReader struct {
	log   *seglog.Log
	off   int64 // the next offset to send
	to    int64
	chunk int
	buf   []byte
}

// RegionReader returns a reader of the batches in [start, to) (the first
// may begin below start, holding it), chunkBytes at most per chunk unless
// one batch is larger (it then comes alone).
func (s *Storage) RegionReader(start, to int64, chunkBytes int) *RegionReader {
	return &RegionReader{log: s.log, off: start, to: to, chunk: max(chunkBytes, record.BatchHeaderSize)}
}

// Next returns the next chunk, whole batches in offset order, or io.EOF
// after the last. The chunk is valid until the next call.
func (rr *RegionReader) Next() ([]byte, error) {
	for rr.off < rr.to {
		res, err := rr.log.Read(rr.off, rr.chunk, true)
		if err != nil {
			return nil, fmt.Errorf("raftlog %s: region at %d: %w", rr.log.Dir(), rr.off, err)
		}
		if len(res.Data) == 0 {
			break // a gap up to the end
		}
		out, next := rr.buf[:0], rr.off
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil || h.Size() > len(b) {
				return nil, fmt.Errorf("raftlog %s: region at %d: %w", rr.log.Dir(), rr.off, record.ErrCorrupt)
			}
			if h.BaseOffset >= rr.to {
				next = rr.to
				break
			}
			if h.LastOffset() >= rr.off {
				out = append(out, b[:h.Size()]...)
				next = max(next, h.LastOffset()+1)
			}
			b = b[h.Size():]
		}
		if next == rr.off {
			break
		}
		rr.off, rr.buf = next, out
		if len(out) > 0 {
			return out, nil
		}
	}
	rr.off = rr.to
	return nil, io.EOF
}

// ErrRegionChunk: a chunk of a streamed region is not what a region may
// hold (RegionCheck).
var ErrRegionChunk = errors.New("raftlog: bad region chunk")

// RegionCheck checks a streamed region chunk by chunk, as the follower
// receives it, before it is spooled: whole batches, each with a valid CRC,
// in increasing offset order, the first holding or above start, none
// reaching the anchor. InstallSnapshotRegionFile trusts a file whose every
// chunk passed.
type RegionCheck struct {
	start, anchor int64
	base          int64 // where a log holding the region restarts (Base)
	next          int64 // the offset after the last batch checked; -1 before the first
	size          int64
}

// NewRegionCheck checks a region [start, anchor).
func NewRegionCheck(start, anchor int64) *RegionCheck {
	return &RegionCheck{start: start, anchor: anchor, base: start, next: -1}
}

// Base is where a log holding the region checked so far must restart:
// start, or the first batch's base offset when that is lower (it holds
// start).
func (c *RegionCheck) Base() int64 { return c.base }

// Add checks the next chunk.
func (c *RegionCheck) Add(chunk []byte) error {
	for b := chunk; len(b) > 0; {
		h, err := record.ReadBatchHeader(b)
		if err == nil && h.Size() > len(b) {
			err = fmt.Errorf("batch of %d bytes, %d left in the chunk", h.Size(), len(b))
		}
		if err == nil {
			_, err = record.CheckCRC(b[:h.Size()])
		}
		if err != nil {
			return fmt.Errorf("%w: at byte %d of the region: %v", ErrRegionChunk, c.size, err)
		}
		switch {
		case c.next < 0 && h.LastOffset() < c.start:
			return fmt.Errorf("%w: first batch ends at %d, below the log start %d", ErrRegionChunk, h.LastOffset(), c.start)
		case c.next >= 0 && h.BaseOffset < c.next:
			return fmt.Errorf("%w: batch at %d after %d", ErrRegionChunk, h.BaseOffset, c.next)
		case h.LastOffset() >= c.anchor:
			return fmt.Errorf("%w: batch at %d reaches the anchor %d", ErrRegionChunk, h.BaseOffset, c.anchor)
		}
		if c.next < 0 {
			c.base = min(c.base, h.BaseOffset)
		}
		c.next = h.LastOffset() + 1
		c.size += int64(h.Size())
		b = b[h.Size():]
	}
	return nil
}

// InstallSnapshotRegionFile is InstallSnapshotRegion with the region in a
// file (spool: raw batches, every chunk passed a RegionCheck of start and
// anchorOff, fsynced) of the log's directory rather than in memory. The
// spool is renamed to RegionStreamFile (and the directory fsynced) before
// the commit point, the state with the reset, region and stream flags;
// then the log is filled from the file a chunk at a time
// (fillRegionFromLocked), and the file removed. Crash-safe as
// InstallSnapshotRegion: a cut before the commit point leaves the old log
// (Open removes the file), after it Open redoes the fill.
func (s *Storage) InstallSnapshotRegionFile(meta *raftpb.SnapshotMetadata, start, anchorOff int64, spool string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index, term := meta.GetIndex(), meta.GetTerm()
	if err := s.checkRegionInstallLocked(index, term, start, anchorOff); err != nil {
		return err
	}
	dir := s.log.Dir()
	if filepath.Dir(spool) != filepath.Clean(dir) {
		return fmt.Errorf("raftlog %s: install snapshot at %d: spool %s outside the log's directory", dir, index, spool)
	}
	if err := s.fs.Rename(spool, filepath.Join(dir, RegionStreamFile)); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", dir, index, err)
	}
	if err := s.fs.SyncDir(dir); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", dir, index, err)
	}
	p := installedState(s.mu.st, meta, start, anchorOff)
	p.region, p.stream = true, true
	if err := s.saveLocked(p); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", dir, index, err)
	}
	s.mu.offs, s.mu.terms, s.mu.confs = s.mu.offs[:0], s.mu.terms[:0], s.mu.confs[:0]
	s.mu.cache.clear()
	if err := s.finishResetLocked(&s.mu.st); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", dir, index, err)
	}
	return nil
}

// fillRegionFromLocked is the log part of a committed install with a
// region (p.region), the region's size bytes read from r (RegionFile's
// payload, or RegionStreamFile, named name for errors): the log restarts
// at the first batch's base (or p.start, when lower), the region is
// appended as a follower appends, regionFillChunk at a time (whole
// batches; a larger batch alone), then fsynced, the end moved to the
// anchor and the start to p.start. Idempotent: the reset discards
// whatever a cut run left. mu must be held, or s not yet shared.
func (s *Storage) fillRegionFromLocked(p *persisted, r io.ReaderAt, size int64, name string) error {
	dir := s.log.Dir()
	corrupt := func(pos int64, err error) error {
		return fmt.Errorf("raftlog %s: %s at byte %d: %v: %w", dir, name, pos, err, record.ErrCorrupt)
	}
	var hdr [record.BatchHeaderSize]byte
	base := p.start
	if size > 0 {
		if _, err := r.ReadAt(hdr[:], 0); err != nil {
			return corrupt(0, err)
		}
		h, err := record.ReadBatchHeader(hdr[:])
		if err != nil {
			return corrupt(0, err)
		}
		base = min(base, h.BaseOffset)
	}
	if err := s.log.ResetAt(base); err != nil {
		return fmt.Errorf("raftlog %s: restart the log at %d: %w", dir, base, err)
	}
	buf := make([]byte, regionFillChunk)
	for pos := int64(0); pos < size; {
		n := int(min(int64(len(buf)), size-pos))
		if _, err := r.ReadAt(buf[:n], pos); err != nil {
			return corrupt(pos, err)
		}
		whole := 0
		for whole+record.BatchHeaderSize <= n {
			h, err := record.ReadBatchHeader(buf[whole:n])
			if err != nil {
				return corrupt(pos+int64(whole), err)
			}
			if whole+h.Size() > n {
				if whole == 0 {
					// One batch larger than the buffer: read it alone.
					if int64(h.Size()) > size-pos {
						return corrupt(pos, io.ErrUnexpectedEOF)
					}
					buf = make([]byte, h.Size())
					n = 0
				}
				break
			}
			whole += h.Size()
		}
		if n == 0 {
			continue
		}
		if whole == 0 {
			return corrupt(pos, io.ErrUnexpectedEOF)
		}
		if err := s.log.AppendAsFollower(buf[:whole]); err != nil {
			return fmt.Errorf("raftlog %s: copy the region below the anchor: %w", dir, err)
		}
		pos += int64(whole)
	}
	if err := s.log.Flush(); err != nil {
		return fmt.Errorf("raftlog %s: fsync the region below the anchor: %w", dir, err)
	}
	if err := s.log.SkipTo(p.an.offset); err != nil {
		return fmt.Errorf("raftlog %s: move the log end to the anchor %d: %w", dir, p.an.offset, err)
	}
	if p.start > base {
		if err := s.log.AdvanceStartOffset(p.start); err != nil {
			return fmt.Errorf("raftlog %s: move the log start to %d: %w", dir, p.start, err)
		}
	}
	return nil
}
