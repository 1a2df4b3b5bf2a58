package cluster

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/replica"
)

// Liveness for quiesced raft groups (issue 18). An idle partition group
// quiesces (internal/replica): its replicas stop ticking, so followers do
// not notice on their own that their leader died. This node's view of the
// other nodes does it instead: a node is down while the metadata quorum
// fences it (its session timed out: a hung or cut-off broker) or while this
// node has no raftnet connection from it (a killed broker closes its
// connections at once). While some node is down, every interval each
// replica here is given that view (Replica.NodesDown): a quiesced follower
// whose leader is down wakes and elects a new leader after its election
// timeout; a quiesced leader that lost a majority wakes so CheckQuorum
// steps it down. Level-triggered, so a replica that quiesced after the node
// went down is woken at the next pass; an awake replica costs an atomic
// load. When a node is back (down at the last pass, up now), the quiesced
// leaders here with a replica on it wake (Replica.NodesUp) and heartbeat
// it within a tick, so a restarted broker's replicas find their leaders
// before their election timeouts and do not all PreVote. Leaders also consult the view (Config.Live) so a group quiesces with
// a member down and behind.

// livenessInterval is how often the view is refreshed and applied.
const livenessInterval = 250 * time.Millisecond

// liveness is the nodes this node sees down, replaced whole every pass.
type liveness struct {
	down   atomic.Pointer[map[int32]bool]
	ticker struct {
		once sync.Once
		t    *replica.Ticker
	}
}

// replicaTicker is the node's one ticker of awake replicas, started with
// the first replica and stopped by Close.
func (c *Cluster) replicaTicker() *replica.Ticker {
	c.live.ticker.once.Do(func() { c.live.ticker.t = replica.NewTicker(100 * time.Millisecond) })
	return c.live.ticker.t
}

// stopReplicaTicker stops the ticker, after every replica stopped.
func (c *Cluster) stopReplicaTicker() {
	c.live.ticker.once.Do(func() {}) // none started: none will be
	if c.live.ticker.t != nil {
		c.live.ticker.t.Stop()
	}
}

// downNodes is the last pass's view (node ids); nil before the first.
func (c *Cluster) downNodes() map[int32]bool {
	if m := c.live.down.Load(); m != nil {
		return *m
	}
	return nil
}

// nodeLive is Config.Live of the replicas: raft id = node id + 1.
func (c *Cluster) nodeLive(raftID uint64) bool { return !c.downNodes()[int32(raftID)-1] }

// nodeDown reports whether node is fenced or unreachable from here.
func (c *Cluster) nodeDown(node int32) bool {
	if node == c.NodeID() {
		return false
	}
	if b, ok := c.store.Broker(node); ok && b.Fenced {
		return true
	}
	return c.cfg.PeerConnected != nil && !c.cfg.PeerConnected(node)
}

// watchLiveness runs until ctx ends (owner: Open, stopped by Close).
func (c *Cluster) watchLiveness(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var prev map[int32]bool
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		down, _ := c.nodesDownNow() // also starts each failover window here at the latest
		c.live.down.Store(&down)
		back := map[int32]bool{}
		for n := range prev {
			if !down[n] {
				back[n] = true
			}
		}
		if !maps.Equal(prev, down) {
			c.cfg.Logger.Info("raft liveness: nodes down", "down", keys(down))
			prev = down
		}
		if len(down) == 0 && len(back) == 0 {
			continue
		}
		hs := c.hostedReplicas()
		woke := 0
		isDown := func(raftID uint64) bool { return down[int32(raftID)-1] }
		isBack := func(raftID uint64) bool { return back[int32(raftID)-1] }
		for _, h := range hs {
			if len(down) > 0 && h.r.NodesDown(isDown) {
				woke++
			}
			// A node back (restarted): the leaders here with a replica
			// on it heartbeat it now rather than wait for its PreVote.
			if len(back) > 0 && h.r.NodesUp(isBack) {
				woke++
			}
		}
		if woke > 0 {
			c.cfg.Logger.Info("raft liveness: woke quiesced partition replicas", "replicas", woke, "down", keys(down), "back", keys(back))
		}
	}
}

func keys(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ReplicaCounts is how many of this node's partition raft replicas are
// quiesced and how many awake (metrics).
func (c *Cluster) ReplicaCounts() (quiesced, awake int) {
	c.reps.mu.RLock()
	defer c.reps.mu.RUnlock()
	for _, h := range c.reps.groups {
		if h.r.Quiesced() {
			quiesced++
		} else {
			awake++
		}
	}
	return quiesced, awake
}

// LeaderCounts is, over the replicated partitions this node leads (a
// confirmed leader epoch), how many there are, how many have fewer
// replicas in sync than they have replicas (Kafka's
// UnderReplicatedPartitions, reported by leaders), and how many fewer
// than min.insync.replicas (UnderMinIsrPartitionCount: acks=all writes
// are refused there).
type LeaderCounts struct {
	Leaders, UnderReplicated, UnderMinISR int
}

// LeaderCounts counts this node's leaderships (metrics).
func (c *Cluster) LeaderCounts() LeaderCounts {
	self := uint64(c.NodeID()) + 1
	hs := c.hostedReplicas()
	type topicInfo struct {
		t      metadata.Topic
		ok     bool
		minISR int64
	}
	topics := map[string]topicInfo{} // looked up once per topic, not per partition
	var out LeaderCounts
	for _, h := range hs {
		v := h.view.Load()
		if v == nil || v.Leader != self || v.Epoch < 0 {
			continue
		}
		ti, seen := topics[h.key.Topic]
		if !seen {
			ti.t, ti.ok = c.store.Topic(h.key.Topic)
			ti.minISR = 1
			if ts := c.TopicSettings(h.key.Topic); ts != nil {
				ti.minISR = ts.MinInsyncReplicas
			}
			topics[h.key.Topic] = ti
		}
		if !ti.ok || ti.t.ID != h.topic || int(h.key.Partition) >= len(ti.t.Replicas) {
			continue
		}
		out.Leaders++
		if len(v.ISR) < len(ti.t.Replicas[h.key.Partition]) {
			out.UnderReplicated++
		}
		if int64(len(v.ISR)) < ti.minISR {
			out.UnderMinISR++
		}
	}
	return out
}
