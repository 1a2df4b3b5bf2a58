package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// logBytes is the size of the segment files in a partition directory.
func logBytes(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// replicaBatches reads a stopped broker's partition directory from its
// first segment to hw: the stored batches by base offset, and where the
// files start.
func replicaBatches(t *testing.T, dir string, hw int64) (map[int64][]byte, int64) {
	t.Helper()
	l, err := seglog.Open(vfs.Default, dir, seglog.Config{RetentionMs: -1}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	out := map[int64][]byte{}
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
			out[h.BaseOffset] = bytes.Clone(b[:h.Size()])
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out, l.StartOffset()
}

// TestFollowerCatchesUpBySnapshot: RF=3 with small segments and
// retention.bytes; a follower is killed -9, the producers write until the
// leader's retention has passed the follower's end, and the follower is
// restarted. It cannot catch up from entries (the leader deleted them): it
// gets a snapshot, restarts its log at the leader's log start, rejoins the
// ISR, and afterwards the three replicas hold identical batches from the
// common start up to the high watermark; the leader's disk stays bounded
// by retention; DeleteRecords moves every replica's start. Before
// partition snapshots, retention was off on replicated
// partitions (their disk grew forever) and such a follower could never
// catch up.
func TestFollowerCatchesUpBySnapshot(t *testing.T) {
	const segment, retention = 16 << 10, 64 << 10
	c := startCluster(t, 3, "log.retention.check.interval.ms=300")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "retained"
	seg, ret := fmt.Sprint(segment), fmt.Sprint(retention)
	if r, err := adm.CreateTopic(ctx, 1, 3, map[string]*string{"segment.bytes": &seg, "retention.bytes": &ret}, topic); err != nil || r.Err != nil {
		t.Fatalf("create: %v %v", err, r.Err)
	}
	lead := c.waitLeader(adm, topic, 3, -1)
	var victim, leader *node
	for _, nd := range c.nodes {
		switch {
		case nd.id == lead:
			leader = nd
		case victim == nil:
			victim = nd
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(0), kgo.RetryTimeout(2*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	produce := func(k int) {
		t.Helper()
		rs := make([]*kgo.Record, k)
		for i := range rs {
			rs[i] = &kgo.Record{Value: []byte(fmt.Sprintf("%07d-%s", n, strings.Repeat("v", 1000)))}
			n++
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(50)
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	e, _ := ends.Lookup(topic, 0)
	victimEnd := e.Offset
	victim.proc.Kill(t)
	oadm := c.admin(leader.kafka)
	var start int64
	waitFor(t, 2*time.Minute, "the leader's log start past the killed follower's end", func() error {
		produce(50)
		starts, err := oadm.ListStartOffsets(ctx, topic)
		if err != nil || starts.Error() != nil {
			return fmt.Errorf("start offsets: %v %v", err, starts.Error())
		}
		s, _ := starts.Lookup(topic, 0)
		start = s.Offset
		if start <= victimEnd+50 {
			return fmt.Errorf("start %d, the follower ended at %d", start, victimEnd)
		}
		return nil
	})
	t.Logf("follower %d killed at end %d; leader %d's log start %d after %d records", victim.id, victimEnd, leader.id, start, n)
	inISR := func(want bool) func() error {
		return func() error {
			md, err := oadm.Metadata(ctx, topic)
			if err != nil {
				return err
			}
			p := md.Topics[topic].Partitions[0]
			if slices.Contains(p.ISR, victim.id) != want {
				return fmt.Errorf("ISR %v", p.ISR)
			}
			return nil
		}
	}
	waitFor(t, 30*time.Second, "the killed follower out of the ISR", inISR(false))
	c.start(victim)
	caught := time.Now()
	waitFor(t, time.Minute, "the restarted follower back in the ISR", inISR(true))
	t.Logf("the restarted follower rejoined the ISR %v after its start", time.Since(caught).Round(time.Millisecond))
	produce(100)
	leaderDir := filepath.Join(leader.dir, topic+"-0")
	var size int64
	waitFor(t, 30*time.Second, "the leader's disk within retention", func() error {
		if size = logBytes(t, leaderDir); size > retention+2*segment {
			return fmt.Errorf("%d bytes of segments", size)
		}
		return nil
	})
	ends, err = adm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	e, _ = ends.Lookup(topic, 0)
	hw := e.Offset
	// Every replica's log reaches the high watermark before the brokers
	// stop (partition_log_end_offset is each replica's own log end).
	metric := func(nd *node, name string) (int64, error) {
		re := regexp.MustCompile(`(?m)^strom_` + name + `\{partition="0",topic="` + topic + `"\} (\S+)$`)
		m := re.FindSubmatch(scrape(t, nd.http))
		if m == nil {
			return 0, fmt.Errorf("broker %d: no %s", nd.id, name)
		}
		v, err := strconv.ParseFloat(string(m[1]), 64)
		return int64(v), err
	}
	waitFor(t, 30*time.Second, "every replica's log at the high watermark", func() error {
		for _, nd := range c.nodes {
			if v, err := metric(nd, "partition_log_end_offset"); err != nil || v < hw {
				return fmt.Errorf("broker %d: log end %d < %d (%v)", nd.id, v, hw, err)
			}
		}
		return nil
	})
	// DeleteRecords goes through raft: every replica's start moves (to
	// the base of the batch holding the offset).
	starts, err := oadm.ListStartOffsets(ctx, topic)
	if err != nil || starts.Error() != nil {
		t.Fatalf("start offsets: %v %v", err, starts.Error())
	}
	s0, _ := starts.Lookup(topic, 0)
	to := s0.Offset + 60 // past the first batch of the retained log
	var dr kadm.Offsets
	dr.AddOffset(topic, 0, to, -1)
	drs, err := oadm.DeleteRecords(ctx, dr)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := drs.Lookup(topic, 0)
	if d.Err != nil || d.LowWatermark > to || d.LowWatermark <= s0.Offset {
		t.Fatalf("DeleteRecords to %d: low watermark %d, %v (start was %d)", to, d.LowWatermark, d.Err, s0.Offset)
	}
	waitFor(t, 30*time.Second, "every replica's start at the deleted offset", func() error {
		for _, nd := range c.nodes {
			if v, err := metric(nd, "partition_log_start_offset"); err != nil || v < d.LowWatermark {
				return fmt.Errorf("broker %d: log start %d < %d (%v)", nd.id, v, d.LowWatermark, err)
			}
		}
		return nil
	})
	t.Logf("DeleteRecords to %d (start %d): low watermark %d on the three replicas", to, s0.Offset, d.LowWatermark)
	for _, nd := range c.nodes {
		nd.proc.Stop(t)
	}
	logs := map[int32]map[int64][]byte{}
	common := int64(0)
	for _, nd := range c.nodes {
		b, s := replicaBatches(t, filepath.Join(nd.dir, topic+"-0"), hw)
		logs[nd.id] = b
		common = max(common, s)
		if nd == victim && s <= victimEnd {
			t.Fatalf("the restarted follower's files start at %d, at or below its end %d when killed: no snapshot was installed", s, victimEnd)
		}
	}
	want := logs[leader.id]
	checked := 0
	for off, b := range want {
		if off < common {
			continue
		}
		checked++
		for _, nd := range c.nodes {
			if !bytes.Equal(logs[nd.id][off], b) {
				t.Fatalf("broker %d's batch at %d differs from the leader's", nd.id, off)
			}
		}
	}
	for _, nd := range c.nodes {
		for off := range logs[nd.id] {
			if off >= common && want[off] == nil {
				t.Fatalf("broker %d holds a batch at %d the leader does not", nd.id, off)
			}
		}
	}
	t.Logf("%d batches identical on the three replicas from %d to the high watermark %d; leader's segments %d bytes (retention.bytes %d, segment.bytes %d)",
		checked, common, hw, size, retention, segment)
}
