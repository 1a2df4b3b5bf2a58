package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// inCI: CI=true makes a missing client a failure (as in test/compat).
func inCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

func missing(t *testing.T, why string) {
	t.Helper()
	if inCI() {
		t.Fatalf("%s; CI must have it: `make deps` installs it", why)
	}
	t.Skipf("%s; run `make deps` to install it", why)
}

// clientSummary is the JSON line a script in clients/ prints last.
type clientSummary struct {
	Client   string  `json:"client"`
	OK       bool    `json:"ok"`
	Error    *string `json:"error"`
	Leaders  []int32 `json:"leaders"`
	Produced int     `json:"produced"`
	Consumed int     `json:"consumed"`
}

func runClientScript(t *testing.T, env []string, prog string, args ...string) clientSummary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, prog, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var s clientSummary
	if jerr := json.Unmarshal([]byte(lines[len(lines)-1]), &s); jerr != nil || err != nil || !s.OK {
		msg := ""
		if s.Error != nil {
			msg = *s.Error
		}
		t.Fatalf("%s %v: exit %v, %s\nstdout:\n%s\nstderr:\n%s", prog, args, err, msg, stdout.String(), stderr.String())
	}
	return s
}

// TestClusterClients: confluent-kafka-python, KafkaJS and kafka-node, each
// bootstrapped from a different single broker of a three-node cluster,
// create a topic of three partitions (spread over the brokers), produce to
// every partition's leader and read everything back in a consumer group.
func TestClusterClients(t *testing.T) {
	python := "/usr/bin/python3"
	nodeBin, nodeErr := exec.LookPath("node")
	nodeModules, _ := filepath.Abs(filepath.Join("..", "compat", "node", "node_modules"))
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	cases := []struct {
		name   string
		via    *node
		prog   string
		script string
		needs  func() error
	}{
		{"confluent-kafka-python", c.nodes[0], python, "confluent_cluster.py", func() error {
			return exec.Command(python, "-c", "import confluent_kafka").Run()
		}},
		{"kafkajs", c.nodes[1], nodeBin, "kafkajs_cluster.js", func() error {
			if nodeErr != nil {
				return nodeErr
			}
			_, err := os.Stat(filepath.Join(nodeModules, "kafkajs"))
			return err
		}},
		{"kafka-node", c.nodes[2], nodeBin, "kafkanode_cluster.js", func() error {
			if nodeErr != nil {
				return nodeErr
			}
			_, err := os.Stat(filepath.Join(nodeModules, "kafka-node"))
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.needs(); err != nil {
				missing(t, fmt.Sprintf("%s not available (%v)", tc.name, err))
			}
			topic := "cluster-" + strings.ReplaceAll(tc.name, "-", "")
			s := runClientScript(t, []string{"NODE_PATH=" + nodeModules}, tc.prog, filepath.Join("clients", tc.script), tc.via.kafka, topic)
			if s.Produced == 0 || s.Consumed != s.Produced {
				t.Fatalf("%s: consumed %d of %d", tc.name, s.Consumed, s.Produced)
			}
			// The topic is the cluster's: every broker lists it, its
			// partitions led by more than one broker.
			td := c.waitLed(c.nodes[(int(tc.via.id))%3].kafka, topic, 3)
			leaders := map[int32]bool{}
			for _, p := range td.Partitions {
				leaders[p.Leader] = true
			}
			if len(leaders) < 2 {
				t.Fatalf("%s's topic led by %v only", tc.name, leaders)
			}
			if got := consumeAll(t, c.seeds(), topic, s.Produced); len(got) != s.Produced {
				t.Fatalf("franz-go read %d of %s's %d records", len(got), tc.name, s.Produced)
			}
		})
	}
}
