package cli

import (
	"strings"
	"testing"
)

// TestSeedWorkflow runs, with strom, every step the seeds (our users'
// tutorials) take with kafka-topics.sh, kafka-console-producer.sh and
// kafka-console-consumer.sh, spelled as they spell them.
func TestSeedWorkflow(t *testing.T) {
	onEach(t, func(t *testing.T, c *cluster) {
		b := []string{"--bootstrap-server", c.addr}
		run := func(in string, args ...string) string {
			t.Helper()
			r := runStrom(t, nil, strings.NewReader(in), append(args, b...)...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("strom %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
			}
			return r.stdout
		}
		// kafka-topics.sh --create --topic quickstart-events --bootstrap-server localhost:9092
		if out := run("", "topic", "create", "--topic", "quickstart-events"); !strings.HasPrefix(out, "created topic quickstart-events: ") {
			t.Fatalf("create with the cluster's defaults: %q", out)
		}
		// kafka-topics.sh --create --replication-factor 1 --partitions 1 --topic test1
		same(t, "create", run("", "topic", "create", "--replication-factor", "1", "--partitions", "1", "--topic", "test1"),
			"created topic test1: 1 partition, replication factor 1\n")
		// kafka-topics.sh --create --topic kraft-test --partitions 3 --replication-factor 1
		same(t, "create", run("", "topic", "create", "--topic", "kraft-test", "--partitions", "3", "--replication-factor", "1"),
			"created topic kraft-test: 3 partitions, replication factor 1\n")
		// kafka-topics.sh --list
		if out := run("", "topic", "list"); !strings.Contains(out, "\nkraft-test ") || !strings.Contains(out, "\nquickstart-events ") || !strings.Contains(out, "\ntest1 ") {
			t.Fatalf("list: %q", out)
		}
		// kafka-topics.sh --describe --topic test1
		if out := run("", "topic", "describe", "--topic", "test1"); !strings.HasPrefix(out, "Topic: test1  ID: ") {
			t.Fatalf("describe: %q", out)
		}
		// kafka-console-producer.sh --broker-list localhost:9092 --topic test1
		r := runStrom(t, nil, strings.NewReader("This is my first event\nThis is my second event\n"), "produce", "--broker-list", c.addr, "--topic", "test1")
		same(t, "produce", r.stdout+r.stderr, "")
		// kafka-console-consumer.sh --bootstrap-server localhost:9092 --topic test1 --from-beginning
		same(t, "consume", run("", "consume", "--topic", "test1", "--from-beginning", "--max-messages", "2"),
			"This is my first event\nThis is my second event\n")
		// kafka-topics.sh --delete --topic test1
		same(t, "delete", run("", "topic", "delete", "--topic", "test1"), "deleted topic test1\n")
	})
}
