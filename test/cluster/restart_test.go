package cluster

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// TestClusterRollingRestart stops (SIGTERM) and restarts every node in
// turn, waiting for it to rejoin before the next: the metadata survives
// (same topics, ids and partition leaders, a topic config), records are
// all readable and the group's committed offsets are intact.
func TestClusterRollingRestart(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	for _, name := range []string{"alpha", "beta"} {
		if r, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"retention.ms": kadm.StringPtr("123456789")}, name); err != nil || r.Err != nil {
			t.Fatalf("create %s: %v %v", name, err, r.Err)
		}
	}
	before := map[string]kadm.TopicDetail{}
	for _, name := range []string{"alpha", "beta"} {
		before[name] = c.waitLed(c.nodes[1].kafka, name, 3)
	}
	produce(t, c.seeds(), "alpha", "a", 120)
	if got := consumeGroup(t, c.seeds(), "alpha", "rolling", 120); len(got) != 120 {
		t.Fatalf("group read %d, want 120", len(got))
	}
	offsetsBefore := committed(t, adm, "rolling")
	var sum int64
	for _, o := range offsetsBefore {
		sum += o
	}
	if sum != 120 {
		t.Fatalf("committed offsets %v sum to %d, want 120", offsetsBefore, sum)
	}

	for _, nd := range c.nodes {
		nd.proc.Stop(t)
		c.start(nd)
		c.waitBrokers(nd.kafka, []int32{1, 2, 3})
		// Every partition led again before the next node goes.
		for _, name := range []string{"alpha", "beta"} {
			c.waitLed(nd.kafka, name, 3)
		}
	}

	for _, nd := range c.nodes {
		for _, name := range []string{"alpha", "beta"} {
			td := c.waitLed(nd.kafka, name, 3)
			if td.ID != before[name].ID {
				t.Fatalf("%s on broker %d: id %v, was %v", name, nd.id, td.ID, before[name].ID)
			}
			for i, p := range td.Partitions {
				if was := before[name].Partitions[i]; p.Leader != was.Leader {
					t.Fatalf("%s-%d on broker %d: leader %d, was %d", name, i, nd.id, p.Leader, was.Leader)
				}
			}
		}
	}
	cfgs, err := c.admin(c.nodes[2].kafka).DescribeTopicConfigs(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := cfgs.On("beta", nil); err != nil || !hasConfig(v.Configs, "retention.ms", "123456789") {
		t.Fatalf("beta's retention.ms after the restarts: %v %+v", err, v)
	}
	adm2 := c.admin(c.nodes[2].kafka)
	var offsetsAfter map[string]int64
	waitFor(t, 20*time.Second, "committed offsets readable", func() error {
		offs, err := adm2.FetchOffsets(ctx, "rolling")
		if err != nil || offs.Error() != nil {
			return fmt.Errorf("%v %v", err, offs.Error())
		}
		offsetsAfter = offsetsOf(offs)
		return nil
	})
	if !maps.Equal(offsetsAfter, offsetsBefore) {
		t.Fatalf("committed offsets %v after the restarts, %v before", offsetsAfter, offsetsBefore)
	}
	if got := consumeAll(t, c.seeds(), "alpha", 120); len(got) != 120 {
		t.Fatalf("read %d records after the restarts, want 120", len(got))
	}
}

func committed(t *testing.T, adm *kadm.Client, group string) map[string]int64 {
	t.Helper()
	offs, err := adm.FetchOffsets(context.Background(), group)
	if err != nil || offs.Error() != nil {
		t.Fatalf("fetch offsets: %v %v", err, offs.Error())
	}
	return offsetsOf(offs)
}

func offsetsOf(offs kadm.OffsetResponses) map[string]int64 {
	out := map[string]int64{}
	offs.Each(func(o kadm.OffsetResponse) { out[fmt.Sprintf("%s-%d", o.Topic, o.Partition)] = o.At })
	return out
}

func hasConfig(cs []kadm.Config, key, value string) bool {
	for _, c := range cs {
		if c.Key == key && c.Value != nil && *c.Value == value {
			return true
		}
	}
	return false
}

// TestWholeClusterKilledAfterCreate kills every node with SIGKILL right
// after a replicated topic was created and written to, and starts them
// again. A node's metadata commit index on disk lags its log, so a
// restarted node's view may lack the topic for a moment; before, such a
// node set its replica's directory aside as claimed by no topic, the
// replica came back empty and its group refused it for good. Now every
// record is read back, every replica rejoins the ISR, and no directory
// is set aside.
func TestWholeClusterKilledAfterCreate(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "fresh"
	if r, err := adm.CreateTopic(ctx, 2, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	c.waitLed(c.nodes[0].kafka, topic, 2)
	produce(t, c.seeds(), topic, "f", 60)
	for _, nd := range c.nodes {
		nd.proc.Kill(t)
	}
	for _, nd := range c.nodes {
		c.start(nd)
	}
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	c.waitAllLed(c.admin(c.nodes[1].kafka), topic, 3, -1)
	if got := consumeAll(t, c.seeds(), topic, 60); len(got) != 60 {
		t.Fatalf("read %d records after the kill, want 60", len(got))
	}
	for _, nd := range c.nodes {
		strays, err := filepath.Glob(filepath.Join(nd.dir, "*-stray"))
		if err != nil || len(strays) > 0 {
			t.Fatalf("node %d set aside %v (%v)", nd.id, strays, err)
		}
	}
}
