package cluster

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestClusterFiveNodes: five nodes; a topic created through one broker,
// produced through all and consumed through each single broker; then two
// nodes, the active controller among them, are killed with SIGKILL: the
// other three (a majority) elect a controller, fence the dead, create a
// topic and produce and consume on.
func TestClusterFiveNodes(t *testing.T) {
	c := startCluster(t, 5)
	all := []int32{1, 2, 3, 4, 5}
	md := c.waitBrokers(c.nodes[4].kafka, all)
	ctx := context.Background()
	if r, err := c.admin(c.nodes[2].kafka).CreateTopic(ctx, 5, 1, nil, "five"); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	c.waitLed(c.nodes[0].kafka, "five", 5)
	produce(t, c.seeds(), "five", "f", 250)
	for _, nd := range c.nodes {
		// Bootstrapped from one broker, the client finds every leader.
		if got := consumeAll(t, []string{nd.kafka}, "five", 250); len(got) != 250 {
			t.Fatalf("through broker %d: read %d records, want 250", nd.id, len(got))
		}
	}

	// Kill the controller and one more node.
	ctl := md.Controller
	victims := []int32{ctl, ctl%5 + 1}
	for _, id := range victims {
		c.nodes[id-1].proc.Kill(t)
	}
	var alive []*node
	var aliveIDs []int32
	for _, nd := range c.nodes {
		if !slices.Contains(victims, nd.id) {
			alive = append(alive, nd)
			aliveIDs = append(aliveIDs, nd.id)
		}
	}
	direct := c.direct(alive[0].kafka)
	took := waitFor(t, 30*time.Second, "a new controller among the three", func() error {
		ctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		resp, err := direct.Request(ctx, kmsg.NewPtrMetadataRequest())
		if err != nil {
			return err
		}
		if ctl := resp.(*kmsg.MetadataResponse).ControllerID; !slices.Contains(aliveIDs, ctl) {
			return fmt.Errorf("controller %d", ctl)
		}
		return nil
	})
	t.Logf("controller %d and node %d killed; a new controller in %v", victims[0], victims[1], took)
	c.waitBrokers(alive[1].kafka, aliveIDs)
	var seeds []string
	for _, nd := range alive {
		seeds = append(seeds, nd.kafka)
	}
	if r, err := c.admin(alive[2].kafka).CreateTopic(ctx, 3, 1, nil, "three"); err != nil || r.Err != nil {
		t.Fatalf("create with two nodes down: %v %v", err, r.Err)
	}
	c.waitLed(alive[0].kafka, "three", 3)
	produce(t, seeds, "three", "t", 90)
	for _, nd := range alive {
		if got := consumeAll(t, []string{nd.kafka}, "three", 90); len(got) != 90 {
			t.Fatalf("through broker %d: read %d records, want 90", nd.id, len(got))
		}
	}
}

// waitLed waits until the node at addr lists topic with n partitions, each
// with a live leader.
func (c *testCluster) waitLed(addr, topic string, n int) kadm.TopicDetail {
	c.t.Helper()
	adm := c.admin(addr)
	var td kadm.TopicDetail
	waitFor(c.t, 20*time.Second, fmt.Sprintf("%s: %d partitions of %s led", addr, n, topic), func() error {
		md, err := adm.Metadata(context.Background(), topic)
		if err != nil {
			return err
		}
		td = md.Topics[topic]
		if td.Err != nil || len(td.Partitions) != n {
			return fmt.Errorf("%v, %d partitions", td.Err, len(td.Partitions))
		}
		for _, p := range td.Partitions {
			if p.Err != nil || p.Leader < 0 {
				return fmt.Errorf("partition %d: leader %d %v", p.Partition, p.Leader, p.Err)
			}
		}
		return nil
	})
	return td
}
