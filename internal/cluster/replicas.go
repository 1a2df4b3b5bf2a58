package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/replica"
	"github.com/stromhq/strom/internal/storage/logdir"
)

// Replicated partitions (issue 18): a partition of a topic with more than
// one replica runs a raft group of its replicas (internal/replica) over
// its own log. The broker routes raft messages of every group but 0 (the
// metadata quorum) to StepReplica, and Config.RaftSend sends this node's.
// A partition of one replica skips raft: it is what a single node runs.

// GroupID is the raft group id of partition i of the topic with id: a
// hash of both, never 0 (the metadata quorum's). Every node derives the
// same id from the metadata.
func GroupID(id metadata.TopicID, i int32) uint64 {
	var b [20]byte
	copy(b[:], id[:])
	binary.BigEndian.PutUint32(b[16:], uint32(i))
	sum := sha256.Sum256(b[:])
	g := binary.BigEndian.Uint64(sum[:8])
	if g == 0 {
		g = 1
	}
	return g
}

// replicaSet is the raft groups this node runs, by group id.
type replicaSet struct {
	mu     sync.RWMutex
	groups map[uint64]*hosted
}

type hosted struct {
	key   logdir.Partition
	topic metadata.TopicID
	r     *replica.Replica
	view  atomic.Pointer[replica.Leadership]
	// preferred is the preferred leader (raft id) last given to r; owned
	// by the membership loop (reassign.go).
	preferred uint64
	// checked is the view publishLeaders last found recorded (or had
	// nothing to record for); only its goroutine touches it.
	checked *replica.Leadership
}

// replicated reports whether partition i of t has replicas on several
// nodes (a raft group).
func replicatedPartition(t *metadata.Topic, i int32) bool {
	return t.Replicas != nil && int(i) < len(t.Replicas) && len(t.Replicas[i]) > 1
}

// startReplica makes p (partition i of t, not yet shared) a replica of
// its raft group; a no-op for a partition of one replica.
func (c *Cluster) startReplica(t *metadata.Topic, i int32, p *partition.Partition) error {
	if !replicatedPartition(t, i) {
		return nil
	}
	if c.cfg.RaftSend == nil {
		return fmt.Errorf("%s-%d has %d replicas but this node has no raft transport", t.Name, i, len(t.Replicas[i]))
	}
	g := GroupID(t.ID, i)
	voters := make([]uint64, len(t.Replicas[i]))
	for k, id := range t.Replicas[i] {
		voters[k] = uint64(id) + 1
	}
	settings := c.cfg.Broker.Settings()
	h := &hosted{key: logdir.Partition{Topic: t.Name, Partition: i}, topic: t.ID, preferred: preferredOf(settings.AutoLeaderRebalanceEnable, t, i)}
	send := c.cfg.RaftSend
	var sendSnapshot func(*raftpb.Message, replica.SnapshotBody, func(error))
	if stream := c.cfg.RaftSendSnapshot; stream != nil {
		sendSnapshot = func(m *raftpb.Message, body replica.SnapshotBody, done func(error)) { stream(g, m, body, done) }
	}
	r, err := replica.Start(p, replica.Config{
		Group: g, ID: uint64(c.NodeID()) + 1, Voters: voters, FS: c.cfg.FS,
		Send: func(msgs []*raftpb.Message) {
			for _, m := range msgs {
				send(g, m)
			}
		},
		SendSnapshot: sendSnapshot,
		Preferred:    h.preferred,
		Join:         slices.Contains(t.Reconfigured, i),
		LagTime:      settings.ReplicaLagTimeMax,
		Now:          c.cfg.Now,
		OnChange:     func(v replica.Leadership) { h.view.Store(&v) },
		Ticker:       c.replicaTicker(),
		Live:         c.nodeLive,
		Metrics:      c.cfg.ReplicaMetrics,
		Logger:       c.cfg.Logger,
	})
	if err != nil {
		return err
	}
	h.r = r
	c.reps.mu.Lock()
	if c.reps.groups == nil {
		c.reps.groups = map[uint64]*hosted{}
	}
	c.reps.groups[g] = h
	c.reps.mu.Unlock()
	c.membershipDirty.Store(true)
	return nil
}

// stopReplicas stops the raft groups of the given partitions (all when
// keys is nil), before their logs close.
func (c *Cluster) stopReplicas(keys []logdir.Partition) {
	c.reps.mu.Lock()
	var stop []*hosted
	for g, h := range c.reps.groups {
		if keys == nil || slices.Contains(keys, h.key) {
			stop = append(stop, h)
			delete(c.reps.groups, g)
		}
	}
	c.reps.mu.Unlock()
	for _, h := range stop {
		h.r.Stop()
	}
}

// ReplicaSnapshotSink is where the region of m, a streamed snapshot of
// partition group g, is spooled (replica.SnapshotSink); an error when
// this node hosts no replica of g.
func (c *Cluster) ReplicaSnapshotSink(g uint64, m *raftpb.Message) (replica.SnapshotSink, error) {
	c.reps.mu.RLock()
	h := c.reps.groups[g]
	c.reps.mu.RUnlock()
	if h == nil {
		return nil, fmt.Errorf("no replica of raft group %d here", g)
	}
	return h.r.SnapshotSink(m)
}

// StepReplica hands a raft message of partition group g to its replica
// here (dropped when this node has none: raft retries).
func (c *Cluster) StepReplica(g uint64, m *raftpb.Message) {
	c.reps.mu.RLock()
	h := c.reps.groups[g]
	c.reps.mu.RUnlock()
	if h != nil {
		h.r.Step(m)
	}
}

// LeaderInfo is a partition's leadership as clients see it.
type LeaderInfo struct {
	Leader int32 // node id, -1 when none is known or it is fenced
	Epoch  int32
	ISR    []int32
}

// PartitionLeader returns the leader, leader epoch and ISR of partition i
// of t: for a replicated partition what its raft leader recorded in the
// metadata; otherwise the partition's broker (Leader).
func (c *Cluster) PartitionLeader(t *metadata.Topic, i int32) LeaderInfo {
	if !replicatedPartition(t, i) {
		l := c.Leader(t, i)
		li := LeaderInfo{Leader: l, ISR: []int32{}}
		if l >= 0 {
			li.ISR = []int32{l}
		}
		return li
	}
	pl, ok := c.store.PartitionLeader(t.Name, i)
	if !ok || pl.TopicID != t.ID {
		return LeaderInfo{Leader: -1, Epoch: -1, ISR: []int32{}}
	}
	li := LeaderInfo{Leader: pl.Leader, Epoch: pl.Epoch, ISR: pl.ISR}
	if b, ok := c.store.Broker(pl.Leader); !ok || b.Fenced {
		li.Leader = -1
	}
	return li
}

// LeaderHint is the leader of partition i of t and its epoch for a
// client this node must turn away (KIP-951's CurrentLeader): the
// metadata's, or, when this node holds a replica that knows of a newer
// leadership (a hand-over or an election it followed or won, which the
// metadata records only at the new leader's next publish pass), that
// leader or likely leader and its term (Replica.KnownLeader); local says
// so. Such a hint may name this node: it leads in a term whose first
// entry is not committed yet, and the client retries here shortly.
// Leader -1 when none is known.
func (c *Cluster) LeaderHint(t *metadata.Topic, i int32) (leader, epoch int32, local bool) {
	li := c.PartitionLeader(t, i)
	if lead, term, ok := c.newerLocalLeader(t, i, li.Epoch, false); ok {
		return lead, term, true
	}
	return li.Leader, li.Epoch, false
}

// MetadataLeader is PartitionLeader as this node answers Metadata: with
// the newer leadership its replica knows of once that leader's epoch is
// confirmed (never the candidate voted for or a transferee: a client sent
// there before it leads has its first batch refused and may have the
// next accepted, out of sequence for an idempotent producer, which
// librdkafka takes as fatal), so that its Metadata and the hints of its
// refusals agree once the leadership settled. Before,
// a client moved by a hint to a new leader (epoch n+1) and then loading
// metadata here before the leader's publish pass got epoch n back:
// franz-go takes that for an epoch rewind and loads again, which its
// MetadataMinAge (5 s by default) delays, and a load 5 s after a
// hand-over put its next refresh, the one after a leader's kill, up to
// 5 s later. The ISR is still the recorded one.
func (c *Cluster) MetadataLeader(t *metadata.Topic, i int32) LeaderInfo {
	li := c.PartitionLeader(t, i)
	if lead, term, ok := c.newerLocalLeader(t, i, li.Epoch, true); ok {
		li.Leader, li.Epoch = lead, term
	}
	return li
}

// newerLocalLeader is the leader (node id) and term this node's replica
// of partition i of t knows of, when its term is newer than epoch and
// its node is not fenced; ok false otherwise (or no replica here). With
// confirmed, only a leader whose epoch the replica saw confirmed
// (Partition.ConfirmedLeader), else also the likely one (KnownLeader).
func (c *Cluster) newerLocalLeader(t *metadata.Topic, i int32, epoch int32, confirmed bool) (leader, term int32, ok bool) {
	if !replicatedPartition(t, i) {
		return 0, 0, false
	}
	p, ok := c.hosted(t.Name, i)
	if !ok {
		return 0, 0, false
	}
	lead, known, ok := p.KnownLeader()
	if confirmed {
		lead, known, ok = p.ConfirmedLeader()
	}
	if !ok || known <= epoch {
		return 0, 0, false
	}
	node := int32(lead - 1) // raft id = node id + 1
	if b, found := c.store.Broker(node); !found || b.Fenced {
		return 0, 0, false
	}
	return node, known, true
}

// publishLeaders runs until ctx ends: every interval it records in the
// metadata the leadership of each partition this node leads (leader,
// epoch, ISR) when the metadata says otherwise. Level-triggered, so a
// record lost to a quorum change is sent again; the interval bounds how
// often an ISR that flaps is written. A pass looks only at the views that
// changed since they were last found recorded, and every
// publishFullPasses-th pass at all of them: with 10,000 idle partitions a
// full look five times a second was a third of an idle broker's CPU.
func (c *Cluster) publishLeaders(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	var hs []*hosted // reused by every pass
	for pass := 1; ; pass++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hs = c.publishPass(hs, pass%publishFullPasses == 0)
	}
}

// publishPass is one pass of publishLeaders: full compares every view
// with the metadata. hs is a slice to reuse, returned for the next pass:
// a new list of every hosted replica five times a second was 400 KB/s of
// garbage with 10,000 partitions, idle or not.
func (c *Cluster) publishPass(hs []*hosted, full bool) []*hosted {
	hs = hs[:0]
	c.reps.mu.RLock()
	for _, h := range c.reps.groups {
		hs = append(hs, h)
	}
	c.reps.mu.RUnlock()
	for _, h := range hs {
		v := h.view.Load()
		if v == h.checked && !full {
			continue
		}
		if v == nil || v.Epoch < 0 || v.Leader != uint64(c.NodeID())+1 {
			h.checked = v
			continue
		}
		want := metadata.PartitionLeader{Topic: h.key.Topic, TopicID: h.topic, Partition: h.key.Partition,
			Leader: c.NodeID(), Epoch: v.Epoch}
		for _, id := range v.ISR {
			want.ISR = append(want.ISR, int32(id)-1)
		}
		if have, ok := c.store.PartitionLeader(h.key.Topic, h.key.Partition); ok && have.Leader == want.Leader &&
			have.Epoch == want.Epoch && have.TopicID == want.TopicID && slices.Equal(have.ISR, want.ISR) {
			h.checked = v
			continue
		}
		if err := c.store.SetPartitionLeader(want, time.Second); err != nil {
			c.cfg.Logger.Warn("cannot record a partition's leader; retrying", "topic", h.key.Topic, "partition", h.key.Partition, "err", err)
			continue
		}
		// Checked at the next pass: a record of an older epoch is
		// skipped on apply, so the store says whether this one held.
		c.cfg.Logger.Info("partition leader", "topic", h.key.Topic, "partition", h.key.Partition, "epoch", want.Epoch, "isr", want.ISR)
	}
	clear(hs) // a replica stopped meanwhile is not kept alive by the list
	return hs[:0]
}

// publishFullPasses: every this many passes (10 s at 200 ms) publishLeaders
// compares every view with the metadata, changed or not.
const publishFullPasses = 50

// HandOverLeadership asks each partition this node leads to transfer
// leadership to its most caught-up follower, and waits (until ctx ends)
// for the followers to take over: the broker calls it at SIGTERM, before
// its transport and listeners stop. Partitions it does not lead, or whose
// followers are all unreachable, are left as they are.
func (c *Cluster) HandOverLeadership(ctx context.Context) {
	self := uint64(c.NodeID()) + 1
	hs := c.hostedReplicas()
	var moving []*hosted
	for _, h := range hs {
		if h.r.Leader() != self {
			continue
		}
		st := h.r.Status()
		var best, match uint64
		for id, m := range st.Match {
			if id != self && slices.Contains(st.ISR, id) && m >= match {
				best, match = id, m
			}
		}
		if best == 0 {
			continue
		}
		h.r.TransferLeadership(best)
		moving = append(moving, h)
	}
	if len(moving) == 0 {
		return
	}
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		left := 0
		for _, h := range moving {
			if h.r.Leader() == self {
				left++
			}
		}
		if left == 0 {
			c.cfg.Logger.Info("handed over the leadership of this broker's partitions", "partitions", len(moving))
			return
		}
		select {
		case <-ctx.Done():
			c.cfg.Logger.Warn("stopping while still leading partitions", "partitions", left)
			return
		case <-t.C:
		}
	}
}

// replicaRetention runs until ctx ends: every interval
// (log.retention.check.interval.ms) it applies the topic retention of
// each replicated partition hosted here (replica.ApplyRetention), as
// logdir's pass does for the others; their logs keep no retention of
// their own, since the start must move through raft's storage.
func (c *Cluster) replicaRetention(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = 5 * time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		c.applyReplicaRetention(c.cfg.Now())
	}
}

// applyReplicaRetention is one pass of replicaRetention.
func (c *Cluster) applyReplicaRetention(now time.Time) {
	hs := c.hostedReplicas()
	for _, h := range hs {
		if _, err := h.r.ApplyRetention(now); err != nil && !errors.Is(err, replica.ErrStopped) {
			c.cfg.Logger.Error("retention failed", "topic", h.key.Topic, "partition", h.key.Partition, "err", err)
		}
	}
}
