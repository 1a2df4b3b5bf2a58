package cluster

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
)

// load is a set of idempotent acks=all franz-go producers writing to a
// topic (values "<producer>-<seq>", keyed by the producer so that each
// stays in one partition) until finish, and what they were acknowledged.
type load struct {
	got  *acked
	stop chan struct{}
	wg   sync.WaitGroup
}

// startLoad starts producers (seeded with every broker) on topic and waits
// for a first acknowledgement. metadataMinAge bounds how soon a producer
// looks for a new leader.
func (c *testCluster) startLoad(topic string, producers int, metadataMinAge time.Duration) *load {
	c.t.Helper()
	return c.startPacedLoad(topic, producers, 0, metadataMinAge)
}

// startPacedLoad is startLoad with each producer held to perSec records a
// second (0: as fast as acknowledgements allow), so that a long run's
// bookkeeping stays bounded.
func (c *testCluster) startPacedLoad(topic string, producers, perSec int, metadataMinAge time.Duration) *load {
	c.t.Helper()
	l := &load{got: &acked{vals: map[int][]string{}}, stop: make(chan struct{})}
	for prod := range producers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(50), kgo.ProducerLinger(0),
			kgo.RetryTimeout(2*time.Minute), kgo.MetadataMinAge(metadataMinAge))
		if err != nil {
			c.t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			defer cl.Close()
			start := time.Now()
			for seq := 0; ; seq++ {
				var wait time.Duration // 0: no pacing
				if perSec > 0 {
					wait = max(0, time.Until(start.Add(time.Duration(seq)*time.Second/time.Duration(perSec))))
				}
				select {
				case <-l.stop:
					cl.Flush(context.Background())
					return
				case <-time.After(wait):
				}
				v := fmt.Sprintf("%d-%07d", prod, seq)
				cl.Produce(context.Background(), &kgo.Record{Key: []byte(strconv.Itoa(prod)), Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err == nil {
						l.got.add(prod, v)
					}
				})
			}
		}()
	}
	waitFor(c.t, 30*time.Second, "first acknowledgements", func() error {
		if !l.got.since(time.Time{}) {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	return l
}

// finish stops the producers once what they buffered is flushed.
func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// checkReplicated is the checker of the fault tests, run once the faults
// are over and every broker is up: every acknowledged record of topic is
// read back exactly once, at one offset of one partition, in its
// producer's order (a producer's values are "<producer>-<seq>", all in one
// partition); then it stops every broker and checks, per partition, that
// every replica's log holds the same batches at the same offsets up to the
// high watermark, and that those are exactly what the consumer read.
func (c *testCluster) checkReplicated(topic string, got *acked) {
	t := c.t
	t.Helper()
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	var md kadm.Metadata
	waitFor(t, time.Minute, "every partition of "+topic+" led with a full ISR", func() error {
		var err error
		if md, err = adm.Metadata(ctx, topic); err != nil {
			return err
		}
		for _, p := range md.Topics[topic].Partitions {
			if p.Leader < 1 || len(p.ISR) < len(p.Replicas) {
				return fmt.Errorf("partition %d: leader %d, ISR %v of %v", p.Partition, p.Leader, p.ISR, p.Replicas)
			}
		}
		return nil
	})
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	type at struct {
		partition int32
		offset    int64
	}
	where := map[string]at{}
	order := map[int32][]string{} // per partition, what the consumer read
	read := 0
	for p := range int32(len(md.Topics[topic].Partitions)) {
		end, _ := ends.Lookup(topic, p)
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		// The log may end with control batches (a new leader's entry),
		// which the consumer skips: it reads until a poll brings nothing
		// more; the read is compared with the replicas' files below.
		deadline := time.Now().Add(2 * time.Minute)
		for next, idle := int64(0), 0; next < end.Offset && idle < 3; {
			if time.Now().After(deadline) {
				t.Fatalf("partition %d: read up to %d of %d", p, next, end.Offset)
			}
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			fs := cl.PollFetches(pctx)
			cancel()
			if fs.NumRecords() == 0 {
				idle++
			}
			fs.EachRecord(func(r *kgo.Record) {
				v := string(r.Value)
				if prev, ok := where[v]; ok {
					t.Errorf("%s at partition %d offset %d and partition %d offset %d", v, prev.partition, prev.offset, p, r.Offset)
				}
				where[v] = at{p, r.Offset}
				order[p] = append(order[p], v)
				next = r.Offset + 1
				read++
			})
		}
		cl.Close()
	}
	total := 0
	got.mu.Lock()
	for prod, vals := range got.vals {
		prev := at{-1, -1}
		for _, v := range vals {
			w, ok := where[v]
			if !ok {
				t.Errorf("producer %d: acknowledged %s was lost", prod, v)
				continue
			}
			if prev.partition >= 0 && (w.partition != prev.partition || w.offset <= prev.offset) {
				t.Errorf("producer %d: %s at %d/%d after an earlier record at %d/%d", prod, v, w.partition, w.offset, prev.partition, prev.offset)
			}
			prev = w
		}
		total += len(vals)
	}
	got.mu.Unlock()
	// Per producer, everything read (acknowledged or not) is in order.
	for _, vals := range order {
		last := map[string]string{}
		for _, v := range vals {
			p, _, _ := strings.Cut(v, "-")
			if v <= last[p] {
				t.Errorf("producer %s: %s read after %s", p, v, last[p])
			}
			last[p] = v
		}
	}
	t.Logf("%d records acknowledged, %d read from %d partitions", total, read, len(order))

	// Every replica holds the same batches up to the high watermark. The
	// ISR does not say a replica has them all yet: a follower stays in it
	// while heard from within replica.lag.time.max.ms, as in Kafka (one
	// restarted just before may still be catching up), so each is waited
	// for until its log reaches the high watermark before the brokers stop.
	for p, pm := range md.Topics[topic].Partitions {
		end, _ := ends.Lookup(topic, p)
		for _, id := range pm.Replicas {
			waitReplicaAt(t, c.nodes[id-1], topic, p, end.Offset, time.Minute)
		}
	}
	for _, nd := range c.nodes {
		nd.proc.Stop(t)
	}
	for p, pm := range md.Topics[topic].Partitions {
		end, _ := ends.Lookup(topic, p)
		var want []byte
		for i, id := range pm.Replicas {
			data := replicaLog(t, filepath.Join(c.nodes[id-1].dir, fmt.Sprintf("%s-%d", topic, p)), end.Offset)
			if i == 0 {
				want = data
				continue
			}
			if !bytes.Equal(data, want) {
				t.Fatalf("partition %d: the replica on broker %d differs from broker %d's below the high watermark %d (%d vs %d bytes)",
					p, id, pm.Replicas[0], end.Offset, len(data), len(want))
			}
		}
		// The consumer read exactly the data records of the log.
		var stored []string
		for b := want; len(b) > 0; {
			h0, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			h, recs, err := record.Records(b[:h0.Size()], 64<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !h.IsControl() {
				for _, r := range recs {
					stored = append(stored, string(r.Value))
				}
			}
			b = b[h.Size():]
		}
		if !slices.Equal(stored, order[p]) {
			t.Fatalf("partition %d: the consumer read %d records, the replicas hold %d", p, len(order[p]), len(stored))
		}
	}
}

// waitReplicaAt waits until nd's replica of topic-p holds the log up to
// hw (its strom_partition_log_end_offset), and logs how far behind it was
// when it had to wait.
func waitReplicaAt(t *testing.T, nd *node, topic string, p int32, hw int64, within time.Duration) {
	t.Helper()
	started, first := time.Now(), int64(-1)
	waitFor(t, within, fmt.Sprintf("broker %d's replica of %s-%d up to the high watermark %d", nd.id, topic, p, hw), func() error {
		le, err := partitionMetricOf(t, nd, topic, p, "partition_log_end_offset")
		if err != nil {
			return err
		}
		if first < 0 {
			first = le
		}
		if le < hw {
			return fmt.Errorf("its log ends at %d", le)
		}
		return nil
	})
	if first < hw {
		t.Logf("broker %d's replica of %s-%d was at %d of the high watermark %d: caught up in %v", nd.id, topic, p, first, hw, time.Since(started))
	}
}
