package hostile

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stromhq/strom/test/internal/childbroker"
)

const childEnv = "STROM_HOSTILE_CHILD"

func TestMain(m *testing.M) {
	childbroker.ServeIfChild(childEnv) // the broker process: strom serve
	os.Exit(m.Run())
}

// brokerProc is a broker running in a child process.
type brokerProc struct {
	cmd       *exec.Cmd
	done      chan error // Wait's result, put back by whoever reads it
	kafkaAddr string
	httpAddr  string
	stopOnce  sync.Once
}

// startBrokerProc starts `strom serve` in a child process with the given
// broker configs and waits until both of its listeners answer.
func startBrokerProc(t *testing.T, sets ...string) *brokerProc {
	t.Helper()
	p := &brokerProc{done: make(chan error, 1), kafkaAddr: freeAddr(t), httpAddr: freeAddr(t)}
	args := []string{"-test.run=^$", "--", "serve", "--data-dir", t.TempDir(),
		"--kafka-addr", p.kafkaAddr, "--advertised-addr", p.kafkaAddr, "--http-addr", p.httpAddr, "--log-level", "warn"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	p.cmd = exec.Command(os.Args[0], args...)
	p.cmd.Env = append(os.Environ(), childEnv+"=1")
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range []string{p.kafkaAddr, p.httpAddr} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case err := <-p.done:
				t.Fatalf("broker exited while starting: %v", err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker not listening on %s after 30s: %v", addr, err)
			}
			time.Sleep(5 * time.Millisecond) // polling a port, not waiting for state
		}
	}
	return p
}

// stop sends SIGTERM and waits for a clean exit; a broker that crashed or
// does not stop fails the test.
func (p *brokerProc) stop(t *testing.T) {
	t.Helper()
	p.stopOnce.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-p.done:
			p.done <- err
			if err != nil {
				t.Errorf("broker exit after SIGTERM: %v", err)
			}
		case <-time.After(60 * time.Second):
			p.cmd.Process.Kill()
			p.done <- <-p.done
			t.Error("broker did not stop within 60s of SIGTERM")
		}
	})
}

// alive fails the test if the broker process has exited.
func (p *brokerProc) alive(t *testing.T) {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err
		t.Fatalf("broker process exited: %v", err)
	default:
	}
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
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
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

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
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
