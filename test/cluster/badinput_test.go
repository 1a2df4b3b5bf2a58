package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/test/internal/childbroker"
)

// waitOutput waits until the process's log matches re.
func waitOutput(t *testing.T, p *childbroker.Proc, what string, re *regexp.Regexp) {
	t.Helper()
	waitFor(t, 30*time.Second, what, func() error {
		if re.MatchString(p.Output()) {
			return nil
		}
		return fmt.Errorf("log does not match %s", re)
	})
}

// strom runs the CLI in the test process.
func strom(t *testing.T, args ...string) string {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), args, &out, &errOut, servecmd.Commands()...); code != 0 {
		t.Fatalf("strom %v: exit %d: %s", args, code, errOut.String())
	}
	return out.String()
}

// rewrite writes a copy of nd's server.properties with the given keys
// replaced, and returns its path.
func rewrite(t *testing.T, nd *node, name string, set map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(nd.file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i, l := range lines {
		if k, _, ok := strings.Cut(l, "="); ok {
			if v, ok := set[k]; ok {
				lines[i] = k + "=" + v
			}
		}
	}
	path := filepath.Join(filepath.Dir(nd.file), name)
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestClusterBadInput: what a user gets wrong when setting up a cluster,
// each answered by a clear message, the rest of the cluster unaffected
// and nothing of it corrupted:
//   - a controller unreachable at start (a node started alone): it serves,
//     and warns that it cannot register, naming the voters;
//   - a node formatted with another cluster id (storage format -t): its
//     peers refuse it ("a peer of another cluster"), it warns; reformatted
//     rightly it joins;
//   - a node given another controller.quorum.voters: refused the same way;
//   - a second process with a node.id already running: it does not start
//     (its controller listener is taken; or, with the same log.dirs, the
//     data directory is locked) and says why.
func TestClusterBadInput(t *testing.T) {
	c := writeCluster(t, 3)
	n1, n2, n3 := c.nodes[0], c.nodes[1], c.nodes[2]

	// Node 1 alone: no quorum.
	c.start(n1)
	waitOutput(t, n1.proc, "node 1 warns it cannot register",
		regexp.MustCompile(`cannot register with the metadata quorum.*controller\.quorum\.voters.*node=1 voters=`))
	c.start(n2)
	c.waitBrokers(n1.kafka, []int32{1, 2})

	// Node 3 formatted for another cluster.
	other := strings.TrimSpace(strom(t, "storage", "random-uuid"))
	if out := strom(t, "storage", "format", "-t", other, "-c", n3.file); !strings.Contains(out, other) {
		t.Fatalf("format: %s", out)
	}
	c.start(n3)
	refused := regexp.MustCompile(`refused a peer of another cluster.*peer_node=3`)
	waitFor(t, 30*time.Second, "a peer refuses node 3", func() error {
		if refused.MatchString(n1.proc.Output()) || refused.MatchString(n2.proc.Output()) {
			return nil
		}
		return fmt.Errorf("no refusal logged")
	})
	waitOutput(t, n3.proc, "node 3 warns it cannot register",
		regexp.MustCompile(`cannot register with the metadata quorum.*cluster_id=`+other))
	// The two others go on, without node 3.
	adm := c.admin(n1.kafka)
	if r, err := adm.CreateTopic(context.Background(), 2, 1, nil, "ok"); err != nil || r.Err != nil {
		t.Fatalf("create with node 3 refused: %v %v", err, r.Err)
	}
	c.waitLed(n2.kafka, "ok", 2)
	produce(t, []string{n1.kafka, n2.kafka}, "ok", "o", 50)
	c.waitBrokers(n2.kafka, []int32{1, 2})
	n3.proc.Stop(t)
	if b, err := os.ReadFile(filepath.Join(n3.dir, "meta.properties")); err != nil || !strings.Contains(string(b), "cluster.id="+other) {
		t.Fatalf("node 3's meta.properties changed: %v\n%s", err, b)
	}

	// Node 3 with another voters list (node 1 elsewhere), on a new
	// directory: refused too.
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	wrongVoters := strings.Replace(c.voters, "1@"+n1.ctrl, "1@"+childbroker.FreeAddr(t), 1)
	bad := rewrite(t, n3, "server3-wrong-voters.properties", map[string]string{"controller.quorum.voters": wrongVoters})
	n3.proc = childbroker.Start(t, childEnv, []string{n3.kafka, n3.ctrl}, "--config", bad, "--http-addr", "-", "--log-level", "warn")
	waitFor(t, 30*time.Second, "node 2 refuses node 3 with other voters", func() error {
		if strings.Count(n2.proc.Output(), "refused a peer of another cluster") >= 1 &&
			regexp.MustCompile(`refused a peer of another cluster.*peer_node=3`).MatchString(n2.proc.Output()) {
			return nil
		}
		return fmt.Errorf("no refusal logged")
	})
	waitOutput(t, n3.proc, "node 3 warns it cannot register", regexp.MustCompile(`cannot register with the metadata quorum`))
	n3.proc.Stop(t)

	// Fixed (a fresh directory, the right file), node 3 joins.
	if err := os.RemoveAll(n3.dir); err != nil {
		t.Fatal(err)
	}
	c.start(n3)
	c.waitBrokers(n1.kafka, []int32{1, 2, 3})

	// A second node 2: the same file with its own data directory and
	// client port: its controller listener is node 2's, taken.
	dup := rewrite(t, n2, "server2-dup.properties", map[string]string{
		"log.dirs":             filepath.Join(c.root, "dup-2"),
		"listeners":            "PLAINTEXT://" + childbroker.FreeAddr(t) + ",CONTROLLER://" + n2.ctrl,
		"advertised.listeners": "PLAINTEXT://" + childbroker.FreeAddr(t),
	})
	out, err := childbroker.Run(t, childEnv, 30*time.Second, "serve", "--config", dup, "--http-addr", "-", "--log-level", "warn")
	if err == nil || !regexp.MustCompile(`controller listener of node.id=2: listen tcp .*address already in use \(is a node with the same node.id already running\?\)`).MatchString(out) {
		t.Fatalf("a second node 2 (own log.dirs): %v\n%s", err, out)
	}
	// The same file twice: the data directory is locked.
	out, err = childbroker.Run(t, childEnv, 30*time.Second, "serve", "--config", n2.file, "--http-addr", "-", "--log-level", "warn")
	if err == nil || !strings.Contains(out, "is in use by another Strom process") {
		t.Fatalf("a second node 2 (same file): %v\n%s", err, out)
	}
	n2.proc.Alive(t)
	c.waitBrokers(n3.kafka, []int32{1, 2, 3})
	if got := consumeAll(t, c.seeds(), "ok", 50); len(got) != 50 {
		t.Fatalf("read %d records of ok, want 50", len(got))
	}
}
