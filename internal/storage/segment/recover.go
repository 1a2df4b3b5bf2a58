package segment

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
)

var errNotExist = fs.ErrNotExist

// Recover validates every batch of the segment from the start: its header,
// that it lies wholly inside the file, its CRC, and that offsets increase
// (the first base offset must be >= minBase, the segment's own base at
// least). The log is truncated at the first byte that fails, both indexes
// are rebuilt from the valid batches, and the number of bytes cut is
// returned. Recover never fails because of bad data, only on I/O errors.
// When only the index files could not be written (a full disk at start),
// the segment is recovered and usable with its indexes in memory, and the
// error returned wraps ErrIndexWrite: the caller may go on.
func (s *Segment) Recover(minBase int64) (int64, error) {
	return s.recover(minBase, true)
}

// RecoverTrusted is Recover for a segment whose bytes are known to be what
// the broker wrote, except possibly for a torn tail: the previous process
// was killed but the machine kept running, so the page cache holds every
// completed write (see seglog.State.TrustCache). It checks every batch's
// header, that it lies wholly inside the file and that offsets increase,
// but reads no record data and computes no CRC: a write torn by the kill
// is a batch cut short at the end of the file, which those checks find.
func (s *Segment) RecoverTrusted(minBase int64) (int64, error) {
	return s.recover(minBase, false)
}

func (s *Segment) recover(minBase int64, verifyCRC bool) (int64, error) {
	if minBase < s.base {
		minBase = s.base
	}
	s.idxMu.Lock()
	defer s.idxMu.Unlock()
	if s.offIdx != nil {
		s.offIdx.Close()
		s.timeIdx.Close()
		s.offIdx, s.timeIdx = nil, nil
	}
	_, offPath, timePath := FileNames(s.dir, s.base)
	for _, p := range []string{offPath, timePath} {
		if err := s.fs.Remove(p); err != nil && !errors.Is(err, errNotExist) {
			return 0, fmt.Errorf("segment %020d: remove index: %w", s.base, err)
		}
	}
	if err := s.openIndexes(true); err != nil {
		return 0, err
	}
	// A sealed segment holds no descriptor: open one for the recovery.
	f := s.log
	if f == nil {
		logPath, _, _ := FileNames(s.dir, s.base)
		if s.cfg.Files != nil {
			s.cfg.Files.Forget(logPath) // about to be truncated
		}
		var err error
		if f, err = s.fs.OpenReadWrite(logPath); err != nil {
			return 0, fmt.Errorf("segment %020d: open to recover: %w", s.base, err)
		}
		defer f.Close()
	}
	fileSize, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("segment %020d: size: %w", s.base, err)
	}
	s.size.Store(fileSize)
	valid, err := s.scanAndIndex(f, minBase, true, verifyCRC)
	if err != nil {
		return 0, err
	}
	cut := fileSize - valid
	if cut > 0 {
		if err := f.Truncate(valid); err != nil {
			return 0, fmt.Errorf("segment %020d: truncate to %d: %w", s.base, valid, err)
		}
		if err := f.Sync(); err != nil {
			return 0, fmt.Errorf("segment %020d: %w: %w", s.base, ErrSync, err)
		}
	}
	s.size.Store(valid)
	s.verified.Store(0)
	if verifyCRC {
		// Every batch below valid was just checked.
		s.verified.Store(valid)
	}
	if s.sealed.Load() {
		if err := s.sealIndexes(); err != nil {
			if errors.Is(err, ErrIndexWrite) {
				s.dropIndexFiles()
			}
			return cut, err
		}
	} else if err := s.SyncIndexes(); err != nil {
		return cut, err
	}
	return cut, nil
}

// scanAndIndex walks the batches from position 0, adding index entries, and
// returns the position just past the last valid batch. With verify,
// offsets must increase from minBase; with verifyCRC too, each batch's CRC
// is checked (its whole bytes read).
func (s *Segment) scanAndIndex(f vfs.File, minBase int64, verify, verifyCRC bool) (int64, error) {
	size := s.size.Load()
	s.bytesSinceIndex = 0
	s.maxTimestamp, s.maxTsOffset = record.NoTimestamp, s.base
	s.nextOffset.Store(s.base)
	next := minBase
	r := newChunkReader(f, s.base, size) // not a read per batch: chunkread.go
	defer r.release()
	var scratch []byte
	var pos int64
	for pos < size {
		if size-pos < record.BatchHeaderSize {
			break
		}
		hb, err := r.header(pos)
		if err != nil {
			return 0, err
		}
		h, err := record.ReadBatchHeader(hb)
		if err != nil || int64(h.Size()) > size-pos {
			break
		}
		if verify {
			if h.BaseOffset < next || h.LastOffsetDelta < 0 || h.LastOffset()-s.base > 0xFFFFFFFF {
				break
			}
		}
		if verifyCRC {
			b, err := r.batch(pos, h.Size(), &scratch)
			if err != nil {
				return 0, err
			}
			if len(b) < h.Size() {
				break
			}
			if _, err := record.CheckCRC(b); err != nil {
				break
			}
		}
		if err := s.indexBatch(h, pos); err != nil {
			return 0, err
		}
		next = h.LastOffset() + 1
		s.nextOffset.Store(next)
		r.next(h.Size())
		pos += int64(h.Size())
	}
	return pos, nil
}
