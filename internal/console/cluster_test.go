package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/console"
	"github.com/stromhq/strom/internal/testutil"
)

// freeAddr is a loopback address nothing listens on now (a controller
// listener must be known to every node before any starts).
func freeAddr(t *testing.T) string {
	t.Helper()
	port, err := testutil.FreeLoopbackPort()
	if err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
}

// inProcessCluster starts n KRaft nodes (broker and controller each) in
// this process, as the tutorial's server.properties describe them, and
// waits until every node lists all n brokers. stop(i) shuts node i+1 down
// early; the rest are shut down at the test's end.
type inProcessCluster struct {
	t      *testing.T
	kafka  []string
	nodes  []*broker.Broker
	closed []bool
}

func startInProcessCluster(t *testing.T, n int) *inProcessCluster {
	t.Helper()
	c := &inProcessCluster{t: t, closed: make([]bool, n)}
	var voters, ctrls []string
	for i := 1; i <= n; i++ {
		c.kafka = append(c.kafka, freeAddr(t))
		ctrls = append(ctrls, freeAddr(t))
		voters = append(voters, fmt.Sprintf("%d@%s", i, ctrls[i-1]))
	}
	root := t.TempDir()
	c.nodes = make([]*broker.Broker, n)
	errs := make(chan error, n)
	for i := range n {
		go func() {
			b, err := broker.Start(broker.Config{
				DataDir: filepath.Join(root, fmt.Sprint("node", i+1)), KafkaAddr: c.kafka[i], AdvertisedAddr: c.kafka[i], HTTPAddr: "-",
				Logger: slog.New(slog.DiscardHandler),
				Props: map[string]string{
					"process.roles":                            "broker,controller",
					"node.id":                                  fmt.Sprint(i + 1),
					"controller.quorum.voters":                 strings.Join(voters, ","),
					"listeners":                                "PLAINTEXT://" + c.kafka[i] + ",CONTROLLER://" + ctrls[i],
					"advertised.listeners":                     "PLAINTEXT://" + c.kafka[i],
					"controller.listener.names":                "CONTROLLER",
					"inter.broker.listener.name":               "PLAINTEXT",
					"listener.security.protocol.map":           "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
					"broker.session.timeout.ms":                "1500",
					"broker.heartbeat.interval.ms":             "300",
					"replica.lag.time.max.ms":                  "2000",
					"offsets.topic.replication.factor":         "3",
					"transaction.state.log.replication.factor": "3",
				},
			})
			c.nodes[i] = b
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatalf("start node: %v", err)
		}
	}
	t.Cleanup(func() {
		for i, b := range c.nodes {
			if b != nil && !c.closed[i] {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				b.Shutdown(ctx)
				cancel()
			}
		}
	})
	adm := c.admin(0)
	want := make([]int32, n)
	for i := range want {
		want[i] = int32(i + 1)
	}
	eventually(t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx)
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
	return c
}

func (c *inProcessCluster) admin(i int) *kadm.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[i]))
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func (c *inProcessCluster) stop(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.closed[i] = true
	if err := c.nodes[i].Shutdown(ctx); err != nil {
		c.t.Errorf("stop node %d: %v", i+1, err)
	}
}

// TestClusterStatusThreeBrokers (issues 17, 18): against three KRaft nodes
// the cluster page lists the three brokers with the controller marked, the
// quorum as DescribeQuorum tells it (leader, epoch, high watermark, three
// voters caught up), and a replicated topic's partitions with leader,
// leader epoch, three replicas all in sync. When a follower stops, its
// partitions show as under-replicated (ISR shrinks to two, on the cluster
// page with their topic and on the topic page), the broker as missing,
// and its voter falls behind the quorum's high watermark.
func TestClusterStatusThreeBrokers(t *testing.T) {
	if testing.Short() {
		t.Skip("three brokers: skipped with -short")
	}
	t.Parallel()
	c := startInProcessCluster(t, 3)
	e := newEnvAt(t, c.kafka[0])
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const topic = "replicated"
	if _, err := c.admin(0).CreateTopic(ctx, 3, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	var d console.TopicDetailJSON
	eventually(t, 30*time.Second, func() error {
		d = console.TopicDetailJSON{}
		if s := e.do("GET", "/api/v1/topics/"+topic, nil, &d); s != 200 {
			return fmt.Errorf("status %d", s)
		}
		if len(d.PartitionsDetail) != 3 {
			return fmt.Errorf("partitions %+v", d.PartitionsDetail)
		}
		for _, p := range d.PartitionsDetail {
			if p.Leader < 1 || len(p.Replicas) != 3 || len(p.ISR) != 3 || p.UnderReplicated {
				return fmt.Errorf("partition %+v not led with three in sync", p)
			}
		}
		return nil
	})
	if d.UnderReplicated != 0 || d.Offline != 0 || d.PartitionsDetail[0].LeaderEpoch < 0 {
		t.Fatalf("topic %+v", d)
	}

	var st console.ClusterStatusJSON
	eventually(t, 30*time.Second, func() error {
		st = console.ClusterStatusJSON{}
		if s := e.do("GET", "/api/v1/cluster/status", nil, &st); s != 200 {
			return fmt.Errorf("status %d", s)
		}
		if !st.Quorum.Available || len(st.Quorum.Voters) != 3 {
			return fmt.Errorf("quorum %+v", st.Quorum)
		}
		for _, v := range st.Quorum.Voters {
			if v.LastFetchMs == nil && v.ID != st.Quorum.Leader {
				return fmt.Errorf("voter %d not heard from yet: %+v", v.ID, st.Quorum)
			}
		}
		return nil
	})
	if len(st.Brokers) != 3 || st.Controller < 1 || len(st.UnderReplicated) != 0 || len(st.Offline) != 0 || len(st.MissingBrokers) != 0 {
		t.Fatalf("status %+v", st)
	}
	controllers := 0
	for _, b := range st.Brokers {
		if b.Controller {
			controllers++
			if b.ID != st.Controller {
				t.Errorf("broker %d marked controller, controller is %d", b.ID, st.Controller)
			}
		}
		if b.Port == 0 || b.Host == "" {
			t.Errorf("broker %+v", b)
		}
	}
	if controllers != 1 || st.Quorum.Leader != st.Controller || st.Quorum.Epoch < 1 || st.Quorum.HighWatermark < 1 {
		t.Fatalf("controller and quorum: %+v", st)
	}
	for _, v := range st.Quorum.Voters {
		if v.LogEndOffset < 1 || v.Lag < 0 {
			t.Errorf("voter %+v", v)
		}
	}

	// Stop a broker that is neither the console's nor the quorum leader.
	down := -1
	for i := 1; i < 3; i++ {
		if int32(i+1) != st.Quorum.Leader {
			down = i
			break
		}
	}
	downID := int32(down + 1)
	// A topic of one replica, on the broker about to stop: offline then.
	const solo = "solo"
	creq := kmsg.NewPtrCreateTopicsRequest()
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = solo, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{downID}
	ct.ReplicaAssignment = append(ct.ReplicaAssignment, ra)
	creq.Topics = append(creq.Topics, ct)
	creq.TimeoutMillis = 10000
	cresp, err := creq.RequestWith(ctx, e.cl)
	if err == nil {
		err = kerr.ErrorForCode(cresp.Topics[0].ErrorCode)
	}
	if err != nil {
		t.Fatalf("create %s on broker %d: %v", solo, downID, err)
	}
	eventually(t, 20*time.Second, func() error {
		var d console.TopicDetailJSON
		if s := e.do("GET", "/api/v1/topics/"+solo, nil, &d); s != 200 || len(d.PartitionsDetail) != 1 || d.PartitionsDetail[0].Leader != downID {
			return fmt.Errorf("%s: status %d, %+v", solo, s, d.PartitionsDetail)
		}
		return nil
	})
	c.stop(down)
	// Records keep each partition's log moving: a follower leaves the ISR
	// when it has not reached the leader's log end for
	// replica.lag.time.max.ms, and an idle log's end does not move (Strom's
	// replica tracks reaching the log end, not fetching as Kafka's does).
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.kafka[0]), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	if err != nil {
		t.Fatal(err)
	}
	defer pcl.Close()
	eventually(t, 30*time.Second, func() error {
		for p := range int32(3) {
			pcl.Produce(ctx, &kgo.Record{Partition: p, Value: []byte("v")}, nil)
		}
		st = console.ClusterStatusJSON{}
		if s := e.do("GET", "/api/v1/cluster/status", nil, &st); s != 200 {
			return fmt.Errorf("status %d", s)
		}
		n := 0
		for _, p := range st.UnderReplicated {
			if p.Topic == topic {
				n++
				if len(p.ISR) != 2 || slices.Contains(p.ISR, downID) || len(p.Replicas) != 3 {
					return fmt.Errorf("under-replicated %+v", p)
				}
			}
		}
		if n != 3 || !slices.Equal(st.MissingBrokers, []int32{downID}) || len(st.Brokers) != 2 {
			return fmt.Errorf("with broker %d down: %d of %s under-replicated, missing %v, brokers %v", downID, n, topic, st.MissingBrokers, st.Brokers)
		}
		return nil
	})
	eventually(t, 20*time.Second, func() error {
		st = console.ClusterStatusJSON{}
		e.do("GET", "/api/v1/cluster/status", nil, &st)
		if len(st.Offline) != 1 || st.Offline[0].Topic != solo || st.Offline[0].Leader != -1 || !slices.Equal(st.Offline[0].Replicas, []int32{downID}) {
			return fmt.Errorf("offline %+v, want %s-0 only", st.Offline, solo)
		}
		return nil
	})
	// The overview still answers with a partition that has no leader
	// (before, its ListOffsets shard error made it a 502).
	var ov console.ClusterJSON
	if s := e.do("GET", "/api/v1/cluster", nil, &ov); s != 200 || len(ov.Brokers) != 2 {
		t.Fatalf("overview with %s-0 offline: status %d, %+v", solo, s, ov)
	}
	var sd console.TopicDetailJSON
	e.do("GET", "/api/v1/topics/"+solo, nil, &sd)
	if sd.Offline != 1 || len(sd.PartitionsDetail) != 1 || sd.PartitionsDetail[0].Leader != -1 {
		t.Errorf("topic page of %s: %+v", solo, sd)
	}
	d = console.TopicDetailJSON{}
	e.do("GET", "/api/v1/topics/"+topic, nil, &d)
	if d.UnderReplicated != 3 {
		t.Errorf("topic page: %d under-replicated, want 3: %+v", d.UnderReplicated, d.PartitionsDetail)
	}
	for _, p := range d.PartitionsDetail {
		if !p.UnderReplicated || p.Leader == downID || p.Leader < 1 {
			t.Errorf("partition %+v", p)
		}
	}
	t.Logf("quorum with node %d down: %+v", downID, st.Quorum)
}

// TestClusterStatusSingleNode: a single node is a cluster of one: one
// broker marked controller, and a metadata quorum of one voter that it
// leads.
func TestClusterStatusSingleNode(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	var st console.ClusterStatusJSON
	if s := e.do("GET", "/api/v1/cluster/status", nil, &st); s != 200 {
		t.Fatalf("status %d", s)
	}
	if len(st.Brokers) != 1 || !st.Brokers[0].Controller || st.Partitions < 2 || st.Topics < 1 {
		t.Fatalf("status %+v", st)
	}
	if !st.Quorum.Available || st.Quorum.Error != "" || len(st.Quorum.Voters) != 1 || st.Quorum.Leader != st.Brokers[0].ID || st.Quorum.Voters[0].ID != st.Brokers[0].ID {
		t.Fatalf("quorum %+v", st.Quorum)
	}
	if len(st.UnderReplicated) != 0 || len(st.Offline) != 0 || st.MissingBrokers == nil {
		t.Fatalf("status %+v", st)
	}
	var d console.TopicDetailJSON
	e.do("GET", "/api/v1/topics/"+topic, nil, &d)
	for _, p := range d.PartitionsDetail {
		if p.LeaderEpoch < 0 || p.UnderReplicated || len(p.ISR) != 1 {
			t.Errorf("partition %+v", p)
		}
	}
}
