package vfs

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrLocked is what Lock returns (wrapped in a *LockedError) when another
// holder has the lock.
var ErrLocked = errors.New("locked by another holder")

// LockedError says who holds a lock that Lock could not take: Holder is
// what the holder wrote into the lock file (a broker writes its pid), or
// empty when it wrote nothing readable.
type LockedError struct {
	Name   string
	Holder string
}

func (e *LockedError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("%s: %v", e.Name, ErrLocked)
	}
	return fmt.Sprintf("%s: %v (%s)", e.Name, ErrLocked, e.Holder)
}

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// holderOf reads what a lock's holder wrote into the lock file: the first
// line, at most 256 bytes of it.
func holderOf(f io.ReaderAt) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	s, _, _ := strings.Cut(string(b[:n]), "\n")
	return strings.TrimSpace(s)
}
