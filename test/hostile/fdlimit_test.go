package hostile

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// childNofile is the hard open-file limit of TestOpenFileLimit's broker.
const childNofile = 400

// TestOpenFileLimit runs a broker process under a hard open-file limit of
// 400 (Go's runtime raises the soft limit to it at start) and checks the case of a
// CreateTopics that runs out of descriptors:
//   - a topic with more partitions than the limit leaves room for is
//     refused up front (INVALID_PARTITIONS, naming ulimit -n);
//   - with the descriptors kept for connections taken by idle clients, a
//     topic that passes that check but runs out of descriptors half way
//     (a real EMFILE) is not created at all: no metadata, no directory;
//   - once the clients go, the broker accepts connections and creates
//     topics again, stops cleanly, and starts again on its data, although
//     that data has more segments than the limit has descriptors (sealed
//     segments hold none), and serves the old records.
func TestOpenFileLimit(t *testing.T) {
	t.Setenv(nofileEnv, strconv.Itoa(childNofile))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dataDir := t.TempDir()
	b := startBrokerOn(t, dataDir)
	cl := newClient(t, b.kafkaAddr)

	// Over the limit: refused before anything is created.
	over := createTopic(t, ctx, cl, "huge", childNofile)
	if over.ErrorCode != kerr.InvalidPartitions.Code || over.ErrorMessage == nil || !strings.Contains(*over.ErrorMessage, "ulimit -n") {
		t.Fatalf("a topic of %d partitions under %d descriptors: code %d, %v", childNofile, childNofile, over.ErrorCode, msg(over))
	}
	m := regexp.MustCompile(`more than its limit of (\d+)`).FindStringSubmatch(*over.ErrorMessage)
	if m == nil {
		t.Fatalf("no limit in %q", *over.ErrorMessage)
	}
	maxParts, _ := strconv.Atoi(m[1])
	if maxParts <= 0 || maxParts >= childNofile {
		t.Fatalf("partition limit %d under %d descriptors", maxParts, childNofile)
	}
	assertNoTopicDirs(t, dataDir, "huge")
	t.Logf("%d descriptors: at most %d partitions", childNofile, maxParts)

	// Idle clients take more than the room kept for connections, so that
	// maxParts partitions no longer fit: the creation hits EMFILE.
	used := openFDs(t, b.Pid())
	idle := childNofile - used - maxParts + 40
	var conns []net.Conn
	for range idle {
		c, err := net.Dial("tcp", b.kafkaAddr)
		if err != nil {
			t.Fatalf("idle connection %d of %d: %v", len(conns), idle, err)
		}
		conns = append(conns, c)
	}
	waitFor(t, func() bool { return openFDs(t, b.Pid()) >= used+idle }, "the broker to accept the idle connections")
	doomed := createTopic(t, ctx, cl, "doomed", int32(maxParts))
	if doomed.ErrorCode == 0 {
		t.Fatalf("%d partitions created with %d descriptors in use of %d", maxParts, used+idle, childNofile)
	}
	t.Logf("creation out of descriptors: code %d, %s", doomed.ErrorCode, msg(doomed))
	assertNoTopicDirs(t, dataDir, "doomed")
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, func() bool { return openFDs(t, b.Pid()) <= used+5 }, "the broker to close the idle connections")

	// Back to normal: a new client is served, the failed topic does not
	// exist, a topic that fits is created.
	cl2 := newClient(t, b.kafkaAddr)
	if md := metadataOf(t, ctx, cl2, "doomed"); md.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("failed topic in metadata: code %d, %d partitions", md.ErrorCode, len(md.Partitions))
	}
	// Tiny segments: one record each, so 20 partitions of 30 records make
	// 600 segments, more than the 400 descriptors.
	if r := createTopic(t, ctx, cl2, "fits", 20, "segment.bytes", "1024"); r.ErrorCode != 0 {
		t.Fatalf("create after the failure: code %d, %s", r.ErrorCode, msg(r))
	}
	const perPartition = 30
	prod, err := kgo.NewClient(kgo.SeedBrokers(b.kafkaAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(1000), kgo.ProducerLinger(0), kgo.ProducerBatchCompression(kgo.NoCompression()))
	if err != nil {
		t.Fatal(err)
	}
	value := []byte(strings.Repeat("v", 800))
	var recs []*kgo.Record
	for p := range int32(20) {
		for range perPartition {
			recs = append(recs, &kgo.Record{Topic: "fits", Partition: p, Value: value})
		}
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	prod.Close()
	segs, _ := filepath.Glob(filepath.Join(dataDir, "fits-*", "*.log"))
	if len(segs) <= childNofile {
		t.Fatalf("%d segments, want more than %d", len(segs), childNofile)
	}
	t.Logf("%d segments in 20 partitions", len(segs))
	cl.Close()
	cl2.Close()
	b.Stop(t)

	b = startBrokerOn(t, dataDir)
	cl3 := newClient(t, b.kafkaAddr)
	if md := metadataOf(t, ctx, cl3, "fits"); md.ErrorCode != 0 || len(md.Partitions) != 20 {
		t.Fatalf("after restart: code %d, %d partitions", md.ErrorCode, len(md.Partitions))
	}
	if md := metadataOf(t, ctx, cl3, "doomed"); md.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("failed topic after restart: code %d", md.ErrorCode)
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(b.kafkaAddr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"fits": {0: kgo.NewOffset().AtStart(), 19: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := 0
	for got < 2*perPartition {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch after restart (%d records so far): %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if len(r.Value) != len(value) {
				t.Fatalf("record at %d-%d has %d bytes", r.Partition, r.Offset, len(r.Value))
			}
			got++
		})
	}
}

// startBrokerOn starts a broker process on dataDir (see startBrokerProc).
func startBrokerOn(t *testing.T, dataDir string) *brokerProc {
	t.Helper()
	p := &brokerProc{kafkaAddr: childbroker.FreeAddr(t), httpAddr: childbroker.FreeAddr(t)}
	p.Proc = childbroker.Start(t, childEnv, []string{p.kafkaAddr, p.httpAddr}, "--data-dir", dataDir,
		"--kafka-addr", p.kafkaAddr, "--advertised-addr", p.kafkaAddr, "--http-addr", p.httpAddr, "--log-level", "error")
	t.Cleanup(func() { p.Stop(t) })
	return p
}

func newClient(t *testing.T, addr string) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// createTopic sends one CreateTopics; configs are name, value pairs.
func createTopic(t *testing.T, ctx context.Context, cl *kgo.Client, name string, partitions int32, configs ...string) kmsg.CreateTopicsResponseTopic {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, 1
	for i := 0; i+1 < len(configs); i += 2 {
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = configs[i], kmsg.StringPtr(configs[i+1])
		rt.Configs = append(rt.Configs, c)
	}
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("CreateTopics %s: %v", name, err)
	}
	return resp.Topics[0]
}

func metadataOf(t *testing.T, ctx context.Context, cl *kgo.Client, name string) kmsg.MetadataResponseTopic {
	t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(name)
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatalf("Metadata %s: %v", name, err)
	}
	return resp.Topics[0]
}

func msg(r kmsg.CreateTopicsResponseTopic) string {
	if r.ErrorMessage == nil {
		return "(no message)"
	}
	return *r.ErrorMessage
}

// openFDs counts a process's open descriptors.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Skipf("cannot count the broker's descriptors: %v", err)
	}
	return len(ents)
}

// assertNoTopicDirs fails if dataDir holds a partition directory of topic.
func assertNoTopicDirs(t *testing.T, dataDir, topic string) {
	t.Helper()
	dirs, _ := filepath.Glob(filepath.Join(dataDir, topic+"-*"))
	if len(dirs) > 0 {
		t.Fatalf("%d partition directories of %q left, e.g. %s", len(dirs), topic, dirs[0])
	}
}

// waitFor polls cond for up to 20 s.
func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
