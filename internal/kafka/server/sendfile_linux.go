package server

import (
	"errors"
	"fmt"
	"net"
	"syscall"
)

// errNoSendfile: this platform or file cannot sendfile; the caller copies.
var errNoSendfile = errors.New("sendfile not available")

// sendFile sends fr on tc with sendfile(2) at an explicit offset (the
// file's own position, shared by every reader of a cached descriptor, is
// neither used nor moved), waiting in the runtime's poller while the
// socket buffer is full.
func sendFile(tc *net.TCPConn, fr *FileRecords) (int64, error) {
	dst, err := tc.SyscallConn()
	if err != nil {
		return 0, err
	}
	src, err := fr.File.SyscallConn()
	if err != nil {
		return 0, errNoSendfile
	}
	off, remain := fr.Off, fr.Len
	var written int64
	var serr error
	cerr := src.Control(func(sfd uintptr) {
		werr := dst.Write(func(dfd uintptr) bool {
			for remain > 0 {
				n, err := syscall.Sendfile(int(dfd), int(sfd), &off, min(remain, 1<<30))
				if n > 0 {
					remain -= n
					written += int64(n)
				}
				switch {
				case errors.Is(err, syscall.EAGAIN):
					return false // wait until the socket is writable
				case errors.Is(err, syscall.EINTR):
					continue
				case err != nil:
					if written == 0 && (errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSYS)) {
						serr = errNoSendfile
					} else {
						serr = fmt.Errorf("sendfile: %w", err)
					}
					return true
				case n == 0:
					serr = fmt.Errorf("sendfile at %d: %w", off, errShortFile)
					return true
				}
			}
			return true
		})
		if serr == nil {
			serr = werr
		}
	})
	if serr == nil {
		serr = cerr
	}
	return written, serr
}
