package cluster

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// dirLatest reads a stopped broker's partition directory from its start:
// the latest value of each key.
func dirLatest(t *testing.T, dir string) map[string]string {
	t.Helper()
	l, err := seglog.Open(vfs.Default, dir, seglog.Config{RetentionMs: -1}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := map[string]string{}
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("%s: read at %d: %v", dir, off, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if !h.IsControl() {
				_, recs, err := record.Records(b[:h.Size()], 64<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					out[string(r.Key)] = string(r.Value)
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}

// consumeLatest reads partition 0 of topic from the start up to its end
// offset (asked of adm) and returns the latest value of each key.
func consumeLatest(t *testing.T, seeds []string, adm *kadm.Client, topic string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	e, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	out := map[string]string{}
	for next := int64(0); next < e.Offset; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed up to %d of %d", next, e.Offset)
		}
		fs.EachRecord(func(r *kgo.Record) {
			out[string(r.Key)] = string(r.Value)
			next = r.Offset + 1
		})
	}
	return out
}

// TestCompactedReplicatedTopic (issue 20 on issue 18's replication): a
// compacted RF=3 topic with small segments gets many updates of few keys.
// Every replica moves its raft anchor above its log start and cleans below
// it, so the partition's on-disk size on every replica stays far below
// what was written and stops growing; after a kill -9 of the leader the new
// leader serves the latest value of every key; and a reassignment to a
// broker that held no replica completes (the new replica gets a snapshot
// carrying the leader's cleaned region) and the new replica holds the
// latest value of every key. Before, a replicated partition was never
// compacted: every replica kept every update.
func TestCompactedReplicatedTopic(t *testing.T) {
	c := startCluster(t, 4, "auto.leader.rebalance.enable=false", "log.cleaner.backoff.ms=200")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3, 4})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "latest"
	policy, seg, ratio := "compact", "8192", "0.1"
	cfg := map[string]*string{"cleanup.policy": &policy, "segment.bytes": &seg, "min.cleanable.dirty.ratio": &ratio}
	if r, err := adm.CreateTopic(ctx, 1, 3, cfg, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	lead := c.waitLeader(adm, topic, 3, -1)
	p, err := partition0(adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	orig := p.Replicas
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.RetryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]string{}
	var written int64
	produce := func(rounds int, tag string) {
		t.Helper()
		for r := range rounds {
			rs := make([]*kgo.Record, 20)
			for k := range rs {
				key, val := fmt.Sprintf("key-%02d", k), fmt.Sprintf("%s-%04d-%s", tag, r, strings.Repeat("v", 200))
				rs[k] = &kgo.Record{Key: []byte(key), Value: []byte(val)}
				want[key] = val
				written += int64(len(key) + len(val))
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	const bound = 96 << 10 // a few segments besides the live keys
	cleaned := func(ids []int32) func() error {
		return func() error {
			for _, id := range ids {
				if n := logBytes(t, filepath.Join(c.nodes[id-1].dir, topic+"-0")); n > bound {
					return fmt.Errorf("broker %d: %d bytes of segments, %d written", id, n, written)
				}
			}
			return nil
		}
	}
	produce(100, "a")
	took := waitFor(t, 60*time.Second, "every replica cleaned", cleaned(orig))
	t.Logf("%d bytes written; every replica within %d bytes %v later", written, bound, took.Round(time.Millisecond))
	produce(100, "b")
	waitFor(t, 60*time.Second, "every replica cleaned again", cleaned(orig))
	for _, id := range orig {
		t.Logf("broker %d: %d bytes of segments after %d bytes written", id, logBytes(t, filepath.Join(c.nodes[id-1].dir, topic+"-0")), written)
	}

	// kill -9 of the leader: the new one serves the latest values.
	victim := c.nodes[lead-1]
	victim.proc.Kill(t)
	var other *node
	for _, id := range orig {
		if id != lead {
			other = c.nodes[id-1]
			break
		}
	}
	oadm := c.admin(other.kafka)
	c.waitLeader(oadm, topic, 2, lead)
	produce(5, "c")
	if got := consumeLatest(t, []string{other.kafka}, oadm, topic); !maps.Equal(got, want) {
		t.Fatalf("after the leader's kill: %d keys, want %d (%v)", len(got), len(want), got)
	}
	c.start(victim)
	c.waitLeader(oadm, topic, 3, -1)

	// A reassignment to the broker that held no replica.
	var added int32
	for _, nd := range c.nodes {
		if !slices.Contains(orig, nd.id) {
			added = nd.id
		}
	}
	target := []int32{added, orig[1], orig[2]}
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, 0, target)
	// Right after the restart the metadata quorum may be electing: a
	// retriable answer (REQUEST_TIMED_OUT, "raft proposal dropped") is
	// asked again, as an operator re-runs the tool; any other fails.
	waitFor(t, 30*time.Second, "the reassignment accepted", func() error {
		res, err := oadm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		var perr error
		res.Each(func(r kadm.AlterPartitionAssignmentsResponse) {
			if r.Err != nil && perr == nil {
				perr = fmt.Errorf("%s-%d: %w: %s", r.Topic, r.Partition, r.Err, r.ErrMessage)
			}
		})
		if perr != nil && !kerr.IsRetriable(perr) {
			t.Fatal(perr)
		}
		return perr
	})
	direct := c.direct(other.kafka)
	waitFor(t, 2*time.Minute, "the reassignment to complete", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(p.Replicas, target) || len(p.ISR) != 3 {
			return fmt.Errorf("replicas %v, ISR %v", p.Replicas, p.ISR)
		}
		return nil
	})
	produce(5, "d")
	ends, err := oadm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	e, _ := ends.Lookup(topic, 0)
	nd := c.nodes[added-1]
	waitReplicaAt(t, nd, topic, 0, e.Offset, 30*time.Second)
	nd.proc.Stop(t)
	nd.proc = nil
	if got := dirLatest(t, filepath.Join(nd.dir, topic+"-0")); !maps.Equal(got, want) {
		t.Fatalf("the new replica: %d keys, want %d (%v)", len(got), len(want), got)
	}
}

// partitionMetricOf is a per-partition metric of partition p of topic on
// nd (its /metrics).
func partitionMetricOf(t *testing.T, nd *node, topic string, p int32, name string) (int64, error) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^strom_` + name + `\{partition="` + strconv.Itoa(int(p)) + `",topic="` + regexp.QuoteMeta(topic) + `"\} (\S+)$`)
	m := re.FindSubmatch(scrape(t, nd.http))
	if m == nil {
		return 0, fmt.Errorf("broker %d: no %s of %s-%d", nd.id, name, topic, p)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return int64(v), err
}

// TestCompactedOffsetsLog: on 3 brokers __consumer_offsets has 3 replicas
// and is compacted on each (segment.bytes made small here): a group
// commits its offsets many times, every replica's offsets log stays far
// below what the commits wrote, and after a kill -9 of the offsets leader
// (the coordinator) the group's offsets at the new one are the last
// committed. Before, the offsets log of a cluster kept every commit.
func TestCompactedOffsetsLog(t *testing.T) {
	const (
		topic, group = "work", "committers"
		commits      = 1500
		bound        = 64 << 10
	)
	c := startCluster(t, 3, "log.cleaner.backoff.ms=200")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	if r, err := adm.CreateTopic(ctx, 3, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	waitFor(t, 30*time.Second, "a coordinator for the group", func() error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return adm.FindGroupCoordinators(cctx, group)[group].Err
	})
	c.waitLeader(adm, OffsetsTopicName, 3, -1)
	seg := "8192"
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "segment.bytes", Value: &seg}}, OffsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != nil {
			t.Fatalf("segment.bytes of %s: %v", OffsetsTopicName, r.Err)
		}
	}
	var last kadm.Offsets
	for i := 1; i <= commits; i++ {
		var offs kadm.Offsets
		for p := range int32(3) {
			offs.AddOffset(topic, p, int64(i)*10+int64(p), -1)
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := adm.CommitOffsets(cctx, group, offs)
		cancel()
		if err != nil || resp.Error() != nil {
			t.Fatalf("commit %d: %v %v", i, err, resp.Error())
		}
		last = offs
	}
	md, err := adm.Metadata(ctx, OffsetsTopicName)
	if err != nil {
		t.Fatal(err)
	}
	op := md.Topics[OffsetsTopicName].Partitions[0]
	var size []int64
	took := waitFor(t, 60*time.Second, "every offsets replica cleaned", func() error {
		size = size[:0]
		for _, id := range op.Replicas {
			n := logBytes(t, filepath.Join(c.nodes[id-1].dir, OffsetsTopicName+"-0"))
			size = append(size, n)
			if n > bound {
				return fmt.Errorf("broker %d: %d bytes of segments", id, n)
			}
		}
		return nil
	})
	t.Logf("%d commits of 3 partitions; offsets log replicas %v at %v bytes, %v after the last commit", commits, op.Replicas, size, took.Round(time.Millisecond))

	victim := c.nodes[op.Leader-1]
	victim.proc.Kill(t)
	var survivors []string
	for _, nd := range c.nodes {
		if nd != victim {
			survivors = append(survivors, nd.kafka)
		}
	}
	waitFor(t, 60*time.Second, "the last commit at the new coordinator", func() error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(survivors...))
		if err != nil {
			return err
		}
		defer cl.Close()
		got, err := committedOffsets(kadm.NewClient(cl), group, topic)
		if err != nil {
			return err
		}
		for p := range int32(3) {
			o, _ := last.Lookup(topic, p)
			if got[p] != o.At {
				return fmt.Errorf("partition %d: %d committed, %d last", p, got[p], o.At)
			}
		}
		return nil
	})
}

// OffsetsTopicName is the group coordinator's internal topic.
const OffsetsTopicName = "__consumer_offsets"
