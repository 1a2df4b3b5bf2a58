package cli

import (
	"context"
	"debug/buildinfo"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestNewUserRoughEdges: what a new user tripped on (issue 23), each
// checked against the binary.
func TestNewUserRoughEdges(t *testing.T) {
	c := startStrom(t)
	c.ok(t, nil, "topic", "create", "edges", "-p", "1")

	// --property print.key=true prints a null key as null, as Kafka's
	// console consumer does; kcat's %k prints nothing.
	c.seed(t, &kgo.Record{Topic: "edges", Key: []byte("k"), Value: []byte("v1")}, &kgo.Record{Topic: "edges", Value: []byte("v2")})
	same(t, "print.key", c.ok(t, nil, "consume", "edges", "-e", "--from-beginning", "--property", "print.key=true"), "k\tv1\nnull\tv2\n")
	same(t, "kcat %k", c.ok(t, nil, "consume", "edges", "-e", "--from-beginning", "-f", `[%k]\n`), "[k]\n[]\n")

	// The too-large error says the limit.
	big := strings.Repeat("x", 1100000) + "\n"
	c.fails(t, strings.NewReader(big),
		`strom: 1 of 1 records failed: a record of 1100000 bytes is too large for topic edges: its max.message.bytes is 1048588 (a batch of records, with its headers, must fit) — raise it ("strom topic alter-config edges --set max.message.bytes=N"), or send smaller records`+"\n",
		"produce", "edges", "--max-line-bytes", "2000000")

	// -o is consume's offset only; a listing says what to use instead.
	c.fails(t, nil, "strom: unknown flag -o — -o is consume's start offset (as in kcat); the output format is --output json\n", "topic", "list", "-o", "json")

	// One default per flag in --help.
	help := c.ok(t, nil, "topic", "create", "--help")
	if strings.Contains(help, "(default -1)") || !strings.Contains(help, "(default: the cluster's num.partitions)") {
		t.Errorf("topic create --help:\n%s", help)
	}
	same(t, "one partition", c.ok(t, nil, "topic", "create", "one", "-p", "1"), "created topic one: 1 partition, replication factor 1\n")
	c.fails(t, nil, `strom: replication factor 3 is more than the 1 broker of the cluster — give --replication-factor 1 or less (see "strom cluster info")`+"\n",
		"topic", "create", "three", "-r", "3")
}

// TestVersion: strom --version and strom version print the module version,
// the VCS revision and the Go version (issue 23: --version was unknown and
// version printed only "dev").
func TestVersion(t *testing.T) {
	a := runStrom(t, nil, nil, "--version")
	b := runStrom(t, nil, nil, "version")
	if a.code != 0 || b.code != 0 || a.stdout != b.stdout {
		t.Fatalf("--version: %d %q %q; version: %d %q %q", a.code, a.stdout, a.stderr, b.code, b.stdout, b.stderr)
	}
	// The revision is there when the binary has it (GOFLAGS=-buildvcs=false
	// leaves it out), read independently with debug/buildinfo.
	bi, err := buildinfo.ReadFile(strom(t))
	if err != nil {
		t.Fatal(err)
	}
	rev := ""
	for _, kv := range bi.Settings {
		if kv.Key == "vcs.revision" {
			rev = kv.Value[:12]
		}
	}
	re := regexp.MustCompile(`^strom \S+ go1\.\d+\S* \w+/\w+\n$`)
	if rev != "" {
		re = regexp.MustCompile(`^strom \S+ \(revision ` + rev + `( modified)?, [0-9-]+T[0-9:]+Z\) go1\.\d+\S* \w+/\w+\n$`)
	}
	if !re.MatchString(a.stdout) {
		t.Errorf("strom --version = %q, want %s", a.stdout, re)
	}
	if !strings.Contains(a.stdout, bi.GoVersion) {
		t.Errorf("strom --version = %q, want its Go version %s", a.stdout, bi.GoVersion)
	}
}

// TestDemoAnnouncesOnce (issue 23): strom demo said it started twice, once
// on stdout and once as a log line on stderr.
func TestDemoAnnouncesOnce(t *testing.T) {
	c := startStrom(t)
	cmd := exec.Command(strom(t), "demo", "--rate", "50", "--group", "")
	cmd.Env = append(cleanEnv(), "GORACE=atexit_sleep_ms=0", "STROM_BROKERS="+c.addr)
	var out syncOut
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	adm := c.admin(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		ends, err := adm.ListEndOffsets(context.Background(), "streaming-data")
		var n int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { n += o.Offset })
		}
		if n >= 5 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the demo wrote %d records in 30 s; output:\n%s", n, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after Ctrl-C: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "writing"); n != 1 {
		t.Errorf("the start is announced %d times:\n%s", n, out.String())
	}
}

type syncOut struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncOut) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncOut) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
