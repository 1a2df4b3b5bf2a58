package cli

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestTopicLifecycle(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		same(t, "create", c.ok(t, nil, "topic", "create", "orders", "-p", "2", "-r", "1", "--config", "retention.ms=86400000"),
			"created topic orders: 2 partitions, replication factor 1\n")
		c.fails(t, nil, "strom: topic \"orders\" already exists — pass --if-not-exists to ignore this\n", "topic", "create", "orders", "-p", "2")
		same(t, "create --if-not-exists", c.ok(t, nil, "topic", "create", "orders", "--if-not-exists", "-p", "2"), "topic orders already exists\n")
		// kafka-topics.sh spellings, and --bootstrap-server instead of the environment.
		r := runStrom(t, nil, nil, "topic", "create", "--topic", "events", "--partitions", "1", "--replication-factor", "1", "--bootstrap-server", c.addr)
		same(t, "create with Kafka's flags", r.stdout+r.stderr, "created topic events: 1 partition, replication factor 1\n")

		adm := c.admin(t)
		tds, err := adm.ListTopics(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		same(t, "list", c.ok(t, nil, "topic", "list"), renderTable(
			row("TOPIC", "PARTITIONS", "REPLICATION-FACTOR"),
			row("events", 1, 1),
			row("orders", 2, 1)))
		same(t, "list json", c.ok(t, nil, "topic", "list", "--output", "json"), fmt.Sprintf(`[
  {
    "topic": "events",
    "id": %q,
    "partitions": 1,
    "replication_factor": 1,
    "internal": false
  },
  {
    "topic": "orders",
    "id": %q,
    "partitions": 2,
    "replication_factor": 1,
    "internal": false
  }
]
`, topicID(tds["events"].ID), topicID(tds["orders"].ID)))

		c.seed(t,
			&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("a"), Value: []byte("1")},
			&kgo.Record{Topic: "orders", Partition: 0, Key: []byte("b"), Value: []byte("2")},
			&kgo.Record{Topic: "orders", Partition: 1, Value: []byte("three")})
		same(t, "describe", c.ok(t, nil, "topic", "describe", "orders"), wantDescribe(t, c, adm, "orders", [][2]int64{{0, 2}, {0, 1}}))
		same(t, "describe json", c.ok(t, nil, "topic", "describe", "--topic", "orders", "--output", "json"), wantDescribeJSON(t, c, adm, "orders", [][2]int64{{0, 2}, {0, 1}}))

		same(t, "alter-config set", c.ok(t, nil, "topic", "alter-config", "orders", "--set", "retention.ms=1000,segment.bytes=1048576"),
			"altered topic orders: set retention.ms=1000, set segment.bytes=1048576\n")
		checkConfig(t, adm, "orders", "retention.ms", "1000", true)
		checkConfig(t, adm, "orders", "segment.bytes", "1048576", true)
		same(t, "alter-config delete", c.ok(t, nil, "topic", "alter-config", "orders", "--delete-config", "retention.ms"),
			"altered topic orders: deleted retention.ms\n")
		checkConfig(t, adm, "orders", "retention.ms", "", false)

		same(t, "add-partitions total", c.ok(t, nil, "topic", "add-partitions", "orders", "--partitions", "4"), "added 2 partitions to topic orders (2 → 4)\n")
		same(t, "add-partitions add", c.ok(t, nil, "topic", "add-partitions", "orders", "--add", "1"), "added 1 partition to topic orders (4 → 5)\n")
		c.fails(t, nil, "strom: topic \"orders\" already has 5 partitions — partitions can only be added; give a larger --partitions\n",
			"topic", "add-partitions", "orders", "--partitions", "3")
		same(t, "partitions after adding", c.ok(t, nil, "topic", "list"), renderTable(
			row("TOPIC", "PARTITIONS", "REPLICATION-FACTOR"),
			row("events", 1, 1),
			row("orders", 5, 1)))

		same(t, "delete", c.ok(t, nil, "topic", "delete", "orders", "events"), "deleted topic orders\ndeleted topic events\n")
		// Deleting a missing topic does not suggest creating it (issue 23).
		c.fails(t, nil, "strom: topic \"orders\" does not exist — see \"strom topic list\" (--if-exists ignores a missing topic)\n",
			"topic", "delete", "orders")
		same(t, "delete --if-exists", c.ok(t, nil, "topic", "delete", "orders", "--if-exists"), "topic orders does not exist\n")
		same(t, "list after delete", c.ok(t, nil, "topic", "list"), "TOPIC  PARTITIONS  REPLICATION-FACTOR\n")
		same(t, "list json after delete", c.ok(t, nil, "topic", "list", "--output", "json"), "[]\n")
	})
}

func TestTopicErrors(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		const missing = "strom: topic \"nope\" does not exist — create it with \"strom topic create nope\", or see \"strom topic list\"\n"
		c.fails(t, nil, missing, "topic", "describe", "nope")
		c.fails(t, nil, missing, "topic", "alter-config", "nope", "--set", "retention.ms=1")
		c.fails(t, nil, missing, "topic", "add-partitions", "nope", "--add", "1")
		c.fails(t, nil, "strom: no topic given — name one, e.g. \"strom topic create orders\"\n", "topic", "create")
		c.fails(t, nil, "strom: --partitions \"abc\": want a whole number — see \"strom topic create --help\"\n", "topic", "create", "x", "--partitions", "abc")
		c.fails(t, nil, "strom: --partitions 0: want at least 1\n", "topic", "create", "x", "--partitions", "0")
		c.fails(t, nil, "strom: --config \"retention.ms\": want name=value, e.g. --config retention.ms=86400000\n", "topic", "create", "x", "--config", "retention.ms")
		c.fails(t, nil, "strom: --output \"yaml\": want table or json\n", "topic", "list", "--output", "yaml")
		c.fails(t, nil, "strom: unknown flag --list — did you mean \"strom topic list\"?\n", "topic", "--list")
		c.fails(t, nil, "strom: unknown command \"lst\" for \"strom topic\" — see \"strom topic --help\"\n", "topic", "lst")
		c.fails(t, nil, "strom: give either --partitions N (the new total) or --add N (how many to add), with N at least 1\n", "topic", "add-partitions", "x")
		c.fails(t, nil, "strom: nothing to change: give --set name=value, --delete name, --append or --subtract\n", "topic", "alter-config", "x")
		c.fails(t, nil, "strom: --zookeeper is not used: clients talk to the brokers directly — pass the broker's Kafka address instead, e.g. --bootstrap-server localhost:9092\n",
			"topic", "list", "--zookeeper", "localhost:2181")
		// An invalid name and an invalid config are refused by the
		// broker; its own explanation differs between clusters, so
		// only the start of the line is ours.
		if c.name == "strom" { // kfake accepts any topic name
			r := c.run(t, nil, "topic", "create", "bad/name")
			if r.code != 1 || !strings.HasPrefix(r.stderr, "strom: invalid topic name") || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("bad name: exit %d, stderr %q", r.code, r.stderr)
			}
		}
		r := c.run(t, nil, "topic", "create", "x", "-p", "1", "-r", "9")
		// Strom's message is Kafka's, which the CLI rephrases; kfake's is its own.
		if r.code != 1 || !strings.HasPrefix(r.stderr, "strom: invalid replication factor") && !strings.HasPrefix(r.stderr, "strom: replication factor 9 is more than the 1 broker") || strings.Count(r.stderr, "\n") != 1 {
			t.Fatalf("replication factor: exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// wantDescribe renders what "topic describe" must print, from the
// broker's own answers: the topic id, the broker id, the sizes and the
// configs. offsets are [start, end) per partition.
func wantDescribe(t *testing.T, c *cluster, adm *kadm.Client, topic string, offsets [][2]int64) string {
	t.Helper()
	ctx := context.Background()
	tds, err := adm.ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	td := tds[topic]
	sizes := logSizes(t, adm, topic)
	var b strings.Builder
	fmt.Fprintf(&b, "Topic: %s  ID: %s  Partitions: %d  Replication factor: 1\n\n", topic, topicID(td.ID), len(offsets))
	rows := [][]string{row("PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "LOG-END", "SIZE")}
	for p, o := range offsets {
		leader := td.Partitions[int32(p)].Leader
		epoch := fmt.Sprint(td.Partitions[int32(p)].LeaderEpoch)
		if sizes[int32(p)] <= 0 && o[1] > o[0] {
			t.Fatalf("%s: partition %d holds records but the broker reports size %d", c.name, p, sizes[int32(p)])
		}
		rows = append(rows, row(p, leader, epoch, leader, leader, o[0], o[1], humanBytes(sizes[int32(p)])))
	}
	b.WriteString(renderTable(rows...))
	rc := topicConfigs(t, adm, topic)
	b.WriteString("\n")
	rows = [][]string{row("CONFIG", "VALUE", "SOURCE")}
	for _, cfg := range rc {
		v := "-"
		if cfg.Value != nil {
			v = *cfg.Value
		}
		rows = append(rows, row(cfg.Key, v, cfg.Source))
	}
	b.WriteString(renderTable(rows...))
	if !strings.Contains(b.String(), "retention.ms") {
		t.Fatalf("%s: configs of %s lack retention.ms:\n%s", c.name, topic, b.String())
	}
	return b.String()
}

func wantDescribeJSON(t *testing.T, c *cluster, adm *kadm.Client, topic string, offsets [][2]int64) string {
	t.Helper()
	tds, err := adm.ListTopics(context.Background(), topic)
	if err != nil {
		t.Fatal(err)
	}
	td := tds[topic]
	sizes := logSizes(t, adm, topic)
	var b strings.Builder
	fmt.Fprintf(&b, "[\n  {\n    \"topic\": %q,\n    \"id\": %q,\n    \"internal\": false,\n    \"replication_factor\": 1,\n    \"partitions\": [\n", topic, topicID(td.ID))
	for p, o := range offsets {
		l, e := td.Partitions[int32(p)].Leader, td.Partitions[int32(p)].LeaderEpoch
		fmt.Fprintf(&b, "      {\n        \"partition\": %d,\n        \"leader\": %d,\n        \"leader_epoch\": %d,\n        \"replicas\": [\n          %d\n        ],\n        \"isr\": [\n          %d\n        ],\n        \"offline_replicas\": [],\n        \"log_start_offset\": %d,\n        \"log_end_offset\": %d,\n        \"size_bytes\": %d\n      }", p, l, e, l, l, o[0], o[1], sizes[int32(p)])
		if p < len(offsets)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("    ],\n    \"configs\": [\n")
	rc := topicConfigs(t, adm, topic)
	for i, cfg := range rc {
		v := "null"
		if cfg.Value != nil {
			v = fmt.Sprintf("%q", *cfg.Value)
		}
		fmt.Fprintf(&b, "      {\n        \"name\": %q,\n        \"value\": %s,\n        \"source\": %q,\n        \"sensitive\": %t\n      }", cfg.Key, v, cfg.Source, cfg.Sensitive)
		if i < len(rc)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("    ]\n  }\n]\n")
	return b.String()
}

func logSizes(t *testing.T, adm *kadm.Client, topic string) map[int32]int64 {
	t.Helper()
	dirs, err := adm.DescribeAllLogDirs(context.Background(), nil)
	if err != nil {
		t.Fatalf("DescribeLogDirs: %v", err)
	}
	sizes := map[int32]int64{}
	dirs.Each(func(d kadm.DescribedLogDir) {
		for p, dp := range d.Topics[topic] {
			sizes[p] = dp.Size
		}
	})
	return sizes
}

func topicConfigs(t *testing.T, adm *kadm.Client, topic string) []kadm.Config {
	t.Helper()
	rcs, err := adm.DescribeTopicConfigs(context.Background(), topic)
	if err != nil {
		t.Fatalf("DescribeConfigs: %v", err)
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		t.Fatalf("DescribeConfigs %s: %v", topic, err)
	}
	cs := rc.Configs
	sort.Slice(cs, func(i, j int) bool { return cs[i].Key < cs[j].Key })
	return cs
}

// checkConfig checks a topic config's value and whether it is set on the
// topic itself.
func checkConfig(t *testing.T, adm *kadm.Client, topic, name, value string, onTopic bool) {
	t.Helper()
	for _, cfg := range topicConfigs(t, adm, topic) {
		if cfg.Key != name {
			continue
		}
		dynamic := cfg.Source.String() == "DYNAMIC_TOPIC_CONFIG"
		if dynamic != onTopic || (onTopic && cfg.MaybeValue() != value) {
			t.Fatalf("%s %s = %q from %s; want %q on the topic: %t", topic, name, cfg.MaybeValue(), cfg.Source, value, onTopic)
		}
		return
	}
	if onTopic {
		t.Fatalf("%s has no config %s", topic, name)
	}
}

// TestTopicDryRun: --dry-run validates on the broker and changes nothing.
func TestTopicDryRun(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		same(t, "create", c.ok(t, nil, "topic", "create", "dry", "-p", "3", "--dry-run"), "would create topic dry: 3 partitions, replication factor 1\n")
		same(t, "nothing created", c.ok(t, nil, "topic", "list"), "TOPIC  PARTITIONS  REPLICATION-FACTOR\n")
		c.ok(t, nil, "topic", "create", "dry", "-p", "1")
		same(t, "alter", c.ok(t, nil, "topic", "alter-config", "dry", "--set", "retention.ms=5000", "--dry-run"), "would alter topic dry: set retention.ms=5000\n")
		checkConfig(t, c.admin(t), "dry", "retention.ms", "", false)
		same(t, "add partitions", c.ok(t, nil, "topic", "add-partitions", "dry", "--add", "2", "--dry-run"), "would add 2 partitions to topic dry (1 → 3)\n")
		same(t, "partitions unchanged", c.ok(t, nil, "topic", "list"), renderTable(row("TOPIC", "PARTITIONS", "REPLICATION-FACTOR"), row("dry", 1, 1)))
	})
}

// TestTopicDescribeSizesWithABrokerDown: a broker that does not answer
// DescribeLogDirs (down in a failover) costs only its own sizes: the
// others' are shown, and a note names the broker, not every seed.
func TestTopicDescribeSizesWithABrokerDown(t *testing.T) {
	kc, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c := &cluster{name: "kfake", addr: kc.ListenAddrs()[0], kfake: kc}
	c.ok(t, nil, "topic", "create", "r3", "-p", "3", "-r", "3")
	kc.ControlKey(int16(kmsg.DescribeLogDirs), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if kc.CurrentNode() == 2 {
			return nil, errors.New("broker 2 is down"), true
		}
		return nil, nil, false
	})
	r := c.run(t, nil, "topic", "describe", "r3")
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "strom: note: partition sizes from broker 2 (") || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("stderr %q, want one note naming broker 2", r.stderr)
	}
	for _, line := range strings.Split(r.stdout, "\n")[3:6] {
		if f := strings.Fields(line); len(f) < 8 || f[len(f)-1] == "-" {
			t.Fatalf("a partition without a size with two brokers answering: %q\n%s", line, r.stdout)
		}
	}
}
