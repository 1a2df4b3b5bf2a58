package cluster

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSeedFlowSurvivesKill is seed 001's flow with the Node clients its
// readers use, on three brokers while one is killed: KafkaJS and
// kafka-node each run a consumer group and an acks=-1 producer on an RF=3
// topic for 20 s; once the consumer has its first record, the broker
// leading partition 0 is killed with SIGKILL and restarted 3 s later. The
// consumers keep receiving: every record the producer was acknowledged is
// consumed.
func TestSeedFlowSurvivesKill(t *testing.T) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is missing")
	}
	nodeModules, _ := filepath.Abs(filepath.Join("..", "compat", "node", "node_modules"))
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	for _, tc := range []struct{ name, module, script string }{
		{"kafkajs", "kafkajs", "kafkajs_kill.js"},
		{"kafka-node", "kafka-node", "kafkanode_kill.js"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(nodeModules, tc.module)); err != nil {
				missing(t, tc.module+" is not installed")
			}
			topic := "seed-" + strings.ReplaceAll(tc.name, "-", "")
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
				t.Fatalf("create: %v %v", err, r.Err)
			}
			c.waitAllLed(adm, topic, 3, -1)
			cmd := exec.CommandContext(ctx, nodeBin, filepath.Join("clients", tc.script), strings.Join(c.seeds(), ","), topic, "20")
			cmd.Env = append(os.Environ(), "NODE_PATH="+nodeModules)
			cmd.Stderr = os.Stderr
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			lines := make(chan string, 16)
			go func() {
				defer close(lines)
				sc := bufio.NewScanner(stdout)
				for sc.Scan() {
					lines <- sc.Text()
				}
			}()
			first, ok := <-lines
			if !ok || first != "ready" {
				cmd.Wait()
				t.Fatalf("%s: %q before its first record", tc.name, first)
			}
			md, err := adm.Metadata(ctx, topic)
			if err != nil {
				t.Fatal(err)
			}
			victim := c.nodes[md.Topics[topic].Partitions[0].Leader-1]
			victim.proc.Kill(t)
			time.Sleep(3 * time.Second) // the broker stays down while the clients go on
			c.start(victim)
			var last string
			for l := range lines {
				last = l
			}
			werr := cmd.Wait()
			var s struct {
				OK       bool    `json:"ok"`
				Error    *string `json:"error"`
				Produced int     `json:"produced"`
				Consumed int     `json:"consumed"`
				MaxGapMs int64   `json:"max_gap_ms"`
			}
			if err := json.Unmarshal([]byte(last), &s); err != nil || werr != nil || !s.OK {
				t.Fatalf("%s: exit %v, summary %q (%v)", tc.name, werr, last, err)
			}
			if s.Produced == 0 || s.Consumed != s.Produced {
				t.Fatalf("%s: consumed %d of %d acknowledged records", tc.name, s.Consumed, s.Produced)
			}
			t.Logf("%s: broker %d killed and restarted; %d acknowledged records, all consumed; longest pause between consumed records %v",
				tc.name, victim.id, s.Produced, time.Duration(s.MaxGapMs)*time.Millisecond)
			c.waitAllLed(adm, topic, 3, -1)
		})
	}
}
