package cluster

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// TestDuplicateNodeIDOnAnotherHost: a second `strom serve` with node 2's
// node.id, as on another host (its own data directory, its listeners on
// 127.0.0.2, the controller port its voter entry names), joins a running
// cluster. Two processes with one raft id in a raft group can vote twice;
// before this test nothing noticed. Its peers, which hold node 2's live
// connections, refuse its handshake and say why; it logs an error naming
// the node id and the other process's address and exits, and the cluster
// goes on unharmed. (Restarts are not refused: TestClusterRollingRestart,
// TestControllerListenerSASLSSLScram's kill -9 and restart.)
func TestDuplicateNodeIDOnAnotherHost(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	n2 := c.nodes[1]
	ctrlPort := n2.ctrl[strings.LastIndexByte(n2.ctrl, ':')+1:]
	kafkaPort := strings.TrimPrefix(childbroker.FreeAddr(t), "127.0.0.1:")
	dir := filepath.Join(c.root, "impostor-logs")
	file := rewrite(t, n2, "server2-impostor.properties", map[string]string{
		"listeners":            "PLAINTEXT://127.0.0.2:" + kafkaPort + ",CONTROLLER://127.0.0.2:" + ctrlPort,
		"advertised.listeners": "PLAINTEXT://127.0.0.2:" + kafkaPort,
		"log.dirs":             dir,
	})
	dup := childbroker.StartIn(t, "", childEnv, nil, "--config", file, "--http-addr", "-", "--log-level", "info")
	t.Cleanup(func() {
		if exited, _ := dup.Exited(); !exited {
			dup.Kill(t)
		}
	})
	var exitErr error
	waitFor(t, 60*time.Second, "the second process with node.id 2 stops", func() error {
		exited, err := dup.Exited()
		if !exited {
			return fmt.Errorf("still running; output:\n%s", dup.Output())
		}
		exitErr = err
		return nil
	})
	out := dup.Output()
	if exitErr == nil {
		t.Errorf("exited with status 0; want a failure")
	}
	// Its log names the node id and where the other process connects from.
	want := regexp.MustCompile(`level=ERROR .*node\.id 2 is in use by another process \(incarnation [0-9a-f]{16}\) connected to node [13] from 127\.0\.0\.1:\d+`)
	if !want.MatchString(out) {
		t.Fatalf("no error naming node.id 2 and the other's address:\n%s", out)
	}
	if !strings.Contains(out, "stopping: this broker cannot go on") {
		t.Fatalf("it did not stop through the failure path:\n%s", out)
	}
	// The peers logged the refusal; node 2 and the cluster are unharmed.
	refusal := regexp.MustCompile(`refused a second process with one node\.id.*peer_node=2`)
	if !refusal.MatchString(c.nodes[0].proc.Output()) && !refusal.MatchString(c.nodes[2].proc.Output()) {
		t.Fatalf("no peer logged the refusal")
	}
	n2.proc.Alive(t)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	rf3Works(t, c, "after-impostor")
}
