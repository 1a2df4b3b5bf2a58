// Package cluster runs Strom as users run a cluster: several `strom serve`
// processes started from seed-001-style KRaft server.properties files on
// loopback ports, driven by unchanged clients (franz-go, kcat), killed with
// SIGKILL and restarted.
//
// The broker processes are this test binary re-executed as `strom serve`
// (see TestMain).
package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/test/internal/childbroker"
)

const childEnv = "STROM_CLUSTER_CHILD"

func TestMain(m *testing.M) {
	childbroker.ServeIfChild(childEnv)
	os.Exit(m.Run())
}

// node is one `strom serve` of a test cluster.
type node struct {
	id          int32
	kafka, ctrl string // loopback host:port of its listeners
	http        string // its HTTP listener (metrics)
	file        string // its server.properties
	dir         string // its log.dirs
	netns       string // its network namespace (a netLab's), or "" for the test's
	proc        *childbroker.Proc
}

type testCluster struct {
	t      *testing.T
	root   string // the files' directory
	voters string // controller.quorum.voters
	nodes  []*node
	lab    *netLab // the network the nodes are on, nil for loopback
	// clientOpts are added to the test's clients of the cluster (admin,
	// direct): SASL for a cluster whose listener needs it.
	clientOpts []kgo.Opt
}

// startCluster writes n server.properties files as the tutorial does
// (process.roles=broker,controller, node.id, controller.quorum.voters,
// listeners, advertised.listeners, log.dirs), with a short broker session
// timeout so that fencing shows within the test, and starts every node.
func startCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	c := writeCluster(t, n, extra...)
	for _, nd := range c.nodes {
		c.start(nd)
	}
	return c
}

// writeCluster writes the n nodes' files as startCluster does, and starts
// none.
func writeCluster(t *testing.T, n int, extra ...string) *testCluster {
	t.Helper()
	return writeClusterIn(t, nil, n, extra...)
}

// startClusterIn is startCluster with node i in lab's namespace i, on its
// address there (ports 9092, 9093 and 8080 as in the tutorial).
func startClusterIn(t *testing.T, lab *netLab, n int, extra ...string) *testCluster {
	t.Helper()
	c := writeClusterIn(t, lab, n, extra...)
	for _, nd := range c.nodes {
		c.start(nd)
	}
	return c
}

// writeClusterIn writes the files on loopback ports, or on lab's addresses
// when lab is not nil.
func writeClusterIn(t *testing.T, lab *netLab, n int, extra ...string) *testCluster {
	t.Helper()
	c := &testCluster{t: t, root: t.TempDir(), lab: lab}
	var voters []string
	for i := 1; i <= n; i++ {
		nd := &node{id: int32(i)}
		if lab != nil {
			nd.kafka, nd.ctrl, nd.http, nd.netns = lab.addr(i, 9092), lab.addr(i, 9093), lab.addr(i, 8080), lab.ns[i-1]
		} else {
			nd.kafka, nd.ctrl, nd.http = childbroker.FreeAddr(t), childbroker.FreeAddr(t), childbroker.FreeAddr(t)
		}
		c.nodes = append(c.nodes, nd)
		voters = append(voters, fmt.Sprintf("%d@%s", i, nd.ctrl))
	}
	for _, nd := range c.nodes {
		nd.file = filepath.Join(c.root, fmt.Sprintf("server%d.properties", nd.id))
		nd.dir = filepath.Join(c.root, fmt.Sprintf("kraft-combined-logs-%d", nd.id))
		c.voters = strings.Join(voters, ",")
		props := strings.Join([]string{
			"# a node of the tutorial's three-broker cluster, ports on loopback",
			"process.roles=broker,controller",
			fmt.Sprintf("node.id=%d", nd.id),
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"listeners=PLAINTEXT://" + nd.kafka + ",CONTROLLER://" + nd.ctrl,
			"advertised.listeners=PLAINTEXT://" + nd.kafka,
			"controller.listener.names=CONTROLLER",
			"inter.broker.listener.name=PLAINTEXT",
			"listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
			"log.dirs=" + nd.dir,
			"num.partitions=3",
			"broker.session.timeout.ms=1500",
			"broker.heartbeat.interval.ms=300",
			"replica.lag.time.max.ms=2000",
			strings.Join(extra, "\n"),
			"",
		}, "\n")
		if err := os.WriteFile(nd.file, []byte(props), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, nd := range c.nodes {
			if nd.proc != nil {
				nd.proc.Stop(t)
			}
		}
	})
	return c
}

func (c *testCluster) start(nd *node) {
	c.t.Helper()
	nd.proc = childbroker.StartIn(c.t, nd.netns, childEnv, []string{nd.kafka, nd.ctrl, nd.http}, "--config", nd.file, "--http-addr", nd.http, "--log-level", logLevel())
}

func (c *testCluster) seeds() []string {
	var out []string
	for _, nd := range c.nodes {
		out = append(out, nd.kafka)
	}
	return out
}

func (c *testCluster) admin(addr string) *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, c.clientOpts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

// direct is a connection to the broker at addr alone (kadm spreads its
// requests over every broker it knows, the dead one included).
func (c *testCluster) direct(addr string) *kgo.Broker {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, c.clientOpts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl.SeedBrokers()[0]
}

// waitFor polls f until it returns nil, failing the test with its last
// error after the deadline.
func waitFor(t *testing.T, d time.Duration, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	var err error
	for time.Since(start) < d {
		if err = f(); err == nil {
			return time.Since(start)
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster's state with a deadline
	}
	t.Fatalf("%s: not within %v: %v", what, d, err)
	return 0
}

// waitBrokers waits until the node at addr lists want (sorted) as the
// live brokers and names a controller.
func (c *testCluster) waitBrokers(addr string, want []int32) kadm.Metadata {
	c.t.Helper()
	adm := c.admin(addr)
	var md kadm.Metadata
	waitFor(c.t, 30*time.Second, fmt.Sprintf("%s lists brokers %v", addr, want), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var err error
		md, err = adm.Metadata(ctx)
		if err != nil {
			return err
		}
		got := md.Brokers.NodeIDs()
		slices.Sort(got)
		if !slices.Equal(got, want) || md.Controller < 0 {
			return fmt.Errorf("brokers %v, controller %d", got, md.Controller)
		}
		return nil
	})
	return md
}

// TestClusterTutorial is seed 001's three-broker tutorial with Strom: three
// nodes from KRaft files, a topic created through one broker and seen by
// all, records produced and consumed through a group by franz-go and kcat.
func TestClusterTutorial(t *testing.T) {
	c := startCluster(t, 3)
	for _, nd := range c.nodes {
		md := c.waitBrokers(nd.kafka, []int32{1, 2, 3})
		for _, b := range md.Brokers {
			if want := c.nodes[b.NodeID-1].kafka; fmt.Sprintf("%s:%d", b.Host, b.Port) != want {
				t.Fatalf("broker %d at %s:%d, want %s", b.NodeID, b.Host, b.Port, want)
			}
		}
	}

	// Created through broker 2; more replicas than brokers is refused.
	adm := c.admin(c.nodes[1].kafka)
	ctx := context.Background()
	r, err := adm.CreateTopic(ctx, 3, 4, nil, "refused")
	if !errors.Is(r.Err, kerr.InvalidReplicationFactor) {
		t.Fatalf("rf 4 on 3 brokers: %v %q %v", r.Err, r.ErrMessage, err)
	}
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	// Every broker knows the topic and its leaders; the three partitions
	// lead on three brokers.
	var leaders []int32
	for _, nd := range c.nodes {
		adm := c.admin(nd.kafka)
		waitFor(t, 10*time.Second, "topic metadata on "+nd.kafka, func() error {
			md, err := adm.Metadata(ctx, "orders")
			if err != nil {
				return err
			}
			td := md.Topics["orders"]
			if td.Err != nil || len(td.Partitions) != 3 {
				return fmt.Errorf("%v, %d partitions", td.Err, len(td.Partitions))
			}
			leaders = leaders[:0]
			for _, p := range td.Partitions.Sorted() {
				if p.Err != nil || p.Leader < 1 || len(p.Replicas) != 1 || p.Replicas[0] != p.Leader || !slices.Equal(p.ISR, p.Replicas) {
					return fmt.Errorf("partition %d: %v leader %d replicas %v isr %v", p.Partition, p.Err, p.Leader, p.Replicas, p.ISR)
				}
				leaders = append(leaders, p.Leader)
			}
			return nil
		})
	}
	sorted := slices.Clone(leaders)
	slices.Sort(sorted)
	if !slices.Equal(sorted, []int32{1, 2, 3}) {
		t.Fatalf("leaders %v: want one partition led by each broker", leaders)
	}

	// franz-go produces to every partition (each at its leader) ...
	const n = 300
	produce(t, c.seeds(), "orders", "a", n)
	// ... and a consumer group reads them all once, committing offsets.
	got := consumeGroup(t, c.seeds(), "orders", "tutorial-group", n)
	if len(got) != n {
		t.Fatalf("group read %d records, want %d", len(got), n)
	}
	// The group's offsets are committed at its coordinator, wherever the
	// offsets topic's partition is.
	offs, err := adm.FetchOffsets(ctx, "tutorial-group")
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, offs.Error())
	}
	var committed int64
	offs.Each(func(o kadm.OffsetResponse) { committed += o.At })
	if committed != n {
		t.Fatalf("committed offsets sum to %d, want %d", committed, n)
	}

	// kcat, through one broker, sees the cluster and reads every record.
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("kcat not installed: %v", err)
		}
		t.Skipf("kcat not installed: %v", err)
	}
	out, err := exec.Command(kcat, "-b", c.nodes[2].kafka, "-L").CombinedOutput()
	if err != nil || !strings.Contains(string(out), " 3 brokers:") {
		t.Fatalf("kcat -L: %v\n%s", err, out)
	}
	out, err = exec.Command(kcat, "-b", c.nodes[0].kafka, "-C", "-t", "orders", "-o", "beginning", "-e", "-q", "-f", "%s\n").Output()
	if err != nil {
		t.Fatalf("kcat -C: %v\n%s", err, out)
	}
	if lines := strings.Count(string(out), "\n"); lines != n {
		t.Fatalf("kcat read %d records, want %d", lines, n)
	}
}

// TestClusterControllerFailover kills the active controller with SIGKILL:
// another node takes over within seconds and metadata changes go on; the
// dead broker is fenced (its partition shows no leader); restarted, it
// rejoins, leads its partition again and serves the records it had.
func TestClusterControllerFailover(t *testing.T) {
	c := startCluster(t, 3)
	md := c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	if r, err := adm.CreateTopic(ctx, 3, 1, nil, "before"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	produce(t, c.seeds(), "before", "b", 90)

	old := md.Controller
	victim := c.nodes[old-1]
	victim.proc.Kill(t)
	var others []*node
	for _, nd := range c.nodes {
		if nd != victim {
			others = append(others, nd)
		}
	}
	oadm := c.admin(others[0].kafka)
	direct := c.direct(others[0].kafka)
	took := waitFor(t, 20*time.Second, "a new controller", func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := direct.Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		if ctl := resp.(*kmsg.MetadataResponse).ControllerID; ctl < 0 || ctl == old {
			return fmt.Errorf("controller %d", ctl)
		}
		return nil
	})
	t.Logf("controller %d killed; a new one in %v", old, took)
	// Metadata changes go on without the dead node; the new topic's
	// partitions avoid it once it is fenced.
	waitFor(t, 20*time.Second, "broker fenced", func() error {
		md, err := oadm.Metadata(ctx)
		if err != nil {
			return err
		}
		if ids := md.Brokers.NodeIDs(); slices.Contains(ids, old) {
			return fmt.Errorf("brokers %v", ids)
		}
		return nil
	})
	if r, err := oadm.CreateTopic(ctx, 2, 1, nil, "after"); err != nil || r.Err != nil {
		t.Fatalf("create after failover: %v %v", err, r.Err)
	}
	produce(t, []string{others[0].kafka, others[1].kafka}, "after", "c", 40)

	// Restarted, the node rejoins and its partition of "before" is led
	// again, with its records.
	c.start(victim)
	c.waitBrokers(others[1].kafka, []int32{1, 2, 3})
	waitFor(t, 20*time.Second, "every partition led", func() error {
		md, err := c.admin(victim.kafka).Metadata(ctx, "before", "after")
		if err != nil {
			return err
		}
		for _, td := range md.Topics {
			for _, p := range td.Partitions {
				if p.Leader < 0 || p.Err != nil {
					return fmt.Errorf("%s-%d: leader %d %v", td.Topic, p.Partition, p.Leader, p.Err)
				}
			}
		}
		return nil
	})
	if got := consumeAll(t, c.seeds(), "before", 90); len(got) != 90 {
		t.Fatalf("read %d records of before, want 90", len(got))
	}
}

// produce writes n records (values prefix-0 ...) with acks=all, idempotent,
// failing the test on any error; opts are added to the client's.
func produce(t *testing.T, seeds []string, topic, prefix string, n int, opts ...kgo.Opt) {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(seeds...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner())}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, n)
	for i := range recs {
		recs[i] = &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i))}
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce to %s: %v", topic, err)
	}
}

// consumeGroup reads want records of topic as a member of group,
// committing as it goes, and returns the values (each must come once).
func consumeGroup(t *testing.T, seeds []string, topic, group string, want int) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return poll(t, cl, want, true)
}

// consumeAll reads want records of topic from the start, without a group.
func consumeAll(t *testing.T, seeds []string, topic string, want int) map[string]bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return poll(t, cl, want, false)
}

func poll(t *testing.T, cl *kgo.Client, want int, commit bool) map[string]bool {
	t.Helper()
	got := map[string]bool{}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(got) < want {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records: %v", len(got), want, ctx.Err())
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s-%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if got[string(r.Value)] {
				t.Fatalf("record %q read twice", r.Value)
			}
			got[string(r.Value)] = true
		})
		if commit {
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				t.Fatalf("commit: %v", err)
			}
		}
	}
	return got
}

// logLevel is the brokers' log level: warn, or STROM_TEST_LOG_LEVEL.
func logLevel() string {
	if l := os.Getenv("STROM_TEST_LOG_LEVEL"); l != "" {
		return l
	}
	return "warn"
}
