package cluster

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
)

// load is a set of idempotent acks=all franz-go producers writing to
// partition 0 of a topic (values "<producer>-<seq>") until finish, and
// what they were acknowledged.
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
			for seq := 0; ; seq++ {
				select {
				case <-l.stop:
					cl.Flush(context.Background())
					return
				default:
				}
				v := fmt.Sprintf("%d-%07d", prod, seq)
				cl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
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
// are over and every broker is up: every acknowledged record of partition 0
// of topic is read back exactly once, at one offset, in its producer's
// order; then it stops every broker and checks that every replica's log
// holds the same batches at the same offsets up to the high watermark, and
// that those are exactly what the consumer read.
func (c *testCluster) checkReplicated(topic string, got *acked) {
	t := c.t
	t.Helper()
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	// Every acknowledged record is read back once, in producer order.
	lead := c.waitLeader(adm, topic, 3, -1)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	at := map[string]int64{}
	var order []string
	// The log may end with control batches (a new leader's entry), which
	// the consumer skips: it reads until a poll brings nothing more; the
	// read is compared with the replicas' files below.
	deadline := time.Now().Add(2 * time.Minute)
	for next, idle := int64(0), 0; next < end.Offset && idle < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("read up to %d of %d", next, end.Offset)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if prev, ok := at[v]; ok {
				t.Errorf("%s at offsets %d and %d", v, prev, r.Offset)
			}
			at[v] = r.Offset
			order = append(order, v)
			next = r.Offset + 1
		})
	}
	total := 0
	got.mu.Lock()
	for prod, vals := range got.vals {
		prev := int64(-1)
		for _, v := range vals {
			off, ok := at[v]
			if !ok {
				t.Errorf("producer %d: acknowledged %s was lost", prod, v)
				continue
			}
			if off <= prev {
				t.Errorf("producer %d: %s at %d after an earlier record at %d", prod, v, off, prev)
			}
			prev = off
		}
		total += len(vals)
	}
	got.mu.Unlock()
	// Per producer, everything read (acknowledged or not) is in order.
	last := map[string]string{}
	for _, v := range order {
		p, _, _ := strings.Cut(v, "-")
		if v <= last[p] {
			t.Errorf("producer %s: %s read after %s", p, v, last[p])
		}
		last[p] = v
	}
	t.Logf("%d records acknowledged, %d read, high watermark %d, leader %d", total, len(order), end.Offset, lead)

	// Every replica holds the same batches up to the high watermark.
	for _, nd := range c.nodes {
		nd.proc.Stop(t)
	}
	var want []byte
	for i, nd := range c.nodes {
		data := replicaLog(t, filepath.Join(nd.dir, topic+"-0"), end.Offset)
		if i == 0 {
			want = data
			continue
		}
		if !bytes.Equal(data, want) {
			t.Fatalf("replica on broker %d differs from broker 1's below the high watermark (%d vs %d bytes)", nd.id, len(data), len(want))
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
	if !slices.Equal(stored, order) {
		t.Fatalf("the consumer read %d records, the replicas hold %d", len(order), len(stored))
	}
}
