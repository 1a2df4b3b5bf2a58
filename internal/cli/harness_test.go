package cli

// The command tests run the real strom binary as a subprocess, built once
// per test binary, against a cluster started by the test: a Strom broker
// in this process, and franz-go's kfake for the claim that the CLI works
// against any Kafka-compatible cluster.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
)

// stromHasGroups runs the consumer group tests (TestGroups,
// TestGroupActiveMember) against Strom as well as kfake.
const stromHasGroups = true

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// strom returns the path of the strom binary, building it on first use.
// It is built with -race when the tests are, so that it shares the
// test binary's compiled packages and is checked for races too.
func strom(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "strom-cli-test-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "strom")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		out, err := exec.Command("go", append(args, "github.com/stromhq/strom/cmd/strom")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// cluster is a Kafka-compatible cluster a test runs the CLI against.
type cluster struct {
	name  string // "strom" or "kfake"
	addr  string // host:port of the (first) broker
	kfake *kfake.Cluster
}

func startStrom(t testing.TB) *cluster {
	t.Helper()
	b, err := broker.Start(broker.Config{
		DataDir:   t.TempDir(),
		KafkaAddr: "127.0.0.1:0",
		HTTPAddr:  "-",
		// Kafka's 3s wait for more members of a new group only slows
		// tests that start one consumer at a time.
		Props:  map[string]string{"group.initial.rebalance.delay.ms": "0"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatalf("start strom: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("strom shutdown: %v", err)
		}
	})
	return &cluster{name: "strom", addr: b.KafkaAddr().String()}
}

func startKfake(t testing.TB, opts ...kfake.Opt) *cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.Ports(0)}, opts...)...)
	if err != nil {
		t.Fatalf("start kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return &cluster{name: "kfake", addr: c.ListenAddrs()[0], kfake: c}
}

// onEach runs fn against a fresh Strom broker and a fresh kfake cluster,
// as parallel subtests.
func onEach(t *testing.T, fn func(t *testing.T, c *cluster)) {
	onClusters(t, true, fn)
}

func onClusters(t *testing.T, withStrom bool, fn func(t *testing.T, c *cluster)) {
	if withStrom {
		t.Run("strom", func(t *testing.T) {
			t.Parallel()
			fn(t, startStrom(t))
		})
	}
	t.Run("kfake", func(t *testing.T) {
		t.Parallel()
		fn(t, startKfake(t))
	})
}

type result struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

// run runs strom with args against c, stdin from in (may be nil).
func (c *cluster) run(t testing.TB, in io.Reader, args ...string) result {
	t.Helper()
	return runStrom(t, []string{"STROM_BROKERS=" + c.addr}, in, args...)
}

func runStrom(t testing.TB, env []string, in io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, strom(t), args...)
	// The race runtime sleeps a second before a clean exit, to let
	// goroutines report; our commands have stopped theirs by then.
	// No profile of the machine's user (~/.config/strom/config) applies;
	// a test's own STROM_CLI_CONFIG, later in the list, wins.
	cmd.Env = append(append(cleanEnv(), "GORACE=atexit_sleep_ms=0", "STROM_CLI_CONFIG="+filepath.Join(os.TempDir(), "strom-cli-test-no-config")), env...)
	cmd.Stdin = in
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start)}
	if os.Getenv("STROM_TEST_TIMES") != "" {
		t.Logf("%s: strom %s: %s", t.Name(), strings.Join(args, " "), r.took)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("strom %s: %v", strings.Join(args, " "), err)
	}
	if strings.Contains(r.stderr, "goroutine ") || strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "DATA RACE") {
		t.Fatalf("strom %s: stack trace on stderr:\n%s", strings.Join(args, " "), r.stderr)
	}
	return r
}

// cleanEnv is the environment without STROM_* variables of the machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "STROM_") {
			env = append(env, kv)
		}
	}
	return env
}

// ok runs strom and fails the test unless it exits 0 with nothing on
// stderr; it returns stdout.
func (c *cluster) ok(t testing.TB, in io.Reader, args ...string) string {
	t.Helper()
	r := c.run(t, in, args...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("strom %s: exit %d\nstderr: %s\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, r.stdout)
	}
	return r.stdout
}

// fails runs strom and checks it exits 1 with exactly wantErr on stderr.
func (c *cluster) fails(t testing.TB, in io.Reader, wantErr string, args ...string) {
	t.Helper()
	r := c.run(t, in, args...)
	if r.code != 1 || r.stderr != wantErr {
		t.Fatalf("strom %s: exit %d, want 1\nstderr: %q\nwant:   %q\nstdout: %s", strings.Join(args, " "), r.code, r.stderr, wantErr, r.stdout)
	}
}

func same(t testing.TB, what, got, want string) {
	t.Helper()
	if got != want {
		t.Fatalf("%s:\n--- got ---\n%s\n--- want ---\n%s", what, got, want)
	}
}

// client is an in-test franz-go client on c, for seeding records and
// checking state independently of the CLI.
func (c *cluster) client(t testing.TB, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func (c *cluster) admin(t testing.TB) *kadm.Client {
	return kadm.NewClient(c.client(t))
}

// seed produces records synchronously, in order, each as its own batch.
func (c *cluster) seed(t testing.TB, rs ...*kgo.Record) {
	t.Helper()
	cl := c.client(t, kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	for _, r := range rs {
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			t.Fatalf("seed: %v", err)
		}
	}
}

// renderTable is the test's own rendering of an aligned table: columns
// separated by at least two spaces, as the CLI documents.
func renderTable(rows ...[]string) string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 8, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return b.String()
}

func row(cells ...any) []string {
	out := make([]string, len(cells))
	for i, c := range cells {
		out[i] = fmt.Sprint(c)
	}
	return out
}
