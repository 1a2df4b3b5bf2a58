//go:build linux

package vfs

import (
	"os"
	"syscall"
)

// fdatasync flushes file data (and the metadata needed to read it back, such
// as its size) without forcing unrelated metadata such as mtime.
func fdatasync(f *os.File) error {
	fd := f.Fd()
	if fd == ^uintptr(0) {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: os.ErrClosed}
	}
	for {
		err := syscall.Fdatasync(int(fd))
		if err != syscall.EINTR {
			return err
		}
	}
}
