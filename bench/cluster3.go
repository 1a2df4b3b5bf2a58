package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// cluster-3: three `strom serve` nodes on this machine forming one cluster
// (every node broker and controller, the metadata quorum on etcd raft),
// measured for what the quorum costs: topic creations committed through it,
// all-topics Metadata with ManyPartitions partitions spread over the nodes,
// and the time from kill -9 of the active controller to the next accepted
// metadata change.

const (
	// clusterCreateWorkers CreateTopics requests of one topic each are in
	// flight at once.
	clusterCreateWorkers = 16
	clusterWaitTimeout   = time.Minute
)

// clusterNode is one node: its Server (replaced at a restart) and its
// fixed controller listener.
type clusterNode struct {
	id   int
	ctrl string
	http string // its HTTP listener (/metrics), "" when off
	srv  *Server
}

// listening is a Kind's Ready for a cluster node: its Kafka listener
// answers ApiVersions (Metadata lists no broker until a quorum forms,
// which needs the nodes started after it).
func listening(addr string, timeout time.Duration) error {
	conn, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(timeout)); err != nil {
		return err
	}
	versions := kmsg.NewPtrApiVersionsRequest()
	versions.SetVersion(0)
	vr := kmsg.NewPtrApiVersionsResponse()
	if err := roundTrip(conn, versions, vr, 1); err != nil {
		return fmt.Errorf("ApiVersions: %w", err)
	}
	return kerr.ErrorForCode(vr.ErrorCode)
}

// startCluster3 starts three nodes, each with the extra arguments, and
// waits until every one lists all three brokers and a controller.
func startCluster3(ctx context.Context, e *Env, extra ...string) ([]*clusterNode, error) {
	return startCluster3With(ctx, e, false, extra...)
}

// startCluster3With is startCluster3 with each node's HTTP listener on
// (its /metrics; the console is not opened) when withHTTP is set.
func startCluster3With(ctx context.Context, e *Env, withHTTP bool, extra ...string) ([]*clusterNode, error) {
	var nodes []*clusterNode
	var voters []string
	for i := 1; i <= 3; i++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		n := &clusterNode{id: i, ctrl: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
		if withHTTP {
			if port, err = freePort(); err != nil {
				return nil, err
			}
			n.http = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		}
		nodes = append(nodes, n)
		voters = append(voters, fmt.Sprintf("%d@%s", i, n.ctrl))
	}
	for _, n := range nodes {
		httpAddr := cmp.Or(n.http, "-")
		kind := Kind{Name: Strom.Name, Protocol: Kafka, Ready: listening, Args: func(addr, dataDir string) []string {
			return append([]string{"serve", "--data-dir", dataDir, "--kafka-addr", addr, "--advertised-addr", addr, "--http-addr", httpAddr,
				"--node-id", strconv.Itoa(n.id), "--controller-quorum-voters", strings.Join(voters, ","), "--controller-addr", n.ctrl}, extra...)
		}}
		s, err := e.Start(ctx, kind)
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", n.id, err)
		}
		n.srv = s
	}
	for _, n := range nodes {
		if _, err := waitClusterBrokers(ctx, n.srv.Addr, 3); err != nil {
			return nil, fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	return nodes, nil
}

// waitClusterBrokers polls Metadata at addr until it lists want brokers and
// a controller, and returns the controller.
func waitClusterBrokers(ctx context.Context, addr string, want int) (int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return -1, err
	}
	defer cl.Close()
	deadline := time.Now().Add(clusterWaitTimeout)
	var last string
	for time.Now().Before(deadline) {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		resp, err := cl.SeedBrokers()[0].Request(rctx, kmsg.NewPtrMetadataRequest())
		cancel()
		if err == nil {
			m := resp.(*kmsg.MetadataResponse)
			if len(m.Brokers) == want && m.ControllerID >= 0 {
				return m.ControllerID, nil
			}
			last = fmt.Sprintf("%d brokers, controller %d", len(m.Brokers), m.ControllerID)
		} else {
			last = err.Error()
		}
		if ctx.Err() != nil {
			return -1, ctx.Err()
		}
		time.Sleep(20 * time.Millisecond) // polling the cluster's state
	}
	return -1, fmt.Errorf("%s does not list %d brokers and a controller within %v: %s", addr, want, clusterWaitTimeout, last)
}

// createOne sends one CreateTopics of one topic of one partition to the
// broker b and returns its outcome.
func createOne(ctx context.Context, b *kgo.Broker, topic string) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, 1, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := b.Request(ctx, req)
	if err != nil {
		return err
	}
	r := resp.(*kmsg.CreateTopicsResponse)
	if len(r.Topics) != 1 {
		return errors.New("CreateTopics: no topic in the answer")
	}
	return kerr.ErrorForCode(r.Topics[0].ErrorCode)
}

func runCluster3(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("Three strom serve nodes on this machine, each broker and controller (--node-id, --controller-quorum-voters, --controller-addr on loopback), started one after another; measured once all three list three brokers and a controller.")
	nodes, err := startCluster3(ctx, e)
	if err != nil {
		return err
	}

	// Topic creations through the quorum.
	topics := cfg.ClusterTopics
	e.Notef("Topic creations: %d CreateTopics requests of one topic (one partition, replication factor 1) each, %d in flight, each worker on its own connection to one node, the workers spread over the three nodes (any node proposes to the quorum; each answer waits until the creation is committed and applied on that node); one metadata record per topic.", topics, clusterCreateWorkers)
	// One connection per worker: a connection's requests are answered in
	// order, so workers sharing one would wait for each other's commits.
	var bs []*kgo.Broker
	for w := 0; w < clusterCreateWorkers; w++ {
		cl, err := kgo.NewClient(kgo.SeedBrokers(nodes[w%len(nodes)].srv.Addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		bs = append(bs, cl.SeedBrokers()[0])
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, clusterCreateWorkers)
	start := time.Now()
	for w := 0; w < clusterCreateWorkers; w++ {
		wg.Add(1)
		b := bs[w]
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= topics {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
				err := createOne(rctx, b, fmt.Sprintf("quorum-%04d", i))
				cancel()
				if err != nil {
					errs <- fmt.Errorf("create quorum-%04d: %w", i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	e.Figure(Figure{Name: "strom quorum topic creations", Value: float64(topics) / took.Seconds(), Unit: "records/s",
		Note: fmt.Sprintf("%d topics in %v, %d in flight", topics, took.Round(time.Millisecond), clusterCreateWorkers)})

	// Metadata with many partitions.
	ts := topicSet{Prefix: "many", Partitions: cfg.ManyPartitions}
	e.Notef("Metadata: %s, through a kadm client of the three nodes; then, once node 1 lists every partition with a leader, %d all-topics Metadata requests to node 1, one at a time after 3 untimed, each timed from the call to kgo's return.", ts.describe(), cfg.MetadataRequests)
	acl, err := kgo.NewClient(kgo.SeedBrokers(nodes[0].srv.Addr, nodes[1].srv.Addr, nodes[2].srv.Addr))
	if err != nil {
		return err
	}
	defer acl.Close()
	start = time.Now()
	if err := ts.create(ctx, kadm.NewClient(acl), nil); err != nil {
		return fmt.Errorf("create %d partitions: %w", ts.Partitions, err)
	}
	created := time.Since(start)
	b := bs[0]
	deadline := time.Now().Add(visibleTimeout)
	var bytes int
	for {
		resp, err := b.Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		m := resp.(*kmsg.MetadataResponse)
		if ts.served(m) >= ts.Partitions {
			bytes = len(m.AppendTo(nil))
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node 1 lists %d of %d partitions led after %v", ts.served(m), ts.Partitions, visibleTimeout)
		}
		time.Sleep(50 * time.Millisecond) // polling the cluster's state
	}
	visible := time.Since(start)
	var lat []time.Duration
	for i := 0; i < cfg.MetadataRequests+3; i++ {
		t0 := time.Now()
		resp, err := b.Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		if n := ts.served(resp.(*kmsg.MetadataResponse)); n < ts.Partitions {
			return fmt.Errorf("metadata lists %d of %d partitions", n, ts.Partitions)
		}
		if i >= 3 {
			lat = append(lat, time.Since(t0))
		}
	}
	l := sortLatencies(lat)
	e.Figure(Figure{Name: "strom 3-node metadata p99", Value: ms(l.q(0.99)), Unit: "ms", Versus: "limit 20 ms", Ratio: float64(l.q(0.99)) / float64(metadataManyLimit), Goal: AtMost,
		Note: fmt.Sprintf("%d partitions on 3 nodes, %s response; %s; created in %v, all led on node 1 after %v",
			ts.Partitions, FormatSize(int64(bytes)), l.summary(), created.Round(time.Millisecond), visible.Round(time.Millisecond))})

	// Controller failover.
	runs := cfg.Runs
	e.Notef("Failover: %d times, the active controller (Metadata's ControllerID) is killed with SIGKILL, then a CreateTopics of one topic is sent directly to a surviving node every 10 ms (each attempt within 1 s) until one is accepted; the time from the kill to that answer, median. The killed node is restarted on its data and rejoins before the next run.", runs)
	var failovers []time.Duration
	for run := 0; run < runs; run++ {
		ctl, err := waitClusterBrokers(ctx, nodes[0].srv.Addr, 3)
		if err != nil {
			return err
		}
		victim := nodes[ctl-1]
		survivor := nodes[int(ctl)%3]
		scl, err := kgo.NewClient(kgo.SeedBrokers(survivor.srv.Addr))
		if err != nil {
			return err
		}
		sb := scl.SeedBrokers()[0]
		// Connected before the kill, so the timing has no dial in it.
		if _, err := sb.Request(ctx, kmsg.NewPtrApiVersionsRequest()); err != nil {
			scl.Close()
			return fmt.Errorf("node %d: %w", survivor.id, err)
		}
		e.running = slices.DeleteFunc(e.running, func(r *Server) bool { return r == victim.srv })
		t0 := time.Now()
		victim.srv.kill()
		var lastErr error
		for {
			rctx, cancel := context.WithTimeout(ctx, time.Second)
			lastErr = createOne(rctx, sb, fmt.Sprintf("failover-%d", run))
			cancel()
			if lastErr == nil || errors.Is(lastErr, kerr.TopicAlreadyExists) {
				break
			}
			if time.Since(t0) > clusterWaitTimeout {
				scl.Close()
				return fmt.Errorf("run %d: no metadata change accepted within %v of killing node %d: %w", run, clusterWaitTimeout, ctl, lastErr)
			}
			time.Sleep(10 * time.Millisecond)
		}
		took := time.Since(t0)
		scl.Close()
		failovers = append(failovers, took)
		e.Logf("failover %d: controller %d killed, a topic created through node %d after %v", run+1, ctl, survivor.id, took.Round(time.Millisecond))
		srv, err := e.startOn(ctx, victim.srv.kind, victim.srv.prog, victim.srv.DataDir)
		if err != nil {
			return fmt.Errorf("restart node %d: %w", victim.id, err)
		}
		victim.srv = srv
		if _, err := waitClusterBrokers(ctx, srv.Addr, 3); err != nil {
			return err
		}
	}
	f := sortLatencies(failovers)
	e.Figure(Figure{Name: "strom controller failover", Value: ms(f.q(0.5)), Unit: "ms",
		Note: fmt.Sprintf("median of %d: kill -9 of the controller to the next accepted CreateTopics; min %.0f, max %.0f ms (raft election timeout 1 s, PreVote and CheckQuorum)", len(failovers), ms(f[0]), ms(f.max()))})
	for _, n := range nodes {
		if err := e.Stop(n.srv); err != nil {
			return fmt.Errorf("node %d: %w", n.id, err)
		}
	}
	return nil
}
