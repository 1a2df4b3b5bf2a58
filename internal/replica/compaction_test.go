package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// compactCfg is a compacted topic's config with small segments.
var compactCfg = partition.Config{SegmentBytes: 1024, RetentionMs: -1,
	Compaction: seglog.Compaction{Enabled: true, MinCleanableRatio: 0.5, DeleteRetention: time.Hour}}

// keyed is a batch of one record (key, value), no producer id.
func keyed(t *testing.T, key, val string) []byte {
	t.Helper()
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Key: k, Value: []byte(val)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// latest reads p from its log start to upTo: the latest value of each key,
// and how many records it read.
func latest(t *testing.T, p *partition.Partition, upTo int64) (map[string]string, int) {
	t.Helper()
	out, n := map[string]string{}, 0
	for off := p.StartOffset(); off < upTo; {
		res, err := p.Log().Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset >= upTo {
				return out, n
			}
			if !h.IsControl() {
				_, recs, err := record.Records(b[:h.Size()], 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range recs {
					out[string(r.Key)] = string(r.Value)
					n++
				}
			}
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out, n
}

// batchesOf is every batch of p's log in [log start, upTo): offset -> bytes.
func batchesOf(t *testing.T, p *partition.Partition, upTo int64) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	for off := p.StartOffset(); off < upTo; {
		res, err := p.Log().Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset >= upTo {
				return out
			}
			out[h.BaseOffset] = b[:h.Size()]
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}

// compactedGroup is a 3-replica group of a compacted topic after many
// updates of few keys, each replica cleaned below its anchor.
type compactedGroup struct {
	g    *group
	want map[string]string
	last int64
}

func (c *compactedGroup) write(t *testing.T, rounds int, tag string) {
	t.Helper()
	l := c.g.nodes[1].p
	for round := range rounds {
		for k := range 10 {
			key, val := fmt.Sprintf("key-%d", k), fmt.Sprintf("%s-%d-%d", tag, k, round)
			res, err := l.Append(keyed(t, key, val), partition.AppendRules{})
			if err != nil {
				t.Fatal(err)
			}
			c.want[key], c.last = val, res.LastOffset
		}
	}
	c.g.commitAll(c.last, 1, 2, 3)
}

func setupCompacted(t *testing.T, modify func(*Config)) *compactedGroup {
	t.Helper()
	c := &compactedGroup{g: newGroupWith(t, 3, modify), want: map[string]string{}}
	g := c.g
	for _, nd := range g.nodes {
		nd.p.SetConfig(compactCfg)
	}
	g.elect(1)
	// The compacted topic's rule is the leader's: a keyless record is
	// refused before it is proposed.
	if _, err := g.nodes[1].p.Append(keyed(t, "", "no key"), partition.AppendRules{}); !errors.Is(err, record.ErrInvalidRecord) {
		t.Fatalf("keyless record on a compacted replicated topic: %v", err)
	}
	c.write(t, 30, "v")
	for _, id := range g.ids {
		nd := g.nodes[id]
		before := nd.p.Log().Size()
		bound := nd.r.CleanBound()
		if bound <= 0 || bound > nd.p.HighWatermark() {
			t.Fatalf("replica %d: clean bound %d, high watermark %d", id, bound, nd.p.HighWatermark())
		}
		if nd.p.StartOffset() != 0 {
			t.Fatalf("replica %d: the anchor move moved the log start to %d", id, nd.p.StartOffset())
		}
		res, err := cleaner.New(nd.fs, cleaner.Options{DedupeBufferBytes: 1 << 20}).Clean(context.Background(), nd.p.Log(), bound)
		if err != nil {
			t.Fatalf("replica %d: clean: %v", id, err)
		}
		if after := nd.p.Log().Size(); res.Removed == 0 || after >= before {
			t.Fatalf("replica %d: cleaning removed %d records, %d bytes -> %d", id, res.Removed, before, after)
		}
	}
	// Below the anchor the batches are no longer raft entries, but their
	// epochs still answer OffsetForLeaderEpoch: the current epoch has not
	// ended (it is every data batch's); with the region taken for "no
	// term" it ended at the log start, and a consumer would see a
	// truncation.
	lead := g.nodes[1].p
	if ep, off, ok := lead.EpochEnd(lead.LeaderEpoch()); !ok || off != -1 {
		t.Fatalf("EpochEnd(%d) = %d, %d: the epoch ends before the log does", lead.LeaderEpoch(), ep, off)
	}
	// Raft goes on over the cleaned logs.
	c.write(t, 2, "w")
	for _, id := range g.ids {
		nd := g.nodes[id]
		got, n := latest(t, nd.p, nd.p.HighWatermark())
		if !maps.Equal(got, c.want) {
			t.Fatalf("replica %d: latest values %v, want %v", id, got, c.want)
		}
		if n >= 32*10 {
			t.Fatalf("replica %d: %d records after cleaning, %d written", id, n, 32*10)
		}
	}
	return c
}

// A compacted topic's replicas move raft's anchor above the log start and
// clean below it (the cleaner bounded by CleanBound): every replica's log
// shrinks and still gives the latest value per key, raft goes on, and a
// new replica a reassignment adds gets a snapshot carrying the leader's
// cleaned region: its log equals the leader's below the high watermark,
// same offsets and bytes, and gives the latest value per key.
func TestCompactedGroupNewReplicaGetsRegion(t *testing.T) {
	c := setupCompacted(t, nil)
	g := c.g
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	lead := g.reassign(all, []uint64{1, 2, 3, 4})
	if lead.id != 1 {
		t.Fatalf("leader %d, want 1", lead.id)
	}
	c.write(t, 1, "x")
	hw := lead.p.HighWatermark()
	g.waitFor("the new replica's high watermark", func() bool { return n4.p.HighWatermark() >= hw })
	if n4.p.StartOffset() != lead.p.StartOffset() {
		t.Fatalf("new replica's log starts at %d, the leader's at %d", n4.p.StartOffset(), lead.p.StartOffset())
	}
	want, got := batchesOf(t, lead.p, hw), batchesOf(t, n4.p, hw)
	if len(got) != len(want) {
		t.Fatalf("new replica holds %d batches below %d, the leader %d", len(got), hw, len(want))
	}
	for off, b := range want {
		if !bytes.Equal(got[off], b) {
			t.Fatalf("batch at %d differs between the leader and the new replica", off)
		}
	}
	if vals, _ := latest(t, n4.p, hw); !maps.Equal(vals, c.want) {
		t.Fatalf("new replica: latest values %v, want %v", vals, c.want)
	}
}

// A region larger than a snapshot may carry is never sent: the new
// replica stays behind, holding nothing, rather than a log with a hole.
func TestCompactedGroupRegionTooLargeStaysBehind(t *testing.T) {
	c := setupCompacted(t, func(cfg *Config) { cfg.MaxSnapshotRegionBytes = 64 })
	g := c.g
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	for range 300 {
		g.reconfigure(all, []uint64{1, 2, 3, 4})
		g.tickAll()
		time.Sleep(time.Millisecond)
		if n4.p.Log().EndOffset() != 0 || n4.p.HighWatermark() != 0 {
			t.Fatalf("the new replica got a log [%d, %d) hw %d without the leader's region", n4.p.StartOffset(), n4.p.Log().EndOffset(), n4.p.HighWatermark())
		}
	}
	if m, done := g.reconfigure(all, []uint64{1, 2, 3, 4}); done {
		t.Fatalf("reassignment done with a replica that holds nothing: %+v", m)
	}
}

// compression.type other than producer on a replicated topic: the leader
// recompresses the batch before proposing it, so every replica stores the
// same recompressed bytes.
func TestRecompressionByLeader(t *testing.T) {
	g := newGroup(t, 3)
	cfg := partition.Config{SegmentBytes: 4096, RetentionMs: -1,
		Compression: seglog.Compression{Recompress: true, Codec: record.CodecGzip, Level: record.DefaultLevel}}
	for _, nd := range g.nodes {
		nd.p.SetConfig(cfg)
	}
	g.elect(1)
	res, err := g.nodes[1].p.Append(keyed(t, "k", "an uncompressed value"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.commitAll(res.LastOffset, 1, 2, 3)
	var first []byte
	for _, id := range g.ids {
		b := batchesOf(t, g.nodes[id].p, res.LastOffset+1)[res.BaseOffset]
		h, err := record.ReadBatchHeader(b)
		if err != nil || h.Codec() != record.CodecGzip {
			t.Fatalf("replica %d: batch at %d codec %v (%v), want gzip", id, res.BaseOffset, h.Codec(), err)
		}
		if first == nil {
			first = b
		} else if !bytes.Equal(b, first) {
			t.Fatalf("replica %d stores other bytes than replica 1", id)
		}
	}
}

// A leader moves its anchor past a member that stopped (AnchorLagBytes:
// one dead member does not stop cleaning) only while the region below
// the anchor is small enough for the snapshot that member will then need;
// with a region larger than a snapshot may carry, the anchor waits for the
// member, which can always catch up from entries.
func TestAnchorPassesAStoppedMemberOnlyIfItsSnapshotFits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		region int
		passes bool
	}{
		{"region fits", 8 << 20, true},
		{"region too large", 64, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := setupCompacted(t, func(cfg *Config) { cfg.MaxSnapshotRegionBytes, cfg.AnchorLagBytes = tc.region, 1 })
			g := c.g
			stoppedEnd := g.nodes[3].p.Log().EndOffset()
			g.stop(3)
			l := g.nodes[1].p
			var last int64
			for round := range 20 {
				for k := range 10 {
					res, err := l.Append(keyed(t, fmt.Sprintf("key-%d", k), fmt.Sprintf("z-%d-%d", k, round)), partition.AppendRules{})
					if err != nil {
						t.Fatal(err)
					}
					last = res.LastOffset
				}
			}
			g.commitAll(last, 1, 2)
			bound := g.nodes[1].r.CleanBound()
			switch {
			case tc.passes && bound <= stoppedEnd:
				t.Fatalf("anchor at %d, held at the stopped member's end %d although its snapshot would fit", bound, stoppedEnd)
			case !tc.passes && bound > stoppedEnd:
				t.Fatalf("anchor moved to %d past the stopped member's end %d: it would need a snapshot larger than one may carry", bound, stoppedEnd)
			}
		})
	}
}
