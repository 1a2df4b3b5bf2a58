package segment

import (
	"fmt"
	"os"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Section is a range of whole batches in a segment's file, handed out open
// so that the bytes can go from the page cache to a socket without being
// read into memory (sendfile). Release must be called exactly once, when
// the bytes were sent or will not be; until then the file stays open (a
// deleted segment's bytes stay readable).
type Section struct {
	File       *os.File
	Off        int64
	Len        int
	LastOffset int64 // the last offset in the section's last batch
	release    func()
}

// Release gives the section's file back.
func (s *Section) Release() {
	if s.release != nil {
		s.release()
		s.release = nil
	}
}

// ReadSection is Read without reading: the same batches Read would return
// (from the one holding offset, up to maxBytes, the first whole when minOne
// is set), as a Section of the file. ok is false, and the caller reads
// instead, when the section would hold a batch whose CRC this process has
// not checked (Read checks it, and the next ReadSection can then send it),
// when the first batch is larger than maxBytes, when there is no batch at
// or after offset, when the file is not an operating system file, or when
// no descriptor could be opened for it.
//
// The section ends before the first batch whose base offset is at or past
// below (a replicated partition's high watermark; math.MaxInt64 for none).
func (s *Segment) ReadSection(offset int64, maxBytes int, below int64) (sec Section, ok bool, err error) {
	if err := s.ensureIndexes(); err != nil {
		return Section{}, false, err
	}
	f, release, err := s.sectionFile()
	if err != nil {
		// No descriptor to spare (EMFILE) or the like: Read, which uses
		// the segment's own or reports the error itself.
		return Section{}, false, nil
	}
	osf, isOS := f.(vfs.OSFiler)
	if !isOS {
		release()
		return Section{}, false, nil
	}
	done := false
	defer func() {
		if !done {
			release()
		}
	}()
	size := s.size.Load()
	checked := s.verified.Load()
	pos, err := s.findBatch(f, offset, size)
	if err != nil || pos < 0 {
		return Section{}, false, err
	}
	end := min(size, checked)
	if maxBytes >= 0 && pos+int64(maxBytes) < end {
		end = pos + int64(maxBytes)
	}
	last := int64(-1)
	at := pos
	// Headers read a chunk at a time (walkHeadersIn), not one pread each.
	err = s.walkHeadersIn(f, pos, size, func(h record.BatchHeader, p int64) bool {
		if p+int64(h.Size()) > end || h.BaseOffset >= below {
			return false
		}
		at, last = p+int64(h.Size()), h.LastOffset()
		return true
	})
	if err != nil {
		return Section{}, false, err
	}
	if at == pos {
		return Section{}, false, nil
	}
	done = true
	return Section{File: osf.OSFile(), Off: pos, Len: int(at - pos), LastOffset: last, release: release}, true, nil
}

// sectionFile opens the segment's file for a Section: a sealed segment's
// from the descriptor cache, the active one's anew (its own descriptor is
// closed by Seal, which must not wait for a socket).
func (s *Segment) sectionFile() (vfs.File, func(), error) {
	if !s.sealed.Load() {
		logPath, _, _ := FileNames(s.dir, s.base)
		f, err := s.fs.Open(logPath)
		if err != nil {
			return nil, nil, fmt.Errorf("segment %020d: open: %w", s.base, err)
		}
		return f, func() { f.Close() }, nil
	}
	return s.reader()
}
