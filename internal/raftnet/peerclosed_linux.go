package raftnet

import (
	"net"

	"golang.org/x/sys/unix"
)

// tcpEstablished is TCP_ESTABLISHED of Linux's include/net/tcp_states.h,
// the state of tcp_info.tcpi_state while both ends are open.
const tcpEstablished = 1

// peerClosed reports whether the kernel already has the peer's end of c
// closed (a FIN or a reset received: the TCP state left ESTABLISHED),
// though this side's reader may not have read to it yet. A killed
// process's sockets are closed by its kernel at once; the reader learns
// it when the scheduler runs it, which on a busy machine can be after a
// client that saw the same kill asked this node something (Connected).
func peerClosed(c net.Conn) bool {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return false
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	// Control does not take the read lock the reader holds while it
	// waits, so this does not wait for it.
	_ = rc.Control(func(fd uintptr) {
		info, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
		closed = err == nil && info.State != tcpEstablished
	})
	return closed
}
