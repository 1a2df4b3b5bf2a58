package cluster

import (
	"context"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/metadata"
)

// Metadata during a failover (issue 18).
//
// When a leader's broker is killed its partitions' followers elect a new
// leader within about half a second (leaderdown.go's fast election, then
// the new leader's publish pass). A client sees the kill first: its
// connection to the dead broker breaks and it asks another broker for
// metadata a few milliseconds later, which still names the dead leader.
// franz-go then asks again only after its MetadataMinAge (5 s by default):
// producers stall for 5 s though the partition had a leader after 0.5.
// So a broker that answers Metadata while a partition it lists is between
// leaders (FailingOver) holds the answer until the new leader is recorded
// (WaitFailovers) or its replica here knows it (MetadataLeader), up to
// failoverWindow after it saw the old leader's node go down: the
// client's first refresh names the new leader.
//
// Between leaders means: the recorded leader's node is down from here
// (fenced, or no raftnet connection from it: nodeDown) for less than
// failoverWindow, and a majority of the partition's replicas are up, so
// raft can elect. A node down longer, a partition that lost its majority,
// a single replica, or a node this broker merely lost its link to for
// longer than the window, are answered at once as before: the hold is for
// the moments after a kill, never a standing delay.

// failoverWindow bounds the hold: from when this node first saw the
// leader's node down. It covers the slow path too, when the fast election
// does not happen (raft's randomized election timeout, 1 to 2 s at the
// default tick, then a publish pass).
const failoverWindow = 3 * time.Second

// downSince records when this node first saw each node down, for the
// window; a node seen up is forgotten.
type downSince struct {
	mu sync.Mutex
	at map[int32]time.Time
}

// recent reports whether node, down now, went down less than
// failoverWindow ago (first seen down now: it did).
func (d *downSince) recent(node int32, now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	at, ok := d.at[node]
	if !ok {
		if d.at == nil {
			d.at = map[int32]time.Time{}
		}
		d.at[node], at = now, now
	}
	return now.Sub(at) < failoverWindow
}

// up forgets node's down time.
func (d *downSince) up(node int32) {
	d.mu.Lock()
	delete(d.at, node)
	d.mu.Unlock()
}

// nodesDownNow is the registered brokers down from here right now
// (nodeDown), and those of them down for less than failoverWindow (fresh,
// nil when none), noting when each was first seen down and forgetting
// those seen up: the liveness pass and FailingOver share it.
func (c *Cluster) nodesDownNow() (down, fresh map[int32]bool) {
	now := time.Now()
	down = map[int32]bool{}
	for _, b := range c.store.Brokers() {
		if !c.nodeDown(b.ID) {
			c.downAt.up(b.ID)
			continue
		}
		down[b.ID] = true
		if c.downAt.recent(b.ID, now) {
			if fresh == nil {
				fresh = map[int32]bool{}
			}
			fresh[b.ID] = true
		}
	}
	return down, fresh
}

// FailingOver reports whether a partition of the named topics is between
// leaders (see above). Cheap when no node is down: one check per broker.
func (c *Cluster) FailingOver(names []string) bool {
	if !c.Replicated() || len(names) == 0 {
		return false
	}
	down, fresh := c.nodesDownNow()
	if len(fresh) == 0 {
		return false
	}
	for _, name := range names {
		t, ok := c.store.Topic(name)
		if !ok || t.Replicas == nil {
			continue
		}
		for i := range t.Partitions {
			if c.betweenLeaders(&t, i, fresh, down) {
				return true
			}
		}
	}
	return false
}

// betweenLeaders: partition i of t is recorded as led from a node down
// for less than the window, and a majority of its replicas are up.
func (c *Cluster) betweenLeaders(t *metadata.Topic, i int32, fresh, down map[int32]bool) bool {
	if !replicatedPartition(t, i) {
		return false
	}
	pl, ok := c.store.PartitionLeader(t.Name, i)
	if !ok || pl.TopicID != t.ID || !fresh[pl.Leader] {
		return false
	}
	if lead, _, ok := c.newerLocalLeader(t, i, pl.Epoch, true); ok && !down[lead] {
		return false // this node's replica knows the new leader: Metadata names it (MetadataLeader)
	}
	replicas := t.Replicas[i]
	up := 0
	for _, r := range replicas {
		if !down[r] {
			up++
		}
	}
	return 2*up > len(replicas)
}

// WaitFailovers returns once no partition of the named topics is between
// leaders, or ctx ends (polled every 10 ms: the new leader is recorded by
// the metadata quorum, whose store has no change notification).
func (c *Cluster) WaitFailovers(ctx context.Context, names []string) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for c.FailingOver(names) {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
