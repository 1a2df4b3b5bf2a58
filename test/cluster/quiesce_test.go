package cluster

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// quiescedReplicas reads strom_partition_replicas{state="quiesced"} from a
// node's metrics.
func quiescedReplicas(t *testing.T, httpAddr string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^strom_partition_replicas\{state="quiesced"\} (\S+)$`).FindSubmatch(scrape(t, httpAddr))
	if m == nil {
		return -1
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// Many idle RF=3 partitions quiesce (no ticks, no heartbeats); kill -9 of
// the broker leading a third of them must still get each a new leader,
// and writes, within a bound. The session timeout is set far beyond the
// bound, so the metadata's fencing cannot be what wakes the followers:
// the raft transport's lost connection is (internal/cluster/liveness.go).
func TestQuiescedPartitionsFailOver(t *testing.T) {
	const (
		partitions = 90
		bound      = 15 * time.Second
	)
	c := startCluster(t, 3, "broker.session.timeout.ms=60000")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "idle"
	if r, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	c.waitLed(c.nodes[0].kafka, topic, partitions)
	waitFor(t, 90*time.Second, "every replica quiesced", func() error {
		for _, nd := range c.nodes {
			if n := quiescedReplicas(t, nd.http); n != partitions {
				return fmt.Errorf("node %d: %d of %d quiesced", nd.id, n, partitions)
			}
		}
		return nil
	})

	td := c.waitLed(c.nodes[0].kafka, topic, partitions)
	led := map[int32]int{}
	for _, p := range td.Partitions {
		led[p.Leader]++
	}
	victim := c.nodes[0]
	for _, nd := range c.nodes {
		if led[nd.id] > led[victim.id] {
			victim = nd
		}
	}
	var survivors []*node
	var seeds []string
	for _, nd := range c.nodes {
		if nd != victim {
			survivors = append(survivors, nd)
			seeds = append(seeds, nd.kafka)
		}
	}
	t.Logf("killing node %d, leader of %d of %d partitions %v", victim.id, led[victim.id], partitions, led)
	killed := time.Now()
	victim.proc.Kill(t)
	victim.proc = nil

	sadm := c.admin(survivors[0].kafka)
	waitFor(t, bound, "every partition led by a survivor", func() error {
		md, err := sadm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		td := md.Topics[topic]
		if td.Err != nil || len(td.Partitions) != partitions {
			return fmt.Errorf("%v, %d partitions", td.Err, len(td.Partitions))
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 || p.Leader == victim.id {
				return fmt.Errorf("partition %d: leader %d %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
	elected := time.Since(killed)

	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, killed.Add(bound).Sub(time.Now())+5*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, partitions)
	for i := range recs {
		recs[i] = &kgo.Record{Topic: topic, Partition: int32(i), Value: []byte(fmt.Sprintf("after-%d", i))}
	}
	if err := cl.ProduceSync(pctx, recs...).FirstErr(); err != nil {
		t.Fatalf("acks=all produce to every partition after the kill: %v", err)
	}
	took := time.Since(killed)
	t.Logf("node %d killed: every partition led by a survivor after %v, an acks=all record in each after %v", victim.id, elected.Round(time.Millisecond), took.Round(time.Millisecond))
	if took > bound+5*time.Second {
		t.Fatalf("writes to every partition took %v after the kill", took)
	}
	// The survivors quiesce again, with the dead node's replicas behind.
	waitFor(t, 60*time.Second, "the survivors quiesced again", func() error {
		for _, nd := range survivors {
			if n := quiescedReplicas(t, nd.http); n != partitions {
				return fmt.Errorf("node %d: %d of %d quiesced", nd.id, n, partitions)
			}
		}
		return nil
	})

	// The victim restarts: its replicas catch up (the leaders that
	// quiesced without them wake when its node is back) and the whole
	// cluster quiesces again, every partition led.
	c.start(victim)
	c.waitBrokers(survivors[0].kafka, []int32{1, 2, 3})
	restarted := time.Now()
	waitFor(t, 90*time.Second, "every replica quiesced after the restart", func() error {
		for _, nd := range c.nodes {
			if n := quiescedReplicas(t, nd.http); n != partitions {
				return fmt.Errorf("node %d: %d of %d quiesced", nd.id, n, partitions)
			}
		}
		return nil
	})
	t.Logf("node %d restarted: every replica quiesced again after %v", victim.id, time.Since(restarted).Round(time.Millisecond))
	c.waitLed(victim.kafka, topic, partitions)
}
