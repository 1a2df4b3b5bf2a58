package compat

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// compactedTopic creates a topic the broker's cleaner compacts at once:
// tiny segments, any dirty ratio.
func compactedTopic(t *testing.T, addr, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := map[string]*string{"cleanup.policy": strp("compact"), "segment.bytes": strp("2000"), "min.cleanable.dirty.ratio": strp("0.01")}
	res, err := kadm.NewClient(newClient(t, addr)).CreateTopic(ctx, 1, 1, cfg, topic)
	if err != nil || res.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, res.Err)
	}
}

// readCompacted reads partition 0 of topic with franz-go until the high
// watermark hw, polling (with a deadline) until the cleaner has left at
// most max records and two reads in a row agree (it has nothing left to
// clean).
func readCompacted(t *testing.T, addr, topic string, hw int64, max int) []*kgo.Record {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var prev []*kgo.Record
	for {
		cl := newClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		var got []*kgo.Record
		for len(got) == 0 || got[len(got)-1].Offset < hw-1 {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil {
				t.Fatalf("read %s: %d records, none at %d: %v", topic, len(got), hw-1, ctx.Err())
			}
			for _, fe := range fs.Errors() {
				t.Fatalf("fetch %s: %v", topic, fe.Err)
			}
			got = append(got, fs.Records()...)
		}
		cancel()
		cl.Close()
		if len(got) <= max && sameOffsets(got, prev) {
			return got
		}
		prev = got
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %d records after a minute, want at most %d: the cleaner did not compact", topic, len(got), max)
		}
		time.Sleep(100 * time.Millisecond) // polling with a deadline
	}
}

// TestCompactedTopicKcatKafkaNode: kcat produces keyed records (many
// updates of few keys) to a compacted topic, the broker's cleaner compacts
// it, and kcat, franz-go and kafka-node (Fetch v0, down-conversion) read the
// compacted result: the latest value of every key, offsets with gaps.
func TestCompactedTopicKcatKafkaNode(t *testing.T) {
	t.Parallel()
	kcat := requireTool(t, "kcat")
	addr := startBroker(t)
	topic := uniqueTopic("compacted")
	compactedTopic(t, addr, topic)
	const keys, rounds = 8, 40
	var in strings.Builder
	for r := range rounds {
		for k := range keys {
			fmt.Fprintf(&in, "user-%d:score-%d-%d\n", k, r, k)
		}
	}
	mustRun(t, in.String(), kcat, "-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-X", "linger.ms=0", "-X", "batch.num.messages=4")
	// The last segment is active and never cleaned; an end marker per key
	// written after a roll would be needed to see every key's newest value
	// compacted, so check what matters: the latest value per key.
	const hw = keys * rounds
	got := readCompacted(t, addr, topic, hw, hw/2)
	latest := map[string]string{}
	for _, r := range got {
		latest[string(r.Key)] = string(r.Value)
	}
	for k := range keys {
		if want := fmt.Sprintf("score-%d-%d", rounds-1, k); latest[fmt.Sprint("user-", k)] != want {
			t.Fatalf("franz-go: user-%d = %q, want %q", k, latest[fmt.Sprint("user-", k)], want)
		}
	}
	want := make([]string, len(got))
	for i, r := range got {
		want[i] = fmt.Sprintf("%d %s=%s", r.Offset, r.Key, r.Value)
	}

	out := mustRun(t, "", kcat, "-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%o %k=%s\n")
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kcat read %d records, franz-go %d:\nkcat:\n%s\nfranz-go:\n%s", len(lines), len(want), tail(out, 2000), strings.Join(want, "\n"))
	}

	node, script := nodeScript(t, "kafkanode_read.js", "kafka-node")
	s := runScript(t, node, script, addr, topic)
	var nodeLines []string
	for _, r := range s.Records {
		nodeLines = append(nodeLines, fmt.Sprintf("%d %s=%s", r.Offset, *r.Key, r.Value))
	}
	if strings.Join(nodeLines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kafka-node read %d records, franz-go %d:\nkafka-node:\n%s\nfranz-go:\n%s", len(nodeLines), len(want), strings.Join(nodeLines, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Offset == 0 && got[len(got)-1].Offset-got[0].Offset+1 == int64(len(got)) {
		t.Fatal("no offset gap: the test read an uncompacted log")
	}
}

func sameOffsets(a, b []*kgo.Record) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Offset != b[i].Offset {
			return false
		}
	}
	return true
}

// TestZstdTopicEveryClient: a topic with compression.type=zstd, written
// uncompressed and gzipped by franz-go and kcat, stores zstd batches
// (recompressed by the broker) that franz-go, kcat (librdkafka) and
// kafka-node read back; kafka-node through down-conversion to gzip, as
// MessageSet v0 has no zstd. KafkaJS is not driven: it has no zstd codec
// without a plugin package.
func TestZstdTopicEveryClient(t *testing.T) {
	t.Parallel()
	kcat := requireTool(t, "kcat")
	addr := startBroker(t)
	topic := uniqueTopic("zstd-topic")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := kadm.NewClient(newClient(t, addr)).CreateTopic(ctx, 1, 1, map[string]*string{"compression.type": strp("zstd")}, topic)
	if err != nil || res.Err != nil {
		t.Fatalf("create: %v %v", err, res.Err)
	}
	for _, codec := range []kgo.CompressionCodec{kgo.NoCompression(), kgo.GzipCompression()} {
		cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.ProducerBatchCompression(codec), kgo.RecordPartitioner(kgo.ManualPartitioner()))
		var rs []*kgo.Record
		for i := range 20 {
			rs = append(rs, &kgo.Record{Key: []byte(fmt.Sprint("k", i)), Value: []byte(zstdValue(i))})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var in strings.Builder
	for i := range 20 {
		fmt.Fprintf(&in, "k%d:%s\n", 20+i, zstdValue(20+i))
	}
	mustRun(t, in.String(), kcat, "-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", "gzip")
	const n = 60
	got := readPartition(t, addr, topic, n)
	want := make([]string, n)
	for i, r := range got {
		want[i] = fmt.Sprintf("%d %s=%s", r.Offset, r.Key, r.Value)
		v := zstdValue(i % 20) // franz-go's two rounds
		if i >= 40 {
			v = zstdValue(i - 20) // kcat's
		}
		if r.Offset != int64(i) || string(r.Value) != v {
			t.Fatalf("franz-go read %s", want[i])
		}
	}
	if largest := largestZstdBatch(t, addr, topic); largest == 0 {
		t.Fatal("no zstd batch stored")
	}

	out := mustRun(t, "", kcat, "-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-f", "%o %k=%s\n")
	if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kcat read %d records, franz-go %d", len(lines), len(want))
	}
	node, script := nodeScript(t, "kafkanode_read.js", "kafka-node")
	s := runScript(t, node, script, addr, topic)
	var nodeLines []string
	for _, r := range s.Records {
		nodeLines = append(nodeLines, fmt.Sprintf("%d %s=%s", r.Offset, *r.Key, r.Value))
	}
	if strings.Join(nodeLines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("kafka-node read %d records, franz-go %d:\n%s", len(nodeLines), len(want), strings.Join(nodeLines, "\n"))
	}
}
