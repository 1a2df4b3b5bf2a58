package replica

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// A power cut of every replica at once, after commits that moved only the
// commit index (raftlog keeps those in memory until the next write of
// raft-state, Flush every election timeout): each restarts with a commit
// on disk behind what it acknowledged (its high watermark goes back), and
// once a leader is elected again every replica's high watermark returns
// to the full committed log, with the same batches at the same offsets as
// before the cut: nothing acknowledged is lost, and re-applying the
// committed entries above the commit on disk is harmless.
func TestGroupPowerCutLosesOnlyTheCommitOnDisk(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	// Every node flushes on its election-timeout tick: let one pass so
	// that what follows is the only unflushed part.
	g.tickN(g.nodes[1].r.cfg.ElectionTicks, 1, 2, 3)
	var last partition.AppendResult
	for i := range 20 {
		res, err := l.Append(batch(t, 7, int32(i*2), 2, "c"), partition.AppendRules{})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		// Acknowledged (acks=all) without a tick: the commit moves on
		// the followers' answers alone, no Flush runs.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = l.WaitCommitted(ctx, res.LastOffset, res.LeaderEpoch)
		cancel()
		if err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
		last = res
	}
	want := serve(t, l, last.LastOffset+1)
	for _, id := range g.ids {
		g.net.isolate(id, g.ids)
	}
	// The harness never synced the root: make /d durable, or every image
	// would lose the whole log.
	imgs := map[uint64]*memfs.FS{}
	for _, id := range g.ids {
		if err := g.nodes[id].fs.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		imgs[id] = g.nodes[id].fs.Crash(memfs.CrashOptions{})
	}
	for _, id := range g.ids {
		g.stop(id)
	}
	for _, id := range g.ids {
		nd := g.nodes[id]
		nd.fs = imgs[id]
		g.start(nd)
	}
	// The leader acknowledged every batch, yet its commit on disk lags:
	// the case under test.
	if g.nodes[1].p.HighWatermark() > last.LastOffset {
		t.Fatalf("the old leader's commit on disk covers every batch (high watermark %d after the cut): nothing was kept in memory", g.nodes[1].p.HighWatermark())
	}
	t.Logf("high watermarks after the cut: %d %d %d (acknowledged up to %d)",
		g.nodes[1].p.HighWatermark(), g.nodes[2].p.HighWatermark(), g.nodes[3].p.HighWatermark(), last.LastOffset)
	g.net.heal()
	g.waitFor("every replica's high watermark back past the acknowledged batches", func() bool {
		for _, nd := range g.nodes {
			if nd.p.HighWatermark() <= last.LastOffset {
				return false
			}
		}
		return true
	})
	for _, nd := range g.nodes {
		if got := serve(t, nd.p, last.LastOffset+1); !bytes.Equal(got, want) {
			t.Fatalf("replica %d after the cut differs from what was acknowledged (%d vs %d bytes)", nd.id, len(got), len(want))
		}
	}
	// The group takes writes again, on whichever replica leads.
	var lead *partition.Partition
	g.waitFor("a leader", func() bool {
		for _, nd := range g.nodes {
			if nd.p.LeaderEpoch() >= 0 {
				lead = nd.p
				return true
			}
		}
		return false
	})
	res, err := lead.Append(batch(t, 8, 0, 1, "after"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.commitAll(res.LastOffset, g.ids...)
}
