//go:build unix

package vfs

import (
	"errors"
	"io"
	"os"
	"syscall"
)

// Lock takes flock(2)'s exclusive lock on name without waiting. The lock
// belongs to the open file: it is released by Close, or by the kernel when
// the process dies (kill -9 included), so a crashed broker never leaves a
// stale lock behind. Two opens in one process conflict like two processes.
func (osFS) Lock(name string, owner []byte) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		defer f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &LockedError{Name: name, Holder: holderOf(f)}
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	// The owner only names the holder in another process's error; a full
	// disk that refuses those few bytes must not refuse the lock.
	_ = writeOwner(f, owner)
	return f, nil
}

// writeOwner replaces the lock file's content with owner, best effort. It
// is not synced:
// it only names the holder for an error message, and the lock itself lives
// in the kernel, not in the file.
func writeOwner(f *os.File, owner []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(owner, 0)
	return err
}
