package childbroker

import (
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Proc is `strom serve` running in a child process of the test binary.
type Proc struct {
	cmd      *exec.Cmd
	done     chan error // Wait's result, put back by whoever reads it
	stopOnce sync.Once
}

// Start re-executes the test binary with env=1 as `strom serve serveArgs...`
// and waits up to 30 s until every address in listeners accepts a
// connection. It fails the test if the process exits first. The caller
// stops it with Stop or Kill.
func Start(t testing.TB, env string, listeners []string, serveArgs ...string) *Proc {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--", "serve"}, serveArgs...)...)
	cmd.Env = append(os.Environ(), env+"=1")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for _, addr := range listeners {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if exited, err := p.exited(); exited {
				t.Fatalf("broker exited while starting: %v", err)
			}
			if time.Now().After(deadline) {
				t.Fatalf("broker not listening on %s after 30s: %v", addr, err)
			}
			time.Sleep(5 * time.Millisecond) // polling a port, not waiting for state
		}
	}
	return p
}

// exited reports whether the process has exited, and how.
func (p *Proc) exited() (bool, error) {
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
		return false, nil
	}
}

// Alive fails the test if the process has exited.
func (p *Proc) Alive(t testing.TB) {
	t.Helper()
	if exited, err := p.exited(); exited {
		t.Fatalf("broker process exited: %v", err)
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Kill sends SIGKILL and waits for the process to end; a later Stop does
// nothing.
func (p *Proc) Kill(t testing.TB) {
	t.Helper()
	p.stopOnce.Do(func() {})
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p.done <- <-p.done
}

// Stop sends SIGTERM and waits for a clean exit; a broker that crashed or
// does not stop within 60 s fails the test (and is killed). Only the first
// call does anything.
func (p *Proc) Stop(t testing.TB) {
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

// FreeAddr returns a loopback address with a port free at the moment, for a
// child broker to listen on.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
