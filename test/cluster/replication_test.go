package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// partitionState waits until partition 0 of topic has a leader and an ISR
// of want brokers, and returns the leader.
func (c *testCluster) waitLeader(adm *kadm.Client, topic string, isr int, avoid int32) int32 {
	c.t.Helper()
	var lead int32
	waitFor(c.t, 60*time.Second, fmt.Sprintf("%s-0 led with an ISR of %d", topic, isr), func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		md, err := adm.Metadata(ctx, topic)
		if err != nil {
			return err
		}
		p, ok := md.Topics[topic].Partitions[0]
		if !ok || p.Err != nil || p.Leader < 1 || p.Leader == avoid || len(p.ISR) < isr {
			return fmt.Errorf("partition: %+v", p)
		}
		lead = p.Leader
		return nil
	})
	return lead
}

// acked is what the producers were told: per producer, the values
// acknowledged, in the order they were produced.
type acked struct {
	mu     sync.Mutex
	vals   map[int][]string
	last   time.Time     // of the last acknowledgement
	maxGap time.Duration // the longest pause between acknowledgements since resetGap
	count  int
}

func (a *acked) add(prod int, v string) {
	a.mu.Lock()
	a.vals[prod] = append(a.vals[prod], v)
	now := time.Now()
	if !a.last.IsZero() && now.Sub(a.last) > a.maxGap {
		a.maxGap = now.Sub(a.last)
	}
	a.last = now
	a.count++
	a.mu.Unlock()
}

// resetGap starts measuring the longest pause anew; gap returns it.
func (a *acked) resetGap() {
	a.mu.Lock()
	a.maxGap = 0
	a.mu.Unlock()
}

func (a *acked) gap() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxGap
}

func (a *acked) since(t time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last.After(t)
}

// TestReplicationSurvivesLeaderKill is issue 18's property under faults,
// short form: 3 brokers, a topic of replication factor 3, idempotent
// acks=all franz-go producers writing all along; the leader of the
// partition is killed with SIGKILL (then restarted) several times. Every
// acknowledged record is read back exactly once, at one offset, in each
// producer's order; afterwards every replica's log holds the same batches
// at the same offsets up to the high watermark. STROM_REPL_KILLS sets the
// number of kills (the long form); 2 by default.
func TestReplicationSurvivesLeaderKill(t *testing.T) {
	kills := 2
	if v := os.Getenv("STROM_REPL_KILLS"); v != "" {
		kills, _ = strconv.Atoi(v)
	}
	// franz-go refreshes metadata at most every 5 s by default, which
	// bounds how soon a producer finds a new leader;
	// STROM_REPL_METADATA_MIN_AGE (a duration) sets it.
	metadataMinAge := 5 * time.Second
	if v := os.Getenv("STROM_REPL_METADATA_MIN_AGE"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		metadataMinAge = d
	}
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "replicated"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create rf 3: %v %v", err, r.Err)
	}
	c.waitLeader(adm, topic, 3, -1)

	// 1,000 records a second per producer, so that the checker's read-back
	// stays short; the long form (make chaos) runs as long as it likes.
	load := c.startPacedLoad(topic, 4, 1000, metadataMinAge)
	got := load.got
	var failovers []time.Duration
	for k := range kills {
		lead := c.waitLeader(adm, topic, 3, -1)
		victim := c.nodes[lead-1]
		var others []string
		for _, nd := range c.nodes {
			if nd != victim {
				others = append(others, nd.kafka)
			}
		}
		got.resetGap()
		killed := time.Now()
		victim.proc.Kill(t)
		waitFor(t, 60*time.Second, "an acks=all produce after the kill", func() error {
			if !got.since(killed.Add(200 * time.Millisecond)) {
				return fmt.Errorf("no acknowledgement since the kill")
			}
			return nil
		})
		// The producers' outage: the longest pause between two
		// acknowledgements around the kill.
		took := got.gap()
		failovers = append(failovers, took)
		oadm := c.admin(others[0])
		c.waitLeader(oadm, topic, 2, lead)
		c.start(victim)
		c.waitLeader(oadm, topic, 3, -1)
		t.Logf("kill %d: broker %d; acknowledgements paused %v", k+1, lead, took)
	}
	t.Logf("failover: longest pause in acks=all acknowledgements around each kill -9: %v", failovers)

	// SIGTERM of the leader: it hands leadership over before it stops, so
	// another broker leads at once (the metadata names it) and the
	// producers go on.
	lead := c.waitLeader(adm, topic, 3, -1)
	victim := c.nodes[lead-1]
	var other *node
	for _, nd := range c.nodes {
		if nd != victim {
			other = nd
			break
		}
	}
	got.resetGap()
	termed := time.Now()
	victim.proc.Stop(t)
	stopped := time.Since(termed)
	oadm := c.admin(other.kafka)
	waitFor(t, 30*time.Second, "an acks=all produce after the SIGTERM", func() error {
		if !got.since(termed.Add(200 * time.Millisecond)) {
			return fmt.Errorf("no acknowledgement since the SIGTERM")
		}
		return nil
	})
	took := got.gap()
	newLead := c.waitLeader(oadm, topic, 2, lead)
	t.Logf("SIGTERM of leader %d: stopped in %v, broker %d leads, acknowledgements paused %v", lead, stopped, newLead, took)
	c.start(victim)
	c.waitLeader(oadm, topic, 3, -1)

	load.finish()
	c.checkReplicated(topic, got)
}

// replicaLog reads a stopped broker's partition directory: its batches
// below hw, as stored.
func replicaLog(t *testing.T, dir string, hw int64) []byte {
	t.Helper()
	l, err := seglog.Open(vfs.Default, dir, seglog.Config{RetentionMs: -1}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var out []byte
	for off := l.StartOffset(); off < hw; {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("%s: read at %d: %v", dir, off, err)
		}
		if len(res.Data) == 0 {
			t.Fatalf("%s: ends at %d, below the high watermark %d", dir, off, hw)
		}
		for b := res.Data; len(b) > 0 && off < hw; {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b[:h.Size()]...)
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return slices.Clip(out)
}

// TestMinInsyncReplicas: a topic with min.insync.replicas=3 takes acks=all
// writes while all three replicas are in sync; with a follower killed it
// refuses them with NOT_ENOUGH_REPLICAS once the follower has left the
// ISR (replica.lag.time.max.ms=2000 here), acks=1 still works, and acks=all
// works again once the follower is back.
func TestMinInsyncReplicas(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "strict"
	three := "3"
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"min.insync.replicas": &three}, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	lead := c.waitLeader(adm, topic, 3, -1)
	produceOne := func(acks kgo.Acks) error {
		opts := []kgo.Opt{kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(acks),
			kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(5 * time.Second), kgo.MetadataMinAge(250 * time.Millisecond)}
		if acks != kgo.AllISRAcks() {
			opts = append(opts, kgo.DisableIdempotentWrite())
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		defer cl.Close()
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return cl.ProduceSync(pctx, &kgo.Record{Value: []byte("v")}).FirstErr()
	}
	if err := produceOne(kgo.AllISRAcks()); err != nil {
		t.Fatalf("acks=all with a full ISR: %v", err)
	}
	var follower *node
	for _, nd := range c.nodes {
		if nd.id != lead {
			follower = nd
			break
		}
	}
	follower.proc.Kill(t)
	waitFor(t, 30*time.Second, "NOT_ENOUGH_REPLICAS for acks=all", func() error {
		err := produceOne(kgo.AllISRAcks())
		if errors.Is(err, kerr.NotEnoughReplicas) {
			return nil
		}
		return fmt.Errorf("acks=all with a follower down: %v", err)
	})
	if err := produceOne(kgo.LeaderAck()); err != nil {
		t.Fatalf("acks=1 with a follower down: %v", err)
	}
	c.start(follower)
	waitFor(t, 60*time.Second, "acks=all again", func() error { return produceOne(kgo.AllISRAcks()) })
}
