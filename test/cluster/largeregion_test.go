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
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestReassignLargeCompactedRegion: a compacted RF=3 topic with 1 MiB
// segments holds about 20 MiB below raft's anchor (20,000 keys of 1 KiB,
// each written twice, cleaned), more than the 8 MiB a raft snapshot
// carries inline. A reassignment to the fourth broker completes: the
// leader streams the region to the new replica (raftnet's snapshot
// stream, counted in strom_raft_snapshot_streams_total), whose copy,
// read from its directory once it stops, holds every key's latest value.
// Before streaming, the new replica never caught up and the reassignment
// never completed.
func TestReassignLargeCompactedRegion(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 40 MiB through 4 brokers")
	}
	c := startCluster(t, 4, "auto.leader.rebalance.enable=false", "log.cleaner.backoff.ms=200")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3, 4})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic, keys = "large", 20_000
	policy, seg, ratio := "compact", "1048576", "0.1"
	cfg := map[string]*string{"cleanup.policy": &policy, "segment.bytes": &seg, "min.cleanable.dirty.ratio": &ratio}
	if r, err := adm.CreateTopic(ctx, 1, 3, cfg, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	c.waitLeader(adm, topic, 3, -1)
	p, err := partition0(adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	orig := p.Replicas
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.ProducerBatchMaxBytes(256<<10), kgo.RetryTimeout(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	want := map[string]string{}
	var written int64
	produce := func(tag string) {
		t.Helper()
		for from := 0; from < keys; from += 500 {
			rs := make([]*kgo.Record, 500)
			for i := range rs {
				k := from + i
				key, val := fmt.Sprintf("key-%05d", k), fmt.Sprintf("%s-%05d-%s", tag, k, strings.Repeat(tag, 1000))
				rs[i] = &kgo.Record{Key: []byte(key), Value: []byte(val)}
				want[key] = val
				written += int64(len(key) + len(val))
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	began := time.Now()
	produce("a")
	produce("b")
	t.Logf("%d bytes written in %v", written, time.Since(began).Round(time.Millisecond))
	// Cleaned on every replica: round a gone below the anchor, so the
	// region a new replica needs is round b, about 20 MiB.
	waitFor(t, 2*time.Minute, "every replica cleaned", func() error {
		for _, id := range orig {
			if n := logBytes(t, filepath.Join(c.nodes[id-1].dir, topic+"-0")); n > written*3/4 {
				return fmt.Errorf("broker %d: %d bytes of segments, %d written", id, n, written)
			}
		}
		return nil
	})
	var added int32
	for _, nd := range c.nodes {
		if !slices.Contains(orig, nd.id) {
			added = nd.id
		}
	}
	target := []int32{added, orig[1], orig[2]}
	req := kadm.AlterPartitionAssignmentsReq{}
	req.Assign(topic, 0, target)
	if _, err := adm.AlterPartitionAssignments(ctx, req); err != nil {
		t.Fatal(err)
	}
	direct := c.direct(c.nodes[orig[1]-1].kafka)
	took := waitFor(t, 3*time.Minute, "the reassignment to complete", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(p.Replicas, target) || len(p.ISR) != 3 {
			return fmt.Errorf("replicas %v, ISR %v", p.Replicas, p.ISR)
		}
		return nil
	})
	nd := c.nodes[added-1]
	received, err := labelledMetric(t, nd, "raft_snapshot_streams_total", `result="received"`)
	if err != nil || received < 1 {
		t.Fatalf("the new replica received %d snapshot streams (%v): the region did not stream", received, err)
	}
	size := logBytes(t, filepath.Join(nd.dir, topic+"-0"))
	t.Logf("reassignment done %v after the request; the new replica holds %d bytes, %d snapshot stream(s) received", took.Round(time.Millisecond), size, received)
	if size < 8<<20 {
		t.Fatalf("the new replica holds %d bytes: the region was no larger than an inline snapshot", size)
	}
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	e, _ := ends.Lookup(topic, 0)
	waitReplicaAt(t, nd, topic, 0, e.Offset, 30*time.Second)
	nd.proc.Stop(t)
	nd.proc = nil
	if got := dirLatest(t, filepath.Join(nd.dir, topic+"-0")); !maps.Equal(got, want) {
		t.Fatalf("the new replica: %d keys, want %d", len(got), len(want))
	}
}

// labelledMetric is a metric of nd's /metrics with the given label set.
func labelledMetric(t *testing.T, nd *node, name, labels string) (int64, error) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^strom_` + name + `\{` + regexp.QuoteMeta(labels) + `\} (\S+)$`)
	m := re.FindSubmatch(scrape(t, nd.http))
	if m == nil {
		return 0, fmt.Errorf("broker %d: no %s{%s}", nd.id, name, labels)
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	return int64(v), err
}
