package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// netLab is a small network the test builds and removes itself: one
// network namespace per broker, each with a veth pair whose other end is
// on a bridge in the test's namespace, which also holds an address on the
// bridge so that the test's clients reach every broker. Cutting the link
// between two brokers puts a blackhole route to each other's address in
// both namespaces: their packets to each other are dropped, as on a real
// network partition, while the clients still reach both.
//
// Names and the subnet carry the test process's pid so that two test
// binaries on one machine do not collide; every name is removed at
// cleanup.
type netLab struct {
	t      *testing.T
	bridge string
	subnet string // "10.213.N", the /24's first three octets
	ns     []string
}

// newNetLab builds n namespaces (brokers 1..n at subnet.1..subnet.n; the
// test's end of the bridge at subnet.254). It fails the test when it cannot
// (not root, no iproute2): a fault test that skips would pass for nothing.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	pid := os.Getpid()
	l := &netLab{t: t, bridge: fmt.Sprintf("sbr%d", pid%100000), subnet: fmt.Sprintf("10.213.%d", pid%250+1)}
	t.Cleanup(l.remove)
	l.ip("link", "add", l.bridge, "type", "bridge")
	l.ip("addr", "add", l.subnet+".254/24", "dev", l.bridge)
	l.ip("link", "set", l.bridge, "up")
	for i := 1; i <= n; i++ {
		ns := fmt.Sprintf("strom%d-%d", pid, i)
		host, peer := fmt.Sprintf("sv%d-%dh", pid%100000, i), fmt.Sprintf("sv%d-%dn", pid%100000, i)
		l.ip("netns", "add", ns)
		l.ns = append(l.ns, ns)
		l.ip("link", "add", host, "type", "veth", "peer", "name", peer)
		l.ip("link", "set", peer, "netns", ns)
		l.ip("link", "set", host, "master", l.bridge)
		l.ip("link", "set", host, "up")
		l.ip("-n", ns, "link", "set", "lo", "up")
		l.ip("-n", ns, "addr", "add", fmt.Sprintf("%s.%d/24", l.subnet, i), "dev", peer)
		l.ip("-n", ns, "link", "set", peer, "up")
	}
	return l
}

// addr is broker i's address (1-based) with port.
func (l *netLab) addr(i int, port int) string {
	return fmt.Sprintf("%s.%d:%d", l.subnet, i, port)
}

// cut drops every packet between brokers i and j (1-based), both ways.
func (l *netLab) cut(i, j int) {
	l.t.Helper()
	l.ip("-n", l.ns[i-1], "route", "add", "blackhole", fmt.Sprintf("%s.%d/32", l.subnet, j))
	l.ip("-n", l.ns[j-1], "route", "add", "blackhole", fmt.Sprintf("%s.%d/32", l.subnet, i))
}

// heal undoes cut(i, j).
func (l *netLab) heal(i, j int) {
	l.t.Helper()
	l.ip("-n", l.ns[i-1], "route", "del", "blackhole", fmt.Sprintf("%s.%d/32", l.subnet, j))
	l.ip("-n", l.ns[j-1], "route", "del", "blackhole", fmt.Sprintf("%s.%d/32", l.subnet, i))
}

func (l *netLab) ip(args ...string) {
	l.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("ip %s: %v: %s (network namespaces need root and iproute2)", strings.Join(args, " "), err, out)
	}
}

// remove deletes the namespaces (and with them their veth ends, which
// takes the bridge's ends too) and the bridge; errors are ignored, for
// a half-built lab is removed too.
func (l *netLab) remove() {
	for _, ns := range l.ns {
		exec.Command("ip", "netns", "del", ns).Run()
	}
	exec.Command("ip", "link", "del", l.bridge).Run()
}
