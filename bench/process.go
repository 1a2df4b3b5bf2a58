package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stromhq/strom/internal/testutil"
)

// Program is a broker executable the harness runs.
type Program struct {
	Path string
	// Env is added to the harness's own environment. The smoke test runs
	// its own binary as the broker and picks the role through it.
	Env []string
}

// Kind is a broker implementation: how to start it on an address with a
// data directory, which protocol its clients speak, and how to tell that it
// serves.
type Kind struct {
	Name     string
	Args     func(addr, dataDir string) []string
	Protocol Protocol
	// Ready returns nil once the broker at addr answers a client's first
	// requests, each attempt within timeout: the end of its start-up.
	Ready func(addr string, timeout time.Duration) error
}

// Protocol is what a broker's clients speak; workloads pick their client
// by it.
type Protocol int

const (
	// Kafka brokers are driven with franz-go (kgo, kadm).
	Kafka Protocol = iota
	// NATS servers are driven with nats.go and its jetstream package.
	NATS
)

var (
	// Strom is `strom serve` with the HTTP listener off and clients sent
	// back to the exact address it listens on.
	Strom = Kind{Name: "strom", Protocol: Kafka, Ready: probe, Args: func(addr, dataDir string) []string {
		return []string{"serve", "--data-dir", dataDir, "--kafka-addr", addr, "--advertised-addr", addr, "--http-addr", "-"}
	}}
	// Kfake is cmd/kfakeserver: franz-go's fake broker, in memory.
	Kfake = Kind{Name: "kfake", Protocol: Kafka, Ready: probe, Args: func(addr, _ string) []string {
		_, port, _ := net.SplitHostPort(addr)
		return []string{"-port", port}
	}}
)

const (
	readyTimeout = 30 * time.Second
	stopTimeout  = 60 * time.Second
	// probeEvery is how long to wait between connection attempts while a
	// broker starts: the resolution of the start-up figure.
	probeEvery = 200 * time.Microsecond
)

// Server is a broker under test, running as a process of its own.
type Server struct {
	Name    string
	Addr    string // its client listener, 127.0.0.1:port
	DataDir string
	// Ready is the time from exec to its Kind's first successful Ready
	// probe (for a Kafka broker, an answered ApiVersions and Metadata).
	Ready time.Duration

	kind    Kind // how it was started: Env.Restart starts it again so
	prog    Program
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed when the process has been waited for
	waitErr error         // set before exited is closed
}

// startServer execs prog as a broker of the given kind on a free loopback
// port, its output going to logPath, and returns once it answers requests.
func startServer(ctx context.Context, kind Kind, prog Program, dataDir, logPath string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	// The child writes straight into the file; we keep no copy open.
	defer logf.Close()
	cmd := exec.Command(prog.Path, kind.Args(addr, dataDir)...)
	cmd.Env = append(os.Environ(), prog.Env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	s := &Server{Name: kind.Name, Addr: addr, DataDir: dataDir, kind: kind, prog: prog, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start %s: %w", kind.Name, prog.Path, err)
	}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, start); err != nil {
		s.kill()
		return nil, fmt.Errorf("%s on %s: %w%s", kind.Name, addr, err, s.logTail())
	}
	return s, nil
}

// waitReady probes the broker until it answers, it exits, or time runs out.
func (s *Server) waitReady(ctx context.Context, start time.Time) error {
	deadline := time.Now().Add(readyTimeout)
	for {
		err := s.kind.Ready(s.Addr, time.Second)
		if err == nil {
			s.Ready = time.Since(start)
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited before serving: %v", s.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not serving after %v: %w", readyTimeout, err)
		}
		time.Sleep(probeEvery)
	}
}

// Pid is the broker's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// RSS returns the broker's resident set (VmRSS) and its peak (VmHWM), in
// bytes.
func (s *Server) RSS() (rss, peak int64, err error) { return procRSS(s.Pid()) }

// CPU returns the CPU time the broker has used so far, user plus system.
func (s *Server) CPU() (time.Duration, error) { return procCPU(s.Pid()) }

// Stop sends SIGTERM and waits for a clean exit (the broker flushes and
// seals its logs), killing the process if it takes longer than stopTimeout.
// A non-zero exit status is an error.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited on its own: %v%s", s.Name, s.waitErr, s.logTail())
	default:
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return fmt.Errorf("%s: %w", s.Name, err)
	}
	select {
	case <-s.exited:
	case <-time.After(stopTimeout):
		s.kill()
		return fmt.Errorf("%s did not stop within %v; killed%s", s.Name, stopTimeout, s.logTail())
	}
	var exit *exec.ExitError
	if errors.As(s.waitErr, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGTERM {
			return fmt.Errorf("%s: %w", s.Name, errUnhandledTerm)
		}
	}
	if s.waitErr != nil {
		return fmt.Errorf("%s: %w%s", s.Name, s.waitErr, s.logTail())
	}
	return nil
}

// errUnhandledTerm is a broker killed by SIGTERM's default action: it was
// serving requests before it handled the signal, so a stop that came then
// skipped its clean shutdown.
var errUnhandledTerm = errors.New("killed by SIGTERM before it handled the signal (it serves before it installs its handler)")

// kill ends the process without ceremony and waits for it.
func (s *Server) kill() {
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// logTail is the last lines of the broker's output, for error messages.
func (s *Server) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	lines = lines[max(0, len(lines)-15):]
	return "\n\t" + filepath.Base(s.logPath) + ":\n\t" + strings.Join(lines, "\n\t")
}

// freePort returns a loopback port nobody listens on at the moment, below
// the kernel's ephemeral range (testutil.FreeLoopbackPort), so no client
// connection of this or another process can take it before the broker
// listens.
func freePort() (int, error) { return testutil.FreeLoopbackPort() }

// procRSS reads VmRSS and VmHWM from /proc/<pid>/status.
func procRSS(pid int) (rss, peak int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	field := func(name string) (int64, error) {
		for line := range strings.SplitSeq(string(b), "\n") {
			rest, ok := strings.CutPrefix(line, name+":")
			if !ok {
				continue
			}
			f := strings.Fields(rest)
			if len(f) != 2 || f[1] != "kB" {
				break
			}
			kb, err := strconv.ParseInt(f[0], 10, 64)
			return kb * 1024, err
		}
		return 0, fmt.Errorf("/proc/%d/status: no %s in kB", pid, name)
	}
	if rss, err = field("VmRSS"); err != nil {
		return 0, 0, err
	}
	peak, err = field("VmHWM")
	return rss, peak, err
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/<pid>/stat;
// Linux has fixed it at 100 on every architecture Go supports.
const clockTick = 10 * time.Millisecond

// procCPU reads utime+stime from /proc/<pid>/stat: the CPU time of all the
// process's threads, to 10 ms.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces;
	// the fields after its closing parenthesis start at field 3, state.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f)+2)
	}
	var ticks int64
	for _, s := range f[11:13] { // fields 14 and 15: utime, stime
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}

// selfCPU is procCPU of the harness's process, where the clients run.
func selfCPU() (time.Duration, error) { return procCPU(os.Getpid()) }

// cpuMeter measures the CPU time the client (this process) and a broker
// use between start and stop.
//
// A broker with metrics (StromMetered) has its allocation counters read
// too, at start and at stop (brokerAllocs).
type cpuMeter struct {
	srv              *Server
	client0, broker0 time.Duration
	start            time.Time
	allocs0          goAllocs
	metered          bool
	allocs           goAllocs // since start, once stopped
}

func startCPU(srv *Server) (*cpuMeter, error) {
	m := &cpuMeter{srv: srv}
	var err0, err1, err2 error
	m.allocs0, m.metered, err0 = readAllocs(context.Background(), srv)
	m.client0, err1 = selfCPU()
	m.broker0, err2 = srv.CPU()
	m.start = time.Now()
	return m, errors.Join(err0, err1, err2)
}

// stop returns the wall time and the client's and broker's CPU time since
// startCPU.
func (m *cpuMeter) stop() (wall, client, broker time.Duration, err error) {
	wall = time.Since(m.start)
	c, err1 := selfCPU()
	b, err2 := m.srv.CPU()
	var err0 error
	if m.metered {
		var a goAllocs
		a, _, err0 = readAllocs(context.Background(), m.srv)
		m.allocs = goAllocs{Objects: a.Objects - m.allocs0.Objects, Bytes: a.Bytes - m.allocs0.Bytes}
	}
	return wall, c - m.client0, b - m.broker0, errors.Join(err0, err1, err2)
}

// brokerAllocs is what the broker allocated between start and stop, for a
// broker with metrics; ok is false for others.
func (m *cpuMeter) brokerAllocs() (a goAllocs, ok bool) { return m.allocs, m.metered }
