package raftnet

import (
	"net"
	"testing"
	"time"
)

// TestPeerClosedBeforeTheReaderReads: the kernel's view of a connection
// whose peer closed (with unread data in front of its FIN, as a busy
// peer's last frames would be) shows without anyone reading it.
func TestPeerClosedBeforeTheReaderReads(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	if peerClosed(accepted) {
		t.Fatal("an open connection reported closed")
	}
	if _, err := dialed.Write([]byte("frames not read yet")); err != nil {
		t.Fatal(err)
	}
	if peerClosed(accepted) {
		t.Fatal("an open connection with data to read reported closed")
	}
	dialed.Close()
	deadline := time.Now().Add(5 * time.Second)
	for !peerClosed(accepted) {
		if time.Now().After(deadline) {
			t.Fatal("the peer's close not seen within 5 s")
		}
		time.Sleep(time.Millisecond) // polling the kernel's state with a deadline
	}
	// The data is still there to read: nothing was consumed.
	buf := make([]byte, 64)
	n, _ := accepted.Read(buf)
	if string(buf[:n]) != "frames not read yet" {
		t.Fatalf("read %q after the check", buf[:n])
	}
}
