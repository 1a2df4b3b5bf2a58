package childbroker

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/testutil"
)

// Proc is `strom serve` running in a child process of the test binary.
type Proc struct {
	cmd      *exec.Cmd
	done     chan error // Wait's result, put back by whoever reads it
	stopOnce sync.Once
	out      *syncBuffer // a copy of its standard error (its log)
}

// syncBuffer is a bytes.Buffer safe for the child's writer and a reader.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Output returns what the process wrote to its standard error so far
// (its log lines), which also goes to the test's.
func (p *Proc) Output() string { return p.out.String() }

// Run runs `strom serveArgs...` (a serve expected to fail, or any other
// command) as a child to its end, within timeout (then it is killed and
// the test fails), and returns its standard output and error together and
// its exit error.
func Run(t testing.TB, env string, timeout time.Duration, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), env+"=1")
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, io.MultiWriter(os.Stderr, out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(timeout):
		cmd.Process.Kill()
		<-done
		t.Fatalf("strom %v still running after %v:\n%s", args, timeout, out.String())
		return "", nil
	}
}

// Start re-executes the test binary with env=1 as `strom serve serveArgs...`
// and waits up to 30 s until every address in listeners accepts a
// connection. It fails the test if the process exits first. The caller
// stops it with Stop or Kill.
func Start(t testing.TB, env string, listeners []string, serveArgs ...string) *Proc {
	t.Helper()
	return StartIn(t, "", env, listeners, serveArgs...)
}

// StartIn is Start inside the network namespace netns (`ip netns exec`,
// which execs the broker in place: the process, its pid and its signals are
// the broker's), or in the test's own when netns is empty. The listeners
// must be reachable from the test's namespace.
func StartIn(t testing.TB, netns, env string, listeners []string, serveArgs ...string) *Proc {
	t.Helper()
	args := append([]string{"-test.run=^$", "--", "serve"}, serveArgs...)
	cmd := exec.Command(os.Args[0], args...)
	if netns != "" {
		cmd = exec.Command("ip", append([]string{"netns", "exec", netns, os.Args[0]}, args...)...)
	}
	cmd.Env = append(os.Environ(), env+"=1")
	out := &syncBuffer{}
	cmd.Stderr = io.MultiWriter(os.Stderr, out)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &Proc{cmd: cmd, done: make(chan error, 1), out: out}
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
				// Not the caller's yet: kill it here, or it outlives
				// the test (a chaos run left one broker running).
				cmd.Process.Kill()
				<-p.done
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

// Exited reports whether the process has exited, and its exit error.
func (p *Proc) Exited() (bool, error) { return p.exited() }

// Alive fails the test if the process has exited.
func (p *Proc) Alive(t testing.TB) {
	t.Helper()
	if exited, err := p.exited(); exited {
		t.Fatalf("broker process exited: %v", err)
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Pause stops the process with SIGSTOP (a zombie: its sockets stay open,
// nothing answers); Resume continues it with SIGCONT.
func (p *Proc) Pause(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
}

// Resume continues a paused process.
func (p *Proc) Resume(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}

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
		p.cmd.Process.Signal(syscall.SIGCONT) // a paused process handles the SIGTERM once continued
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
// child broker to listen on (testutil.FreeLoopbackPort: below the ephemeral
// range, never handed out twice by one test process).
func FreeAddr(t testing.TB) string {
	t.Helper()
	port, err := testutil.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}
