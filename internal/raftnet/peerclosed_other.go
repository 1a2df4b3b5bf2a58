//go:build !linux

package raftnet

import "net"

// peerClosed: without Linux's TCP_INFO the reader's end of the
// connection is the only signal.
func peerClosed(net.Conn) bool { return false }
