package hostile

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stromhq/strom/test/internal/childbroker"
)

const childEnv = "STROM_HOSTILE_CHILD"

// nofileEnv, set in a child broker's environment, is the open-file limit
// it runs under, soft and hard, as Go's runtime leaves a process started
// under `ulimit -Hn N` (it raises the soft limit to the hard one at start).
const nofileEnv = "STROM_HOSTILE_CHILD_NOFILE"

func TestMain(m *testing.M) {
	if n, err := strconv.ParseUint(os.Getenv(nofileEnv), 10, 64); err == nil && os.Getenv(childEnv) == "1" {
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: n, Max: n}); err != nil {
			fmt.Fprintln(os.Stderr, "setrlimit:", err)
			os.Exit(2)
		}
	}
	childbroker.ServeIfChild(childEnv) // the broker process: strom serve
	os.Exit(m.Run())
}

// brokerProc is a broker running in a child process.
type brokerProc struct {
	*childbroker.Proc
	kafkaAddr string
	httpAddr  string
}

// startBrokerProc starts `strom serve` in a child process with the given
// broker configs and waits until both of its listeners answer; the test's
// cleanup stops it and fails the test unless it exits cleanly.
func startBrokerProc(t *testing.T, sets ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{kafkaAddr: childbroker.FreeAddr(t), httpAddr: childbroker.FreeAddr(t)}
	args := []string{"--data-dir", t.TempDir(),
		"--kafka-addr", p.kafkaAddr, "--advertised-addr", p.kafkaAddr, "--http-addr", p.httpAddr, "--log-level", "warn"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	p.Proc = childbroker.Start(t, childEnv, []string{p.kafkaAddr, p.httpAddr}, args...)
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// metrics scrapes the broker's Prometheus metrics without labels.
func (p *brokerProc) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.httpAddr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") || strings.Contains(name, "{") {
			continue
		}
		if v, err := strconv.ParseFloat(val, 64); err == nil {
			out[name] = v
		}
	}
	return out
}

// rssMiB is the broker process's resident memory.
func (p *brokerProc) rssMiB(t *testing.T) float64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.Pid()))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return -1
}

// openFileLimit is this process's RLIMIT_NOFILE soft limit, after raising
// it to the hard limit (Go does so at start on Linux; this makes sure).
func openFileLimit() uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0
	}
	if lim.Cur < lim.Max {
		raised := lim
		raised.Cur = raised.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised) == nil {
			lim = raised
		}
	}
	return lim.Cur
}
