//go:build linux

package vfs

import (
	"os"
	"syscall"
)

// fdatasync flushes file data (and the metadata needed to read it back, such
// as its size) without forcing unrelated metadata such as mtime. It goes
// through SyscallConn so that the descriptor stays referenced for the call: a
// concurrent Close (a partition being deleted while a producer waits for
// fsync) then yields an error instead of racing on the descriptor.
func fdatasync(f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		// Control fails only when the file is closed or closing.
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: os.ErrClosed}
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
