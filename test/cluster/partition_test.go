package cluster

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/record"
)

// TestNetworkPartitionAndZombieLeader is issue 18's pauses and network
// partitions, on three brokers each in a network namespace of its own
// (netLab), with acks=all producers writing all along:
//
//  1. The leader of an RF=3 partition is cut off from both followers while
//     clients still reach it. The two others elect a leader and the
//     producers go on there; the cut-off broker acknowledges no acks=all
//     write and, once it has stepped down, answers NOT_LEADER_OR_FOLLOWER
//     (no split brain). Then the network heals.
//  2. The leader is paused with SIGSTOP (a zombie) for longer than the
//     election and session timeouts; the others take over; it is
//     continued with SIGCONT and rejoins as a follower.
//
// The checker then finds every acknowledged record once, at one offset, in
// producer order, and every replica identical up to the high watermark.
func TestNetworkPartitionAndZombieLeader(t *testing.T) {
	lab := newNetLab(t, 3)
	c := startClusterIn(t, lab, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const topic = "split"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create rf 3: %v %v", err, r.Err)
	}
	c.waitLeader(adm, topic, 3, -1)
	// 500 records a second per producer: the faults, not the volume, are
	// what is tested, and the checker reads every record back.
	load := c.startPacedLoad(topic, 4, 500, time.Second)

	// 1. The leader cut off from its majority.
	lead := c.waitLeader(adm, topic, 3, -1)
	victim := c.nodes[lead-1]
	var majority []*node
	for _, nd := range c.nodes {
		if nd != victim {
			majority = append(majority, nd)
			lab.cut(int(lead), int(nd.id))
		}
	}
	cutAt := time.Now()
	madm := c.admin(majority[0].kafka)
	md, err := madm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	id := md.Topics[topic].ID
	// At once, while it may still believe it leads: the write is appended
	// there but cannot commit without a majority.
	direct := c.direct(victim.kafka)
	early := produceOne(ctx, direct, topic, id, "cut-off-early")
	if early == nil {
		t.Fatalf("broker %d, just cut off from its majority, acknowledged an acks=all write", lead)
	}
	newLead := c.waitLeader(madm, topic, 2, lead)
	waitFor(t, time.Minute, "acks=all acknowledgements on the majority's side", func() error {
		if !load.got.since(cutAt.Add(3 * time.Second)) {
			return fmt.Errorf("no acknowledgement since the cut")
		}
		return nil
	})
	attempts := 0
	waitFor(t, 30*time.Second, "the cut-off broker refusing writes as a non-leader", func() error {
		attempts++
		err := produceOne(ctx, direct, topic, id, fmt.Sprintf("cut-off-%d", attempts))
		if err == nil {
			t.Fatalf("broker %d, cut off from its majority, acknowledged an acks=all write", lead)
		}
		if !errors.Is(err, kerr.NotLeaderForPartition) {
			return err
		}
		return nil
	})
	t.Logf("cut broker %d off: broker %d leads on the majority's side; the cut-off broker refused an acks=all write at once (%v), then %d more", lead, newLead, early, attempts)
	for _, nd := range majority {
		lab.heal(int(lead), int(nd.id))
	}
	c.waitLeader(adm, topic, 3, -1)

	// 2. The zombie leader.
	lead = c.waitLeader(adm, topic, 3, -1)
	victim = c.nodes[lead-1]
	other := c.nodes[lead%3]
	load.got.resetGap()
	pausedAt := time.Now()
	victim.proc.Pause(t)
	newLead = c.waitLeader(c.admin(other.kafka), topic, 2, lead)
	waitFor(t, time.Minute, "acks=all acknowledgements while the leader is paused", func() error {
		if !load.got.since(pausedAt.Add(time.Second)) {
			return fmt.Errorf("no acknowledgement since the pause")
		}
		return nil
	})
	paused := time.Since(pausedAt)
	victim.proc.Resume(t)
	c.waitLeader(adm, topic, 3, -1)
	// The producers' pause is their own request timeout: a paused broker
	// keeps its connections open, so franz-go waits out its produce timeout
	// plus overhead (10 s + 10 s) before it retries at the new leader, as
	// a Java client waits out request.timeout.ms.
	t.Logf("paused leader %d for %v: broker %d took over; acknowledgements paused at most %v", lead, paused, newLead, load.got.gap())

	load.finish()
	c.checkReplicated(topic, load.got)
}

// produceOne sends one acks=all record to partition 0 of topic at the
// broker b alone, and returns the partition's error (nil when it was
// acknowledged).
func produceOne(ctx context.Context, b *kgo.Broker, topic string, id [16]byte, value string) error {
	batch, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, BaseTimestamp: time.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []record.Record{{Value: []byte(value)}})
	if err != nil {
		return err
	}
	req := kmsg.NewPtrProduceRequest()
	req.Acks, req.TimeoutMillis = -1, 2000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic, rt.TopicID = topic, id // the client picks the version: v13+ names topics by id
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = batch
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := req.RequestWith(rctx, b)
	if err != nil {
		return err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return fmt.Errorf("produce response with %d topics", len(resp.Topics))
	}
	return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
}
