package cli

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
)

// restartable is a Strom broker that a test stops and starts again on the
// same address and data directory.
type restartable struct {
	t    *testing.T
	dir  string
	addr string
	b    *broker.Broker
}

func (r *restartable) start() {
	r.t.Helper()
	addr := r.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	// The port was ours a moment ago; the kernel may take a little while
	// to let it go.
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := broker.Start(broker.Config{
			DataDir:   r.dir,
			KafkaAddr: addr,
			HTTPAddr:  "-",
			Props:     map[string]string{"group.initial.rebalance.delay.ms": "0"},
			Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		})
		if err == nil {
			r.b, r.addr = b, b.KafkaAddr().String()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("start strom on %s: %v", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (r *restartable) stop() {
	r.t.Helper()
	if r.b == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.b.Shutdown(ctx); err != nil {
		r.t.Errorf("strom shutdown: %v", err)
	}
	r.b = nil
}

// lines collects a subprocess's output lines as they come.
type lines struct {
	mu  sync.Mutex
	all []string
}

func (l *lines) read(rd io.Reader) {
	s := bufio.NewScanner(rd)
	for s.Scan() {
		l.mu.Lock()
		l.all = append(l.all, s.Text())
		l.mu.Unlock()
	}
}

func (l *lines) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.all, "\n")
}

// waitFor polls until cond holds on the text, or fails after d.
func waitFor(t *testing.T, d time.Duration, what string, l *lines, cond func(string) bool, exited <-chan struct{}, other *lines) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond(l.text()) {
		select {
		case <-exited:
			t.Fatalf("waiting for %s: strom exited\nwatched:\n%s\nother:\n%s", what, l.text(), other.text())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after %s\nwatched:\n%s\nother:\n%s", what, d, l.text(), other.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsumeSurvivesRestart (issue 23): strom consume, with and without
// --group, keeps waiting across a broker restart, says so on stderr, and
// prints the records produced after the broker is back. Before, the group
// consumer exited 1 ("cannot reach broker") 1.5 s after the broker went.
func TestConsumeSurvivesRestart(t *testing.T) {
	for _, mode := range []string{"group", "plain"} {
		t.Run(mode, func(t *testing.T) {
			r := &restartable{t: t, dir: t.TempDir()}
			r.start()
			t.Cleanup(r.stop)
			c := &cluster{name: "strom", addr: r.addr}
			c.ok(t, nil, "topic", "create", "t", "-p", "1")
			c.seed(t, &kgo.Record{Topic: "t", Value: []byte("before")})

			args := []string{"consume", "t", "--from-beginning"}
			if mode == "group" {
				args = append(args, "--group", "g")
			}
			cmd := exec.Command(strom(t), args...)
			cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0", "STROM_BROKERS="+r.addr)
			var stdout, stderr lines
			op, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			ep, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var readers sync.WaitGroup
			readers.Add(2)
			go func() { defer readers.Done(); stdout.read(op) }()
			go func() { defer readers.Done(); stderr.read(ep) }()
			exited := make(chan struct{})
			var waitErr error
			go func() { readers.Wait(); waitErr = cmd.Wait(); close(exited) }()
			t.Cleanup(func() {
				cmd.Process.Kill()
				<-exited
			})
			has := func(s string) func(string) bool { return func(x string) bool { return strings.Contains(x, s) } }

			waitFor(t, 30*time.Second, "the first record", &stdout, has("before"), exited, &stderr)
			r.stop()
			waitFor(t, 30*time.Second, "a note that it is waiting", &stderr, has("waiting for"), exited, &stdout)
			// Well past the old 1.5 s exit and a few back-offs.
			time.Sleep(3 * time.Second)
			select {
			case <-exited:
				t.Fatalf("strom exited while the broker was down: %v\nstderr:\n%s", waitErr, stderr.text())
			default:
			}
			r.start()
			c.seed(t, &kgo.Record{Topic: "t", Value: []byte("after")})
			waitFor(t, 60*time.Second, "the record produced after the restart", &stdout, has("after"), exited, &stderr)

			cmd.Process.Signal(syscall.SIGINT)
			select {
			case <-exited:
			case <-time.After(30 * time.Second):
				t.Fatal("strom did not stop on SIGINT")
			}
			// A group consumer may print "before" again: its offset is
			// committed every 5 s, and at least once is the contract.
			out := stdout.text()
			if want := "before\nafter"; mode == "plain" && out != want || !strings.HasSuffix(out, "\nafter") || strings.Trim(strings.ReplaceAll(strings.ReplaceAll(out, "before", ""), "after", ""), "\n") != "" {
				t.Errorf("stdout = %q, want before (at least once) then after", out)
			}
			if e := stderr.text(); !strings.Contains(e, "connection refused") || !strings.Contains(e, "connected again") {
				t.Errorf("stderr says neither why it waits nor that it is back:\n%s", e)
			}
			t.Logf("stderr:\n%s", stderr.text())
		})
	}
}

// TestWaitNoteEndsWithoutReconnect: a wait begun by an error code (a
// rebalance: no new connection follows) ends when records flow again, so
// that a later outage is announced too. Before, the note stayed "down"
// after the first rebalance and every later outage went unsaid.
func TestWaitNoteEndsWithoutReconnect(t *testing.T) {
	var out bytes.Buffer
	n := &waitNote{w: &out, conn: &connFlags{fs: pflag.NewFlagSet("t", pflag.ContinueOnError)}}
	n.failed("", kerr.RebalanceInProgress)
	n.failed("", kerr.RebalanceInProgress)
	n.recovered()
	n.failed("", kerr.NotLeaderForPartition)
	if got := strings.Count(out.String(), "waiting for the cluster"); got != 2 {
		t.Fatalf("%d waiting lines, want 2 (one per outage):\n%s", got, out.String())
	}
	if got := strings.Count(out.String(), "connected again"); got != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", got, out.String())
	}
}
