package compat

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// checkCommitted fails the test unless group has committed want for every
// partition of topic (0..len(want)-1), as franz-go reads it back.
func checkCommitted(t *testing.T, addr, group, topic string, want ...int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	offs, err := kadm.NewClient(newClient(t, addr)).FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("fetch offsets of %s: %v", group, err)
	}
	for p, w := range want {
		o, ok := offs.Lookup(topic, int32(p))
		if !ok || o.Err != nil || o.At != w {
			t.Errorf("group %s, %s-%d: committed %+v, want %d", group, topic, p, o, w)
		}
	}
}

// TestNodeKafkaNodeGroup runs kafka-node's ConsumerGroup the tutorials' way
// (autoCommit, close(true)): two members split a topic's partitions, commit,
// and a new member resumes from the committed offsets.
func TestNodeKafkaNodeGroup(t *testing.T) {
	t.Parallel()
	skipWithoutGroups(t)
	node, script := nodeScript(t, "kafkanode_group.js", "kafka-node")
	addr := startBroker(t)
	topic := uniqueTopic("kafkanode-group")

	s := runScript(t, node, script, addr, topic)
	if s.Produced == 0 || s.Consumed != s.Produced {
		t.Errorf("consumed %d of %d records", s.Consumed, s.Produced)
	}
	// Every record of both partitions is committed.
	checkCommitted(t, addr, "compat-kafkanode-"+topic, topic, int64(s.Produced/2), int64(s.Produced/2))
}

// TestPythonConfluentGroup runs confluent-kafka-python (librdkafka) group
// consumers: two split a topic's partitions and commit; the broker
// restarts; a new consumer of the group resumes exactly where the group
// left off (no committed offset lost, none moved backwards).
func TestPythonConfluentGroup(t *testing.T) {
	t.Parallel()
	skipWithoutGroups(t)
	python := requireTool(t, debianPython)
	if r := runClient(t, "", python, "-c", "import confluent_kafka"); r.err != nil {
		missing(t, "python3-confluent-kafka is not importable by "+debianPython+": "+tail(r.stderr, 300))
	}
	addr, restart := startRestartableBroker(t)
	topic := uniqueTopic("python-group")
	const script = "python/confluent_group.py"

	split := runScriptArgs(t, python, script, addr, topic, "split")
	if split.Produced == 0 || split.Consumed != split.Produced {
		t.Fatalf("split: consumed %d of %d", split.Consumed, split.Produced)
	}
	perPartition := int64(split.Produced / 4)
	group := "compat-python-group-" + topic
	checkCommitted(t, addr, group, topic, perPartition, perPartition, perPartition, perPartition)

	if restart != nil {
		restart()
		checkCommitted(t, addr, group, topic, perPartition, perPartition, perPartition, perPartition)
	}
	resume := runScriptArgs(t, python, script, addr, topic, "resume")
	if resume.Consumed != resume.Produced {
		t.Fatalf("resume: consumed %d of %d", resume.Consumed, resume.Produced)
	}
	checkCommitted(t, addr, group, topic, 2*perPartition, 2*perPartition, 2*perPartition, 2*perPartition)
}

// runScriptArgs is runScript with arguments after the broker and topic.
func runScriptArgs(t *testing.T, interpreter, script, addr, topic string, args ...string) summary {
	t.Helper()
	r := runClient(t, "", interpreter, append([]string{script, addr, topic}, args...)...)
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

// TestKcatGroup runs kcat's balanced consumer (-G, librdkafka's
// KafkaConsumer): it reads a three-partition topic from the beginning to
// the end (-e) and commits on exit; a second run of the same group reads
// only what was produced since.
func TestKcatGroup(t *testing.T) {
	t.Parallel()
	skipWithoutGroups(t)
	kcat := requireTool(t, "kcat")
	addr := startBroker(t)
	topic := uniqueTopic("kcat-group")
	group := "compat-kcat-" + topic
	createTopic(t, addr, topic, 3)

	produce := func(label string) []string {
		var lines []string
		for p := 0; p < 3; p++ {
			var in strings.Builder
			for i := 0; i < 10; i++ {
				v := fmt.Sprintf("%s-p%d-%d", label, p, i)
				in.WriteString(v + "\n")
				lines = append(lines, fmt.Sprintf("%d|%s", p, v))
			}
			mustRun(t, in.String(), kcat, "-b", addr, "-P", "-t", topic, "-p", strconv.Itoa(p))
		}
		sort.Strings(lines)
		return lines
	}
	consume := func() []string {
		// No -o: with -G it would override the committed offsets; a
		// partition without one starts at auto.offset.reset.
		out := mustRun(t, "", kcat, "-b", addr, "-G", group, "-e", "-q",
			"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=6000", "-f", "%p|%s\n", topic)
		lines := strings.Split(strings.TrimSpace(string(out)), "\n")
		sort.Strings(lines)
		return lines
	}

	first := produce("first")
	if got := consume(); !slices.Equal(got, first) {
		t.Fatalf("first run read:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(first, "\n"))
	}
	checkCommitted(t, addr, group, topic, 10, 10, 10)

	second := produce("second")
	if got := consume(); !slices.Equal(got, second) {
		t.Fatalf("second run read:\n%s\nwant only:\n%s", strings.Join(got, "\n"), strings.Join(second, "\n"))
	}
	checkCommitted(t, addr, group, topic, 20, 20, 20)
}
