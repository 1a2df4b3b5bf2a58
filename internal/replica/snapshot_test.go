package replica

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// commitAll waits until every listed replica's high watermark passes off.
func (g *group) commitAll(off int64, ids ...uint64) {
	g.t.Helper()
	g.waitFor("commit", func() bool {
		for _, id := range ids {
			if g.nodes[id].p.HighWatermark() <= off {
				return false
			}
		}
		return true
	})
}

// stop takes a node down (its replica and log closed, its messages
// dropped) until g.start brings it back.
func (g *group) stop(id uint64) {
	g.t.Helper()
	nd := g.nodes[id]
	g.net.mu.Lock()
	delete(g.net.reps, id)
	g.net.mu.Unlock()
	nd.r.Stop()
	if err := nd.p.Log().Close(); err != nil {
		g.t.Fatal(err)
	}
}

// A follower stopped while the leader writes and retention deletes the
// segments it would need comes back behind the leader's log start: it
// gets a snapshot (the log start offset and the producer state), restarts
// its log there, takes the entries after it, and ends with the same
// batches at the same offsets as the leader and the same producer state:
// after a failover to it, a retried batch gets its original offsets and a
// producer known only from the snapshot keeps its sequence. Before
// partition snapshots, the follower could never catch up (raftlog answered
// ErrSnapshotTemporarilyUnavailable) and retention was off.
func TestFollowerBehindRetentionGetsSnapshot(t *testing.T) {
	g := newGroup(t, 3)
	for _, nd := range g.nodes {
		nd.p.SetConfig(partition.Config{SegmentBytes: 4096, RetentionMs: -1, RetentionBytes: 8192})
	}
	g.elect(1)
	l := g.nodes[1].p
	val := strings.Repeat("r", 100)
	seq := map[int64]int32{}
	produce := func(pid int64, n int) partition.AppendResult {
		t.Helper()
		var res partition.AppendResult
		for range n {
			var err error
			if res, err = l.Append(batch(t, pid, seq[pid], 4, val), partition.AppendRules{}); err != nil {
				t.Fatal(err)
			}
			seq[pid] += 4
		}
		return res
	}
	first := produce(7, 10)
	g.commitAll(first.LastOffset, 1, 2, 3)
	g.stop(3)
	stoppedEnd := g.nodes[3].p.EndOffset()

	// Producer 9 writes only while 3 is down, and retention removes its
	// batches: 3 can learn of it from the snapshot alone.
	produce(9, 3)
	produce(7, 80)
	last := produce(7, 1)
	g.commitAll(last.LastOffset, 1, 2)
	for _, id := range []uint64{1, 2} {
		start, err := g.nodes[id].r.ApplyRetention(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if start <= stoppedEnd {
			t.Fatalf("replica %d: retention moved the start to %d, not past the stopped follower's end %d", id, start, stoppedEnd)
		}
	}
	x := l.StartOffset()
	if l.Size() > 8192+2*4096 {
		t.Fatalf("the leader holds %d bytes with retention.bytes 8192", l.Size())
	}

	g.start(g.nodes[3])
	f := g.nodes[3].p
	g.commitAll(last.LastOffset, 3)
	if f.StartOffset() != x {
		t.Fatalf("the follower's log starts at %d, the leader's at %d", f.StartOffset(), x)
	}
	hw := l.HighWatermark()
	g.waitFor("the follower's high watermark", func() bool { return f.HighWatermark() >= hw })
	want := serve(t, l, hw)
	if got := serve(t, f, hw); !bytes.Equal(got, want) || len(want) == 0 {
		t.Fatalf("the follower holds %d bytes from %d, the leader %d", len(got), x, len(want))
	}

	// Fail over to 3.
	g.elect(3)
	dup, err := f.Append(batch(t, 7, seq[7]-4, 4, val), partition.AppendRules{})
	if err != nil || !dup.Duplicate || dup.BaseOffset != last.BaseOffset || dup.LastOffset != last.LastOffset {
		t.Fatalf("retry on the new leader: %+v %v, want the original offsets %d-%d", dup, err, last.BaseOffset, last.LastOffset)
	}
	// Producer 9's state came with the snapshot: a gap in its sequence is
	// refused (an unknown producer would be taken at any sequence).
	if _, err := f.Append(batch(t, 9, seq[9]+8, 1, val), partition.AppendRules{}); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("producer 9 out of order on the new leader: %v", err)
	}
	if _, err := f.Append(batch(t, 9, seq[9], 1, val), partition.AppendRules{}); err != nil {
		t.Fatalf("producer 9 in order on the new leader: %v", err)
	}

	// A restart of the follower keeps the installed state.
	g.restart(2)
	g.restart(3)
	g.elect(3)
	if dup, err := g.nodes[3].p.Append(batch(t, 7, seq[7]-4, 4, val), partition.AppendRules{}); err != nil || !dup.Duplicate || dup.BaseOffset != last.BaseOffset {
		t.Fatalf("retry after a restart: %+v %v", dup, err)
	}
}

// DeleteRecords on a replicated partition is a raft entry: the leader
// answers once it applied it, every replica moves its start to the same
// batch boundary (the batch holding the offset), the move survives a
// restart, and a follower refuses the call. It was refused on every
// replica before (ErrNotReplicatedYet).
func TestDeleteRecordsThroughRaft(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	var res []partition.AppendResult
	for i := range 30 {
		r, err := l.Append(batch(t, 7, int32(i*3), 3, strings.Repeat("d", 200)), partition.AppendRules{})
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, r)
	}
	last := res[len(res)-1]
	g.commitAll(last.LastOffset, 1, 2, 3)
	if _, err := g.nodes[2].p.DeleteRecords(res[10].BaseOffset); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("DeleteRecords on a follower: %v", err)
	}
	if _, err := l.DeleteRecords(l.HighWatermark() + 1); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("DeleteRecords past the high watermark: %v", err)
	}
	// An offset inside batch 12: the start moves to its base.
	want := res[12].BaseOffset
	start, err := l.DeleteRecords(want + 1)
	if err != nil || start != want {
		t.Fatalf("DeleteRecords: start %d %v, want %d", start, err, want)
	}
	g.waitFor("every replica's start moved", func() bool {
		for _, nd := range g.nodes {
			if nd.p.StartOffset() != want {
				return false
			}
		}
		return true
	})
	if _, err := l.Read(want-1, 1<<20, true); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("read below the new start: %v", err)
	}
	// The whole log up to the high watermark, then a restart.
	hw := l.HighWatermark()
	if start, err := l.DeleteRecords(hw); err != nil || start < res[29].BaseOffset {
		t.Fatalf("DeleteRecords to the high watermark %d: %d %v", hw, start, err)
	}
	g.restart(3)
	g.waitFor("the restarted replica's start", func() bool { return g.nodes[3].p.StartOffset() == l.StartOffset() })
	r, err := l.Append(batch(t, 7, 90, 1, "after"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.commitAll(r.LastOffset, 1, 2, 3)
	from := l.StartOffset()
	want2 := serve(t, l, r.LastOffset+1)
	for _, id := range []uint64{2, 3} {
		if g.nodes[id].p.StartOffset() != from || !bytes.Equal(serve(t, g.nodes[id].p, r.LastOffset+1), want2) {
			t.Fatalf("replica %d: start %d (leader %d) or batches differ", id, g.nodes[id].p.StartOffset(), from)
		}
	}
}
