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

// namedLeader is the leader a Metadata answer names for partition i of t
// (MetadataLeader): the recorded one, fenced or not, or the newer one this
// node's replica saw confirmed (a hand-over or election not recorded yet).
func (c *Cluster) namedLeader(t *metadata.Topic, i int32) (leader, epoch int32, ok bool) {
	pl, ok := c.store.PartitionLeader(t.Name, i)
	if !ok || pl.TopicID != t.ID {
		return -1, -1, false
	}
	if lead, term, ok := c.newerLocalLeader(t, i, pl.Epoch, true); ok {
		return lead, term, true
	}
	return pl.Leader, pl.Epoch, true
}

// electionPending: this node's replica of partition i of t knows of a
// term newer than epoch (the named leader's) whose leader it has not seen
// confirmed: an election or hand-over under way. Named now, the old
// leader's epoch would go backwards for a client that already followed a
// hint to a newer one (franz-go then loads again after its metadata age).
func (c *Cluster) electionPending(t *metadata.Topic, i int32, epoch int32) bool {
	p, ok := c.hosted(t.Name, i)
	if !ok {
		return false
	}
	_, known, _ := p.KnownLeader()
	_, confirmed, ok := p.ConfirmedLeader()
	return known > epoch && (!ok || confirmed < known)
}

// betweenLeaders: partition i of t is named as led (namedLeader) from a
// node down for less than the window, or this node's replica sees an
// election under way past the named leader's epoch (electionPending), and
// a majority of its replicas are up. FailingOver asks only while some node
// went down less than the window ago.
func (c *Cluster) betweenLeaders(t *metadata.Topic, i int32, fresh, down map[int32]bool) bool {
	if !replicatedPartition(t, i) {
		return false
	}
	lead, epoch, ok := c.namedLeader(t, i)
	if !ok || !fresh[lead] && !c.electionPending(t, i, epoch) {
		return false
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

// Probing the leaders before a Metadata answer.
//
// A killed process's kernel closes its sockets one after another, the last
// opened first: a client's connection to the killed broker (opened after
// the raft connections) breaks first, and the client's next Metadata can
// reach a survivor a millisecond before the survivor's raft connections to
// the dead broker close, so FailingOver sees nothing yet and the answer
// names the dead leader. So before answering, the survivor probes the
// nodes the answer names as leaders (raftnet's Probe): a live process
// answers within a round trip; a dead one's connections close within
// milliseconds, and then FailingOver holds the answer.

// MetadataLeaderNodes is the nodes other than this one named as leading
// a replicated partition of the named topics (namedLeader), not down from
// here and registered as answering probes, to probe before answering (nil
// without probes or replication). It stops looking once every other
// broker was named, so an answer of 10,000 partitions costs a few
// lookups, not 10,000.
func (c *Cluster) MetadataLeaderNodes(names []string) []int32 {
	if c.cfg.PeerProbe == nil || !c.Replicated() {
		return nil
	}
	self := c.NodeID()
	others := len(c.store.Brokers()) - 1
	seen := map[int32]bool{}
	var out []int32
	for _, name := range names {
		if len(seen) >= others {
			break
		}
		t, ok := c.store.Topic(name)
		if !ok || t.Replicas == nil {
			continue
		}
		for i := range t.Partitions {
			if !replicatedPartition(&t, i) {
				continue
			}
			lead, _, ok := c.namedLeader(&t, i)
			if !ok || lead < 0 || lead == self || seen[lead] {
				continue
			}
			seen[lead] = true
			if !c.nodeDown(lead) && c.answersProbes(lead) {
				out = append(out, lead)
			}
			if len(seen) >= others {
				break
			}
		}
	}
	return out
}

// answersProbes reports whether node's registration says its raft
// transport answers probes (a broker of an older Strom does not, and a
// probe would close its raft connection).
func (c *Cluster) answersProbes(node int32) bool {
	b, ok := c.store.Broker(node)
	return ok && b.AnswersProbes
}

// ProbeLeaders probes nodes (MetadataLeaderNodes) at once, each for at
// most max, and reports whether every one answered.
func (c *Cluster) ProbeLeaders(ctx context.Context, nodes []int32, max time.Duration) bool {
	if len(nodes) == 0 || c.cfg.PeerProbe == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, max)
	defer cancel()
	answered := make(chan bool, len(nodes))
	for _, n := range nodes {
		go func() { answered <- c.cfg.PeerProbe(ctx, n) }()
	}
	all := true
	for range nodes {
		all = <-answered && all
	}
	return all
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
