// Package compat drives real Kafka clients against the broker under test:
// kcat (librdkafka), confluent-kafka-python (librdkafka), KafkaJS and
// kafka-node. Each client runs as a separate program, the way our users run
// it, and every test asserts the exact records that come back; where a
// client cannot read records back, franz-go reads them for it.
//
// The package is test files only. The scripts live beside them (node/,
// python/), fixtures in testdata/. `make deps` installs the clients; a
// missing client skips its test on a developer's machine and fails it in CI
// (CI=true). broker_test.go chooses the broker; nothing else knows which one
// it is.
//
// Run against a broker that is already running with
//
//	COMPAT_BROKER=127.0.0.1:9092 go test ./test/compat
//
// and see the started broker's warnings in the test log with
// COMPAT_BROKER_LOGS=1.
package compat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	// clientTimeout bounds one run of a client program. The scripts stop
	// themselves earlier (scriptDeadline) so that they can say where they
	// were; this is the backstop that kills them.
	clientTimeout  = 120 * time.Second
	scriptDeadline = 90 * time.Second

	// debianPython is Debian's interpreter: python3-confluent-kafka is
	// installed for it only, not for a pyenv python3 that may come first on
	// PATH.
	debianPython = "/usr/bin/python3"
)

// inCI reports whether we run in CI, where a missing client is a failure.
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// requireTool returns the path of the named program. When it is missing the
// test is skipped on a developer's machine and fails in CI, where `make deps`
// must have installed it.
func requireTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		missing(t, fmt.Sprintf("%s not found (%v)", name, err))
	}
	return path
}

// requireFile is requireTool for something that is not a program on PATH,
// such as an installed Node package.
func requireFile(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		missing(t, fmt.Sprintf("%s not installed (%v)", what, err))
	}
}

func missing(t *testing.T, why string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s; CI must have it: `make deps` installs it", why)
	}
	t.Skipf("%s; run `make deps` to install it", why)
}

var topicSeq atomic.Int64

// uniqueTopic returns a topic name no other test (or earlier run against
// the same external broker) uses.
func uniqueTopic(label string) string {
	return fmt.Sprintf("compat-%s-%d-%d-%d", label, os.Getpid(), time.Now().Unix()%100000, topicSeq.Add(1))
}

// clientRun is what a client program did.
type clientRun struct {
	stdout, stderr []byte
	err            error
	elapsed        time.Duration
}

// runClient runs a client program with stdin as its input and a hard
// deadline. It does not fail the test: callers decide what a failure means.
func runClient(t *testing.T, stdin string, name string, args ...string) clientRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), fmt.Sprintf("COMPAT_TIMEOUT_MS=%d", scriptDeadline.Milliseconds()))
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// If the program leaves children holding its pipes, stop waiting.
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("killed after %v: %w", clientTimeout, errors.Join(err, ctx.Err()))
	}
	r := clientRun{stdout: stdout.Bytes(), stderr: stderr.Bytes(), err: err, elapsed: time.Since(start)}
	t.Logf("%s %s: %v in %v", name, strings.Join(args, " "), errOrOK(err), r.elapsed.Round(time.Millisecond))
	return r
}

// mustRun is runClient for programs that must succeed; it returns stdout.
func mustRun(t *testing.T, stdin string, name string, args ...string) []byte {
	t.Helper()
	r := runClient(t, stdin, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstderr:\n%s", name, strings.Join(args, " "), r.err, tail(r.stderr, 3000))
	}
	return r.stdout
}

func errOrOK(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// tail returns the last n bytes of b, for error messages.
func tail(b []byte, n int) string {
	if len(b) > n {
		return "..." + string(b[len(b)-n:])
	}
	return string(b)
}

// summary is the JSON line a script prints last on stdout.
type summary struct {
	Client   string   `json:"client"`
	OK       bool     `json:"ok"`
	Error    string   `json:"error"`
	Produced int      `json:"produced"`
	Consumed int      `json:"consumed"`
	Codecs   []string `json:"codecs"`
	// Records are what the script produced, in offset order.
	Records []record `json:"records"`
	// Line is the raw summary, for logs.
	Line string `json:"-"`
}

// runScript runs one of the client scripts against addr and topic and
// returns its summary; the test fails if the script fails.
func runScript(t *testing.T, interpreter, script, addr, topic string) summary {
	t.Helper()
	r := runClient(t, "", interpreter, script, addr, topic)
	s, perr := parseSummary(r.stdout)
	switch {
	case perr != nil:
		t.Fatalf("%s: %v (exit: %v)\nstdout:\n%s\nstderr:\n%s", script, perr, errOrOK(r.err), tail(r.stdout, 2000), tail(r.stderr, 3000))
	case r.err != nil || !s.OK:
		t.Fatalf("%s failed (exit: %v): %s\nstderr:\n%s", script, errOrOK(r.err), s.Error, tail(r.stderr, 3000))
	}
	t.Logf("%s summary: %s", script, s.brief())
	return s
}

// brief is the summary line without its records, for logs.
func (s summary) brief() string {
	var m map[string]any
	if json.Unmarshal([]byte(s.Line), &m) != nil {
		return s.Line
	}
	if recs, ok := m["records"].([]any); ok {
		m["records"] = fmt.Sprintf("(%d records)", len(recs))
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func parseSummary(stdout []byte) (summary, error) {
	lines := strings.Split(strings.TrimSpace(string(stdout)), "\n")
	last := strings.TrimSpace(lines[len(lines)-1])
	if last == "" {
		return summary{}, errors.New("no summary line on stdout")
	}
	var s summary
	if err := json.Unmarshal([]byte(last), &s); err != nil {
		return summary{}, fmt.Errorf("summary line is not JSON: %w", err)
	}
	s.Line = last
	return s, nil
}

// record is one record as a test expects it. Zero Timestamp and empty Codec
// mean "not checked" (a client that cannot set or report them).
type record struct {
	Offset    int64    `json:"offset"`
	Key       *string  `json:"key"`
	Value     string   `json:"value"`
	Timestamp int64    `json:"timestamp,omitempty"`
	Headers   []header `json:"headers,omitempty"`
	Codec     string   `json:"codec,omitempty"`
}

// header is a record header; a nil Value is a null header value. In JSON it
// is a two-element array, ["key", "value"] or ["key", null].
type header struct {
	Key   string
	Value *string
}

func (h *header) UnmarshalJSON(b []byte) error {
	var kv []*string
	if err := json.Unmarshal(b, &kv); err != nil {
		return err
	}
	if len(kv) != 2 || kv[0] == nil {
		return fmt.Errorf("header %s: want [key, value]", b)
	}
	h.Key, h.Value = *kv[0], kv[1]
	return nil
}

func (h header) String() string {
	if h.Value == nil {
		return h.Key + "=<null>"
	}
	return h.Key + "=" + *h.Value
}

func (r record) String() string {
	key := "<null>"
	if r.Key != nil {
		key = fmt.Sprintf("%q", *r.Key)
	}
	return fmt.Sprintf("{offset %d key %s value %q ts %d headers %v codec %q}", r.Offset, key, r.Value, r.Timestamp, r.Headers, r.Codec)
}

func strp(s string) *string { return &s }

// codecNames maps the compression bits of a batch's attributes to names.
var codecNames = [...]string{"none", "gzip", "snappy", "lz4", "zstd"}

// recordOf converts a record franz-go read into the form tests compare,
// leaving out what want does not check.
func recordOf(r *kgo.Record, want record) record {
	got := record{Offset: r.Offset, Value: string(r.Value)}
	if r.Key != nil {
		got.Key = strp(string(r.Key))
	}
	if want.Timestamp != 0 {
		got.Timestamp = r.Timestamp.UnixMilli()
	}
	for _, h := range r.Headers {
		gh := header{Key: h.Key}
		if h.Value != nil {
			gh.Value = strp(string(h.Value))
		}
		got.Headers = append(got.Headers, gh)
	}
	if want.Codec != "" {
		if c := int(r.Attrs.CompressionType()); c < len(codecNames) {
			got.Codec = codecNames[c]
		} else {
			got.Codec = fmt.Sprintf("codec-%d", c)
		}
	}
	return got
}

// compareRecords fails the test unless got holds exactly the records of
// want, in order.
func compareRecords(t *testing.T, got []*kgo.Record, want []record) {
	t.Helper()
	var diffs []string
	for i := 0; i < max(len(got), len(want)); i++ {
		switch {
		case i >= len(got):
			diffs = append(diffs, fmt.Sprintf("#%d missing, want %v", i, want[i]))
		case i >= len(want):
			diffs = append(diffs, fmt.Sprintf("#%d unexpected %v", i, recordOf(got[i], record{Timestamp: 1, Codec: "?"})))
		default:
			if g := recordOf(got[i], want[i]); !reflect.DeepEqual(g, want[i]) {
				diffs = append(diffs, fmt.Sprintf("#%d\n\t got %v\n\twant %v", i, g, want[i]))
			}
		}
	}
	if len(diffs) > 0 {
		if len(diffs) > 8 {
			diffs = append(diffs[:8], fmt.Sprintf("... and %d more", len(diffs)-8))
		}
		t.Errorf("read back %d records, want %d; differences:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
	}
}

// newClient returns a franz-go client for addr, closed when the test ends.
func newClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatalf("franz-go client: %v", err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic creates a topic with replication factor 1.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(newClient(t, addr))
	resp, err := adm.CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

// readPartition reads partition 0 of topic from the start with franz-go
// until it has n records, and checks that the partition ends there.
func readPartition(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cl := newClient(t, addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s: have %d of %d records after %v", topic, len(recs), n, err)
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("read %s: partition %d: %v", fe.Topic, fe.Partition, fe.Err)
		}
		recs = append(recs, fs.Records()...)
	}

	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = ends.Error()
	}
	if err != nil {
		t.Fatalf("list end offsets of %s: %v", topic, err)
	}
	if end, _ := ends.Lookup(topic, 0); end.Offset != int64(n) {
		t.Errorf("%s ends at offset %d, want %d", topic, end.Offset, n)
	}
	return recs
}
