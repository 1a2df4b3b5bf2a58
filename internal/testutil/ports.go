package testutil

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FreeLoopbackPort returns a 127.0.0.1 port that nothing listens on at the
// moment, for a child process (a broker under test) to listen on.
//
// The port is below the kernel's ephemeral range. A port from
// net.Listen("tcp", ":0") is in that range, and between closing it and the
// child's listen any outgoing connection on the machine (a client's, a
// raft transport's, another test package's) may be given it as its local
// port: the child then fails with "address already in use". Below the range
// only another listener can take it. A port is never handed out twice by
// one process: a cluster's ports go into its voters list and must stay
// distinct even before anyone listens on them.
func FreeLoopbackPort() (int, error) {
	portsMu.Lock()
	defer portsMu.Unlock()
	lo, hi := 10000, ephemeralLow()-1
	start := lo + int((uint64(os.Getpid())*7919+uint64(time.Now().UnixNano()))%uint64(hi-lo))
	for i := range hi - lo {
		port := lo + (start-lo+i)%(hi-lo)
		if handedOut[port] {
			continue
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		ln.Close()
		handedOut[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("no free loopback port in [%d, %d]", lo, hi)
}

var (
	portsMu   sync.Mutex
	handedOut = map[int]bool{}
)

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's
// default 32768 when it cannot be read).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 11000 {
		return 32768
	}
	return n
}
