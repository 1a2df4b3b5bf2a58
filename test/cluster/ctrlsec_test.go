package cluster

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/testutil"
	"github.com/stromhq/strom/test/internal/childbroker"
)

// startCtrlSecCluster starts three nodes whose CONTROLLER listener speaks
// proto (listener.security.protocol.map), with extra settings for every
// node and perNode(i) appended to node i's file, and waits until they list
// each other as brokers.
func startCtrlSecCluster(t *testing.T, proto string, perNode func(i int) []string, extra ...string) *testCluster {
	t.Helper()
	c := writeCluster(t, 3, append([]string{"offsets.topic.replication.factor=3"}, extra...)...)
	for i, nd := range c.nodes {
		b, err := os.ReadFile(nd.file)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.Replace(string(b), "CONTROLLER:PLAINTEXT,", "CONTROLLER:"+proto+",", 1)
		if perNode != nil {
			s += strings.Join(perNode(i), "\n") + "\n"
		}
		if err := os.WriteFile(nd.file, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	return c
}

// rf3Works creates a topic of replication factor 3 through the cluster
// and round-trips records through it: the partitions' raft groups, like
// the metadata quorum, talk over the secured controller listener.
func rf3Works(t *testing.T, c *testCluster, topic string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	adm := c.admin(c.nodes[1].kafka)
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s with RF=3: %v %v", topic, err, r.Err)
	}
	td := c.waitLed(c.nodes[0].kafka, topic, 3)
	for _, p := range td.Partitions {
		if len(p.Replicas) != 3 {
			t.Fatalf("partition %d has replicas %v", p.Partition, p.Replicas)
		}
	}
	produce(t, c.seeds(), topic, "v", 30)
	if got := consumeAll(t, c.seeds(), topic, 30); len(got) != 30 {
		t.Fatalf("consumed %d of 30", len(got))
	}
}

// helloClusterID is the cluster id a node's hello carries (quorum.go):
// meta.properties' cluster.id, "/", and the hash of the voters. None of it
// is secret: a stranger who can read a server.properties or guess the
// voters can make it, which is why the hello must not be the only check.
func helloClusterID(t *testing.T, c *testCluster, nd *node) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(nd.dir, "meta.properties"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^cluster\.id=(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no cluster.id in meta.properties:\n%s", b)
	}
	voters := strings.Split(c.voters, ",")
	slices.Sort(voters) // by id: 1..3, one digit each
	sum := sha256.Sum256([]byte("strom-cluster:" + strings.Join(voters, ",")))
	return string(m[1]) + "/" + base64.RawURLEncoding.EncodeToString(sum[:16])
}

// rawHello is a hand-made raftnet hello as node 2 of the cluster cluster
// would send it, in the frame layout of raftnet's doc.go: version 2 when
// v2, else the unauthenticated hello Strom spoke before (kind 1), which
// the code before this test took as a peer.
func rawHello(v2 bool, mechanism, cluster string) []byte {
	var body []byte
	if v2 {
		body = append(body, 3, 2)
		body = binary.BigEndian.AppendUint32(body, 2)
		body = binary.BigEndian.AppendUint64(body, 12345)
		body = append(body, byte(len(mechanism)))
		body = append(body, mechanism...)
	} else {
		body = append(body, 1)
		body = binary.BigEndian.AppendUint32(body, 2)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(cluster)))
	body = append(body, cluster...)
	return frame(body)
}

func frame(body []byte) []byte {
	f := binary.BigEndian.AppendUint32(nil, uint32(len(body)+4))
	f = binary.BigEndian.AppendUint32(f, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	return append(f, body...)
}

// intrude dials addr as a stranger, sends bytes and expects the node to
// close the connection without keeping it (whatever it answers first).
func intrude(t *testing.T, addr string, b []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(b); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the controller listener at %s kept a stranger's connection open", addr)
	}
}

// metricValue is a counter's value in a node's /metrics (0 and an error
// when it has none).
func metricValue(t *testing.T, httpAddr, name string) (int, error) {
	t.Helper()
	m := scrape(t, httpAddr)
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\d+)`)
	g := re.FindSubmatch(m)
	if g == nil {
		return 0, fmt.Errorf("no %s in the metrics: %s", name, grepMetrics(m, "strom_raft"))
	}
	n, _ := strconv.Atoi(string(g[1]))
	return n, nil
}

// waitRefused waits until the node's refusal counters grew by at least
// refused and failed from their values in before.
func waitRefused(t *testing.T, nd *node, before [2]int, refused, failed int) {
	t.Helper()
	waitFor(t, 10*time.Second, "the refusals counted", func() error {
		r, err := metricValue(t, nd.http, "strom_raft_connections_refused_total")
		if err != nil {
			return err
		}
		f, err := metricValue(t, nd.http, "strom_raft_authentication_failures_total")
		if err != nil {
			return err
		}
		if r < before[0]+refused || f < before[1]+failed {
			return fmt.Errorf("refused %d -> %d, authentication failures %d -> %d", before[0], r, before[1], f)
		}
		return nil
	})
}

// refusals are the node's counters now (zero when it has none).
func refusals(t *testing.T, nd *node) [2]int {
	r, _ := metricValue(t, nd.http, "strom_raft_connections_refused_total")
	f, _ := metricValue(t, nd.http, "strom_raft_authentication_failures_total")
	return [2]int{r, f}
}

// TestControllerListenerMTLS: three nodes with CONTROLLER:SSL and
// certificates made by the test, one per node, signed by one CA: the
// quorum forms, an RF=3 topic works, and a stranger who reaches a
// controller port (plaintext, a certificate of another CA) is refused and
// counted. On the code before, the listener's protocol was ignored and a
// hand-made hello was a peer.
func TestControllerListenerMTLS(t *testing.T) {
	ca := testutil.NewCA(t, "controllers")
	dir := t.TempDir()
	trust := testutil.WriteFile(t, dir, "ca.pem", ca.PEM)
	c := startCtrlSecCluster(t, "SSL", func(i int) []string {
		leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: fmt.Sprintf("node-%d", i+1)}, Server: true, ClientToo: true})
		return []string{"listener.name.controller.ssl.keystore.location=" + testutil.WriteFile(t, dir, fmt.Sprintf("node%d.pem", i+1), leaf.CertPEM, leaf.KeyPEM)}
	}, "listener.name.controller.ssl.truststore.location="+trust, "listener.name.controller.ssl.client.auth=required")
	rf3Works(t, c, "secure")

	nd := c.nodes[0]
	before := refusals(t, nd)
	id := helloClusterID(t, c, nd)
	batch := frame([]byte{2, 0, 0, 0, 0}) // an empty batch of raft messages
	intrude(t, nd.ctrl, append(rawHello(false, "", id), batch...))
	intrude(t, nd.ctrl, append(rawHello(true, "", id), batch...))
	// A TLS client with a certificate the truststore did not sign.
	other := testutil.NewCA(t, "intruders")
	bad := other.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "node-2"}, Server: true, ClientToo: true})
	cfg := testutil.ClientTLS(ca, &bad.TLS)
	cfg.ServerName = "127.0.0.1"
	if conn, err := tlsDial(nd.ctrl, cfg); err == nil {
		conn.Write(append(rawHello(true, "", id), batch...))
		conn.SetReadDeadline(time.Now().Add(15 * time.Second))
		if _, err := io.Copy(io.Discard, conn); err == nil {
			t.Error("a certificate of another CA: the connection was not refused")
		}
		conn.Close()
	}
	waitRefused(t, nd, before, 3, 3)
	// The cluster is unharmed.
	produce(t, c.seeds(), "secure", "after", 10)
	if out := nd.proc.Output(); strings.Count(out, "TLS handshake failed") > 1 {
		t.Errorf("the refusals from one address were logged more than once per interval:\n%s", out)
	}
}

// TestControllerListenerSASLPlain: CONTROLLER:SASL_PLAINTEXT with PLAIN,
// the users in the listener's JAAS user_ entries: the quorum forms and an
// RF=3 topic works; a hello without SASL and one with a wrong password
// are refused and counted.
func TestControllerListenerSASLPlain(t *testing.T) {
	c := startCtrlSecCluster(t, "SASL_PLAINTEXT", nil,
		"sasl.mechanism.controller.protocol=PLAIN",
		"listener.name.controller.sasl.enabled.mechanisms=PLAIN",
		`listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="ctrl" password="ctrl-secret" user_ctrl="ctrl-secret";`)
	rf3Works(t, c, "secure")

	nd := c.nodes[2]
	before := refusals(t, nd)
	id := helloClusterID(t, c, nd)
	batch := frame([]byte{2, 0, 0, 0, 0})
	intrude(t, nd.ctrl, append(rawHello(false, "", id), batch...))
	intrude(t, nd.ctrl, append(rawHello(true, "", id), batch...))
	wrong := append(rawHello(true, "PLAIN", id), frame(append([]byte{4}, "\x00ctrl\x00guess"...))...)
	intrude(t, nd.ctrl, append(wrong, batch...))
	waitRefused(t, nd, before, 3, 2)
	if out := nd.proc.Output(); strings.Contains(out, "guess") || strings.Contains(out, "ctrl-secret") {
		t.Errorf("a password in the log:\n%s", out)
	}
	produce(t, c.seeds(), "secure", "after", 10)
}

func tlsDial(addr string, cfg *tls.Config) (*tls.Conn, error) {
	return tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
}

// TestControllerListenerSASLSSLScram: CONTROLLER:SASL_SSL with
// SCRAM-SHA-512. The controllers' user is made at format time on every
// node (storage format --add-scram, here broker.AddScram): before the
// quorum forms it is the only place a node can check a peer's SCRAM login
// against. The cluster forms, an RF=3 topic works, and a node killed and
// restarted (its format-time file migrated away by then: the credentials
// are the metadata log's) rejoins and serves again.
func TestControllerListenerSASLSSLScram(t *testing.T) {
	ca := testutil.NewCA(t, "controllers")
	dir := t.TempDir()
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "node"}, Server: true, ClientToo: true})
	c := writeCluster(t, 3, "offsets.topic.replication.factor=3",
		"sasl.mechanism.controller.protocol=SCRAM-SHA-512",
		"listener.name.controller.sasl.enabled.mechanisms=SCRAM-SHA-512",
		`listener.name.controller.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="ctrl" password="ctrl-secret";`,
		"listener.name.controller.ssl.keystore.location="+testutil.WriteFile(t, dir, "node.pem", leaf.CertPEM, leaf.KeyPEM),
		"listener.name.controller.ssl.truststore.location="+testutil.WriteFile(t, dir, "ca.pem", ca.PEM))
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.file)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(nd.file, []byte(strings.Replace(string(b), "CONTROLLER:PLAINTEXT,", "CONTROLLER:SASL_SSL,", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(nd.dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := broker.AddScram(nd.dir, []string{"SCRAM-SHA-512=[name=ctrl,password=ctrl-secret]"}); err != nil {
			t.Fatal(err)
		}
	}
	// A node with a file to migrate listens for clients only once the
	// quorum took the file: the first two start together, without waiting.
	for _, nd := range c.nodes[:2] {
		nd.proc = childbroker.StartIn(t, "", childEnv, nil, "--config", nd.file, "--http-addr", nd.http, "--log-level", logLevel())
	}
	c.start(c.nodes[2])
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	rf3Works(t, c, "secure")

	nd := c.nodes[1]
	if _, err := os.Stat(filepath.Join(nd.dir, "__strom_metadata")); err == nil {
		t.Fatal("node 2's format-time metadata file was not migrated")
	}
	nd.proc.Kill(t)
	c.start(nd)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	waitFor(t, 30*time.Second, "node 2 back in every partition's ISR", func() error {
		md, err := c.admin(c.nodes[0].kafka).Metadata(context.Background(), "secure")
		if err != nil {
			return err
		}
		for _, p := range md.Topics["secure"].Partitions {
			if len(p.ISR) != 3 {
				return fmt.Errorf("partition %d ISR %v", p.Partition, p.ISR)
			}
		}
		return nil
	})
	produce(t, c.seeds(), "secure", "after", 10)
	if got := consumeAll(t, c.seeds(), "secure", 40); len(got) != 40 {
		t.Fatalf("consumed %d of 40", len(got))
	}
	if n := refusals(t, c.nodes[0]); n[1] > 0 {
		// Refusals while node 2 replays its log are expected (it does not
		// know the credentials yet); none from node 1's side of a good peer
		// once running would show as a failure to rejoin above.
		t.Logf("node 1 refused %d connections, %d for authentication", n[0], n[1])
	}
}
