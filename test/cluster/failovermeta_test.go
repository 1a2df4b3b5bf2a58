package cluster

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMetadataAfterLeaderKill: right after a leader's broker is killed,
// the survivors' Metadata answers name the new leaders, never the dead
// one, because an answer is held while a partition it lists is between
// leaders (cluster.FailingOver); so a franz-go producer with its default
// MetadataMinAge (5 s), whose first refresh after the kill comes within
// milliseconds, is going again within about an election rather than after
// its 5 s wait. Before, the survivors named the dead leader for the half
// second the election and its record took, and the producer stalled 5 s.
func TestMetadataAfterLeaderKill(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	const topic, partitions = "failmeta", 6
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	create := kmsg.NewPtrCreateTopicsRequest()
	create.TimeoutMillis = 30000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, 3
	create.Topics = append(create.Topics, rt)
	if resp, err := c.direct(c.nodes[0].kafka).Request(ctx, create); err != nil || resp.(*kmsg.CreateTopicsResponse).Topics[0].ErrorCode != 0 {
		t.Fatalf("create: %v %+v", err, resp)
	}

	// Every partition led with a full ISR (the fast election wants its
	// followers caught up); the victim is partition 0's leader.
	mdReq := func() *kmsg.MetadataRequest {
		r := kmsg.NewPtrMetadataRequest()
		mt := kmsg.NewMetadataRequestTopic()
		name := topic
		mt.Topic = &name
		r.Topics = append(r.Topics, mt)
		return r
	}
	leaders := func(b *kgo.Broker) (map[int32]int32, error) {
		resp, err := b.Request(ctx, mdReq())
		if err != nil {
			return nil, err
		}
		md := resp.(*kmsg.MetadataResponse)
		if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
			return nil, fmt.Errorf("topic: %+v", md.Topics)
		}
		out := map[int32]int32{}
		for _, p := range md.Topics[0].Partitions {
			if p.ErrorCode != 0 || len(p.ISR) != 3 {
				return nil, fmt.Errorf("partition %d: error %d, leader %d, ISR %v", p.Partition, p.ErrorCode, p.Leader, p.ISR)
			}
			out[p.Partition] = p.Leader
		}
		return out, nil
	}
	var before map[int32]int32
	waitFor(t, 60*time.Second, "every partition led with a full ISR", func() (err error) {
		before, err = leaders(c.direct(c.nodes[0].kafka))
		return err
	})
	// The nodes' replication metrics: every partition led once, none
	// under-replicated, the creation's elections counted.
	if got := metricSum(t, c.nodes, "strom_partition_leaders"); got < partitions {
		t.Fatalf("strom_partition_leaders sums to %v over the nodes, want at least %d", got, partitions)
	}
	if got := metricSum(t, c.nodes, "strom_partitions_under_replicated"); got != 0 {
		t.Fatalf("strom_partitions_under_replicated sums to %v with every ISR full", got)
	}
	if got := metricSum(t, c.nodes, "strom_partition_leaderships_total"); got < partitions {
		t.Fatalf("strom_partition_leaderships_total sums to %v, want at least %d", got, partitions)
	}
	victim := before[0]
	var led []int32 // the partitions the victim leads
	for p, l := range before {
		if l == victim {
			led = append(led, p)
		}
	}
	var survivor *node
	for _, nd := range c.nodes {
		if nd.id != victim {
			survivor = nd
			break
		}
	}
	asker := c.direct(survivor.kafka)
	if _, err := leaders(asker); err != nil { // connected before the kill
		t.Fatal(err)
	}

	// The producer: franz-go's defaults (MetadataMinAge 5 s), seeded
	// with every node, warmed up on the victim's partitions.
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordPartitioner(kgo.ManualPartitioner())}, c.clientOpts...)...)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	records := func(tag string) []*kgo.Record {
		var out []*kgo.Record
		for _, p := range led {
			out = append(out, &kgo.Record{Partition: p, Value: []byte(tag)})
		}
		return out
	}
	if err := cl.ProduceSync(ctx, records("before")...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	// A producer that has run a while: its last metadata load is older
	// than its MetadataMinAge, so the refresh that its first failed
	// produce after the kill asks for is made at once (a younger one is
	// made only when the age is reached, whatever any broker says). The
	// wait is the client's timer, not the cluster's state.
	time.Sleep(5500 * time.Millisecond)

	for _, nd := range c.nodes {
		if nd.id == victim {
			nd.proc.Kill(t)
		}
	}
	killed := time.Now()
	type result struct {
		took time.Duration
		err  error
	}
	produced := make(chan result, 1)
	go func() {
		err := cl.ProduceSync(ctx, records("after")...).FirstErr()
		produced <- result{time.Since(killed), err}
	}()

	// Metadata from a survivor, one request after another, until it
	// names new leaders for all the victim's partitions. An answer to a
	// request sent 250 ms or more after the kill (the survivor has seen
	// the victim's connection close by then: it closes with the process)
	// never names the victim.
	for {
		sent := time.Since(killed)
		resp, err := asker.Request(ctx, mdReq())
		if err != nil {
			t.Fatal(err)
		}
		took := time.Since(killed) - sent
		md := resp.(*kmsg.MetadataResponse)
		onVictim, moved := 0, 0
		for _, p := range md.Topics[0].Partitions {
			switch {
			case p.Leader == victim:
				onVictim++
			case p.Leader >= 0 && before[p.Partition] == victim:
				moved++
			}
		}
		if onVictim > 0 && sent >= 250*time.Millisecond {
			t.Fatalf("a Metadata request sent %v after the kill of node %d was answered in %v naming it the leader of %d partitions", sent.Round(time.Millisecond), victim, took.Round(time.Millisecond), onVictim)
		}
		if took > 4*time.Second {
			t.Fatalf("a Metadata request sent %v after the kill was held %v", sent.Round(time.Millisecond), took.Round(time.Millisecond))
		}
		if moved == len(led) {
			t.Logf("node %d killed; a Metadata request sent %v later was answered in %v naming the new leaders of its %d partitions", victim, sent.Round(time.Millisecond), took.Round(time.Millisecond), len(led))
			break
		}
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("30 s after the kill: %d partitions still on node %d, %d moved of %d", onVictim, victim, moved, len(led))
		}
	}

	// The survivors lead everything, and once the victim left the ISRs
	// (replica.lag.time.max.ms) every partition of the topic is
	// under-replicated; the records written after the kill were
	// committed, with their latency timed (checked after the producer).
	var survivors []*node
	for _, nd := range c.nodes {
		if nd.id != victim {
			survivors = append(survivors, nd)
		}
	}
	waitFor(t, 30*time.Second, "the survivors counting the topic's partitions under-replicated", func() error {
		if got := metricSum(t, survivors, "strom_partitions_under_replicated"); got < partitions {
			return fmt.Errorf("strom_partitions_under_replicated sums to %v", got)
		}
		return nil
	})

	select {
	case r := <-produced:
		if r.err != nil {
			t.Fatalf("produce after the kill: %v", r.err)
		}
		d := r.took
		t.Logf("franz-go producer with its default MetadataMinAge: acknowledged %v after the kill", d.Round(time.Millisecond))
		if d > 4500*time.Millisecond {
			t.Errorf("the producer's records were acknowledged %v after the kill (its metadata age is 5 s: it did not find the new leaders on its first refresh)", d.Round(time.Millisecond))
		}
	case <-ctx.Done():
		t.Fatal("the producer did not finish")
	}
	if got := metricSum(t, survivors, "strom_partition_commit_seconds_count"); got < float64(len(led)) {
		t.Fatalf("strom_partition_commit_seconds_count sums to %v on the survivors, want at least %d", got, len(led))
	}
}

// metricSum is the value of a sample named name (no labels) summed over
// the nodes' /metrics pages.
func metricSum(t *testing.T, nodes []*node, name string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	sum := 0.0
	for _, nd := range nodes {
		m := re.FindSubmatch(scrape(t, nd.http))
		if m == nil {
			t.Fatalf("node %d's /metrics has no %s", nd.id, name)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}
