package replica

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
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

// behind is a group whose follower 3 was stopped while the leader wrote
// and retention on 1 and 2 moved their log start past its end.
type behind struct {
	g          *group
	x          int64 // the leader's log start
	stoppedEnd int64 // follower 3's log end when it stopped
	last       partition.AppendResult
	seq        map[int64]int32
	val        string
}

func setupBehind(t *testing.T) *behind {
	t.Helper()
	b := &behind{g: newGroup(t, 3), seq: map[int64]int32{}, val: strings.Repeat("r", 100)}
	g := b.g
	for _, nd := range g.nodes {
		nd.p.SetConfig(partition.Config{SegmentBytes: 4096, RetentionMs: -1, RetentionBytes: 8192})
	}
	g.elect(1)
	l := g.nodes[1].p
	produce := func(pid int64, n int) partition.AppendResult {
		t.Helper()
		var res partition.AppendResult
		for range n {
			var err error
			if res, err = l.Append(batch(t, pid, b.seq[pid], 4, b.val), partition.AppendRules{}); err != nil {
				t.Fatal(err)
			}
			b.seq[pid] += 4
		}
		return res
	}
	first := produce(7, 10)
	g.commitAll(first.LastOffset, 1, 2, 3)
	g.stop(3)
	b.stoppedEnd = g.nodes[3].p.EndOffset()
	// Producer 9 writes only while 3 is down, and retention removes its
	// batches: 3 can learn of it from the snapshot alone.
	produce(9, 3)
	produce(7, 80)
	b.last = produce(7, 1)
	g.commitAll(b.last.LastOffset, 1, 2)
	for _, id := range []uint64{1, 2} {
		start, err := g.nodes[id].r.ApplyRetention(time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if start <= b.stoppedEnd {
			t.Fatalf("replica %d: retention moved the start to %d, not past the stopped follower's end %d", id, start, b.stoppedEnd)
		}
	}
	b.x = l.StartOffset()
	if l.Size() > 8192+2*4096 {
		t.Fatalf("the leader holds %d bytes with retention.bytes 8192", l.Size())
	}
	return b
}

// checkCaughtUp waits for follower 3 to catch up and checks its log
// starts at the leader's start and holds the leader's batches.
func (b *behind) checkCaughtUp(t *testing.T) {
	t.Helper()
	g, l, f := b.g, b.g.nodes[1].p, b.g.nodes[3].p
	g.commitAll(b.last.LastOffset, 3)
	if f.StartOffset() != b.x {
		t.Fatalf("the follower's log starts at %d, the leader's at %d", f.StartOffset(), b.x)
	}
	hw := l.HighWatermark()
	g.waitFor("the follower's high watermark", func() bool { return f.HighWatermark() >= hw })
	want := serve(t, l, hw)
	if got := serve(t, f, hw); !bytes.Equal(got, want) || len(want) == 0 {
		t.Fatalf("the follower holds %d bytes from %d, the leader %d", len(got), b.x, len(want))
	}
}

// checkFailover makes 3 the leader: a retry of producer 7's last batch
// gets its original offsets, and producer 9 (known from the snapshot
// alone) keeps its sequence.
func (b *behind) checkFailover(t *testing.T) {
	t.Helper()
	b.g.elect(3)
	f := b.g.nodes[3].p
	dup, err := f.Append(batch(t, 7, b.seq[7]-4, 4, b.val), partition.AppendRules{})
	if err != nil || !dup.Duplicate || dup.BaseOffset != b.last.BaseOffset || dup.LastOffset != b.last.LastOffset {
		t.Fatalf("retry on the new leader: %+v %v, want the original offsets %d-%d", dup, err, b.last.BaseOffset, b.last.LastOffset)
	}
	// A gap in producer 9's sequence is refused (an unknown producer
	// would be taken at any sequence).
	if _, err := f.Append(batch(t, 9, b.seq[9]+8, 1, b.val), partition.AppendRules{}); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("producer 9 out of order on the new leader: %v", err)
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
	b := setupBehind(t)
	g := b.g
	g.start(g.nodes[3])
	b.checkCaughtUp(t)
	b.checkFailover(t)
	if _, err := g.nodes[3].p.Append(batch(t, 9, b.seq[9], 1, b.val), partition.AppendRules{}); err != nil {
		t.Fatalf("producer 9 in order on the new leader: %v", err)
	}
	// A restart of the follower keeps the installed state.
	g.restart(2)
	g.restart(3)
	g.elect(3)
	if dup, err := g.nodes[3].p.Append(batch(t, 7, b.seq[7]-4, 4, b.val), partition.AppendRules{}); err != nil || !dup.Duplicate || dup.BaseOffset != b.last.BaseOffset {
		t.Fatalf("retry after a restart: %+v %v", dup, err)
	}
}

// A power cut of the follower at each of its first file writes after it
// comes back (so at every step of the snapshot install: the producer state
// put aside, raft's state with the reset pending, the log reset, the state
// taken, the flag cleared, then the first entries): restarted from the cut
// image, it ends caught up with the leader's batches at the leader's
// offsets and the leader's producer state.
func TestFollowerSnapshotInstallPowerCut(t *testing.T) {
	cuts := 14
	if testing.Short() {
		cuts = 4
	}
	for k := 1; k <= cuts; k++ {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			b := setupBehind(t)
			g, nd := b.g, b.g.nodes[3]
			// The harness never synced the root: make /d durable, or
			// every image would lose the whole log.
			if err := nd.fs.SyncDir("/"); err != nil {
				t.Fatal(err)
			}
			// At the cut the node dies: nothing it sends after it may
			// reach the others (its acknowledgements would claim what
			// the image lacks).
			cut := nd.fs.CrashAtWrite(k, memfs.CrashOptions{}, func() { g.net.isolate(3, g.ids) })
			g.start(nd)
			g.waitFor("the cut", func() bool {
				g.net.mu.Lock()
				defer g.net.mu.Unlock()
				return g.net.cut[[2]uint64{3, 1}]
			})
			img := cut()
			g.stop(3)
			g.net.heal()
			names, _ := img.List("/d/t-0")
			t.Logf("image at write %d: %v", k, names)
			nd.fs = img
			g.start(nd)
			b.checkCaughtUp(t)
			b.checkFailover(t)
		})
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
