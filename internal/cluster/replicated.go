package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/logdir"
)

// A cluster node (Config.Store set): the metadata is the quorum's, and this
// node holds the partitions whose replicas name it. Changes are proposed
// to the quorum; every node, the proposer included, applies them through
// the reconciler, which opens the partitions assigned to it, removes those
// of deleted topics and pushes new configs to its logs.

// Errors of a cluster node's request path.
var (
	// ErrNotLeader: the partition exists and another broker leads it.
	ErrNotLeader = errors.New("not the partition's leader")
	// ErrLeaderNotAvailable: the partition has no live leader right now
	// (its broker is fenced, or is this one and has not opened it yet).
	ErrLeaderNotAvailable = errors.New("leader not available")
)

// Quorum is what a cluster node knows of the metadata quorum.
type Quorum interface {
	// Leader is the node id of the quorum's leader (the active
	// controller), -1 when unknown.
	Leader() int32
	// Active, on the quorum's leader, reports the voters heard from within
	// the last election timeout (nil on a follower).
	Active() map[int32]bool
}

// Replicated reports whether this node's metadata is a quorum's (a
// replicated store): true for every node a broker runs, a single node
// being a cluster of one voter; false only for a Cluster opened without
// OpenMetadata (unit tests, and the tools that read a stopped node's
// metadata file).
func (c *Cluster) Replicated() bool { return c.store.Replicated() }

// Peers reports whether this node has other nodes to talk to (a raft
// transport): the branches that are about more than one node (replicas
// on other brokers, inter-broker clients) ask this, not Replicated.
func (c *Cluster) Peers() bool { return c.cfg.RaftSend != nil }

// ours reports whether partition i of t has a replica on this node.
func (c *Cluster) ours(t *metadata.Topic, i int32) bool {
	if t.Replicas == nil {
		return true
	}
	return int(i) < len(t.Replicas) && slices.Contains(t.Replicas[i], c.NodeID())
}

// Brokers returns the live brokers (registered, not fenced) clients may be
// sent to; a single node is the only one, with the address its caller
// gives (advertised).
func (c *Cluster) Brokers() []metadata.BrokerInfo {
	if !c.Replicated() {
		return nil
	}
	all := c.store.Brokers()
	return slices.DeleteFunc(all, func(b metadata.BrokerInfo) bool { return b.Fenced })
}

// AllBrokers returns every registered broker, fenced ones included.
func (c *Cluster) AllBrokers() []metadata.BrokerInfo { return c.store.Brokers() }

// ControllerID is the active controller's node id: the quorum's leader in
// a cluster (-1 while there is none), this node otherwise.
func (c *Cluster) ControllerID() int32 {
	if c.cfg.Quorum == nil {
		return c.NodeID()
	}
	return c.cfg.Quorum.Leader()
}

// Leader returns the leader of partition i of t: for a replicated
// partition its raft group's leader as recorded in the metadata
// (PartitionLeader); for one of one replica that broker while it is live,
// -1 otherwise; this node on a single node.
func (c *Cluster) Leader(t *metadata.Topic, i int32) int32 {
	if t.Replicas == nil {
		return c.NodeID()
	}
	if replicatedPartition(t, i) {
		return c.PartitionLeader(t, i).Leader
	}
	if int(i) >= len(t.Replicas) || len(t.Replicas[i]) == 0 {
		return -1
	}
	lead := t.Replicas[i][0]
	if b, ok := c.store.Broker(lead); !ok || b.Fenced {
		return -1
	}
	return lead
}

// WaitLeaders waits until every partition of the named topics has a
// leader in the metadata, or ctx ends; it reports whether they all have
// one. A new replicated partition has none until its raft group elected
// one and the leader recorded it (publishLeaders): CreateTopics and
// CreatePartitions wait for that, as Kafka's did, so that a client
// producing right after them finds the leaders instead of
// LEADER_NOT_AVAILABLE (franz-go then waits its metadata age, 5 s by
// default, before it looks again). A topic deleted meanwhile counts as
// led.
func (c *Cluster) WaitLeaders(ctx context.Context, names []string) bool {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if c.allLed(names) {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

func (c *Cluster) allLed(names []string) bool {
	for _, name := range names {
		t, ok := c.store.Topic(name)
		if !ok {
			continue
		}
		for i := range t.Partitions {
			if c.Leader(&t, i) < 0 {
				return false
			}
		}
	}
	return true
}

// Register records this broker in the cluster (retried by the caller until
// it succeeds: the quorum may have no leader yet).
func (c *Cluster) Register(b metadata.BrokerInfo) error {
	return c.store.RegisterBroker(b)
}

// placement chooses the replicas of n partitions with rf replicas each on
// the live brokers, leaders starting at a random broker.
func (c *Cluster) placement(n int32, rf int16) ([][]int32, error) {
	var live []metadata.PlacementBroker
	for _, b := range c.Brokers() {
		live = append(live, metadata.PlacementBroker{ID: b.ID, Rack: b.Rack})
	}
	if len(live) == 0 {
		return nil, fmt.Errorf("%w: no live broker registered yet", metadata.ErrInvalidReplicationFactor)
	}
	if rf > 1 && c.cfg.RaftSend == nil {
		return nil, fmt.Errorf("%w: %d: this node has no raft transport for partition groups", metadata.ErrInvalidReplicationFactor, rf)
	}
	start, _ := rand.Int(rand.Reader, big.NewInt(int64(len(live))))
	return metadata.AssignReplicas(live, n, rf, int(start.Int64()))
}

// createReplicated creates topics through the quorum: placement here, the
// logs on each replica's node when the record applies.
func (c *Cluster) createReplicated(res []CreateResult, specs []TopicSpec, ok []int) {
	var topics []metadata.Topic
	var at []int
	for _, i := range ok {
		t := res[i].Topic
		rf := specs[i].ReplicationFactor
		if rf <= 0 {
			rf = c.defaultRF(t.Name)
		}
		replicas, err := specs[i].Assignment, error(nil)
		if replicas == nil {
			replicas, err = c.placement(t.Partitions, rf)
		}
		if err != nil {
			res[i].Err = err
			continue
		}
		t.Replicas = replicas
		res[i].Topic = t
		topics = append(topics, t)
		at = append(at, i)
	}
	if len(topics) == 0 {
		return
	}
	stored, err := c.store.CreateTopics(topics)
	if err != nil {
		for _, i := range at {
			res[i].Err = fmt.Errorf("create topic %q: %w", res[i].Topic.Name, err)
		}
		return
	}
	for k, i := range at {
		res[i].Topic = stored[k]
		c.cfg.Logger.Info("created topic", "topic", stored[k].Name, "partitions", stored[k].Partitions, "replicas", stored[k].Replicas)
	}
	// This node's replicas open before the answer (the reconciler would,
	// a moment later): a client that produces right after CreateTopics
	// finds the partitions, on a cluster of one in particular.
	_, failed := c.reconcileReport()
	if c.Peers() {
		return // the reconciler retries what failed here; other nodes hold the rest
	}
	// A cluster of one holds every partition: a topic whose logs it
	// cannot create (no descriptors, a full disk) is not created, as
	// before its metadata was a quorum — deleted again and answered
	// with the error, rather than kept with partitions that never open.
	deleted := false
	for k, i := range at {
		name := stored[k].Name
		err := failed[name]
		if err == nil && c.allOpen(stored[k]) {
			continue
		}
		if err == nil {
			err = fmt.Errorf("%w: its partitions did not open", ErrLeaderNotAvailable)
		}
		// deleteTopic removes every partition directory of the topic in
		// one DeleteLogs, the ones that failed half-created included,
		// after closing the ones that opened: their descriptors are what
		// the removal needs when the creation ran out of them.
		logsErr, derr := c.deleteTopic(name)
		if derr != nil {
			c.cfg.Logger.Error("cannot delete a topic whose partitions could not be created; the reconciler retries them", "topic", name, "err", derr)
			continue
		}
		if logsErr != nil {
			c.cfg.Logger.Error("removing the logs of a failed creation", "topic", name, "err", logsErr, "note", "the next start removes what is left")
		}
		deleted = true
		res[i].Err = fmt.Errorf("create topic %q: %w", name, err)
		c.cfg.Logger.Warn("topic not created: its partitions could not be created", "topic", name, "err", err)
	}
	if deleted {
		c.reconcile() // removes what was created of them
	}
}

// allOpen reports whether every partition of t placed on this node is
// open.
func (c *Cluster) allOpen(t metadata.Topic) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for i := int32(0); i < t.Partitions; i++ {
		if _, ok := c.parts[logdir.Partition{Topic: t.Name, Partition: i}]; !ok && c.ours(&t, i) {
			return false
		}
	}
	return true
}

// defaultRF is the replication factor of a topic created without one:
// default.replication.factor, and for the offsets topic
// offsets.topic.replication.factor (offsetsRF).
func (c *Cluster) defaultRF(topic string) int16 {
	rf := c.cfg.Broker.Settings().DefaultReplicationFactor
	if topic == OffsetsTopic {
		rf = c.offsetsRF()
	}
	if rf < 1 {
		rf = 1
	}
	return rf
}

// offsetsRF is the offsets topic's replication factor in a cluster:
// offsets.topic.replication.factor capped by the size of the cluster (the
// brokers registered, and the controller voters, every one of which is a
// broker too), so that a cluster of two still gets its offsets topic with
// the default of 3. It is not capped by the brokers alive at the moment:
// Kafka's rule is that the internal topic's creation fails until enough
// brokers are up (FindCoordinator answers COORDINATOR_NOT_AVAILABLE and
// the client retries), and a cluster whose first group arrived while one
// node was up would otherwise keep a single copy of its offsets forever.
func (c *Cluster) offsetsRF() int16 {
	s := c.cfg.Broker.Settings()
	size := max(len(c.store.Brokers()), len(s.ControllerQuorumVoters))
	return min(s.OffsetsTopicReplicationFactor, int16(min(size, 1<<14)))
}

// startReconciler starts the goroutine that makes this node's partitions
// follow the metadata; Close stops it.
func (c *Cluster) startReconciler(ctx context.Context) {
	c.reconcileWake = make(chan struct{}, 1)
	c.store.OnChange(func(metadata.Record) { c.wakeReconciler() })
	c.done.Add(1)
	go func() {
		defer c.done.Done()
		// A pass that could not open or create a partition (a full disk,
		// no descriptors) is retried a second later; otherwise the loop
		// waits for the next applied record, so an idle cluster does not
		// copy its whole image every second.
		retry := time.NewTimer(time.Second)
		retry.Stop()
		defer retry.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-c.reconcileWake:
			case <-retry.C:
			}
			if c.reconcile() {
				retry.Reset(time.Second)
			}
		}
	}()
}

func (c *Cluster) wakeReconciler() {
	if c.reconcileWake == nil {
		return
	}
	select {
	case c.reconcileWake <- struct{}{}:
	default:
	}
}

// reconcile opens the partitions the metadata assigns to this node and
// that are not open, removes the open ones whose topic is gone (or was
// recreated under a new id) or that are no longer assigned here, and
// applies changed topic and broker configs. It is level-triggered: it
// compares the whole metadata with the node, so a missed wake-up or a
// failure is made up at the next call.
//
// It reports whether something failed and should be tried again.
func (c *Cluster) reconcile() (retry bool) {
	retry, _ = c.reconcileReport()
	return retry
}

// reconcileReport is reconcile, also returning, by topic, the first error
// of a partition this pass could not create.
func (c *Cluster) reconcileReport() (retry bool, createErrs map[string]error) {
	c.growMu.Lock()
	defer c.growMu.Unlock()
	topics := c.store.Topics()
	byName := make(map[string]*metadata.Topic, len(topics))
	for i := range topics {
		byName[topics[i].Name] = &topics[i]
	}

	// Removals: topics gone or recreated under a new id (known from what
	// the last pass applied; at start sortOutDirectories matched ids),
	// partitions moved away.
	c.mu.RLock()
	var gone []logdir.Partition
	goneTopics := map[string]bool{}
	for k := range c.parts {
		t, ok := byName[k.Topic]
		prev, seen := c.appliedConfigs[k.Topic]
		switch {
		case !ok || (seen && prev.id != t.ID):
			gone = append(gone, k)
			goneTopics[k.Topic] = true
		case k.Partition >= t.Partitions || !c.ours(t, k.Partition):
			gone = append(gone, k)
		}
	}
	c.mu.RUnlock()
	if len(gone) > 0 {
		c.mu.Lock()
		for _, k := range gone {
			delete(c.parts, k)
		}
		c.mu.Unlock()
		c.stopReplicas(gone)
		if err := c.dir.DeleteLogs(gone); err != nil {
			c.cfg.Logger.Error("removing the logs of deleted partitions", "err", err, "note", "the next start removes what is left")
		}
		for topic := range goneTopics {
			c.settings.Delete(topic)
			delete(c.appliedConfigs, topic)
			c.cfg.Logger.Info("removed the partitions of a deleted topic", "topic", topic)
			c.runDeleteHooks(topic)
		}
	}
	for name := range c.appliedConfigs {
		if _, ok := byName[name]; !ok {
			delete(c.appliedConfigs, name)
			c.settings.Delete(name)
		}
	}

	// Configs, so new partitions open with the current ones.
	c.configMu.Lock()
	node := strconv.FormatInt(int64(c.NodeID()), 10)
	dyn := [2]map[string]string{c.store.BrokerConfigs(node), c.store.BrokerConfigs("")}
	dynChanged := !maps.Equal(dyn[0], c.appliedDyn[0]) || !maps.Equal(dyn[1], c.appliedDyn[1])
	if dynChanged {
		c.loadDynamicConfigs()
		c.appliedDyn = dyn
	}
	for _, t := range topics {
		if prev, ok := c.appliedConfigs[t.Name]; dynChanged || !ok || prev.id != t.ID || !maps.Equal(prev.configs, t.Configs) {
			c.applySettingsLocked(t)
			c.appliedConfigs[t.Name] = appliedConfig{id: t.ID, configs: t.Configs}
		}
	}
	c.configMu.Unlock()

	// Additions.
	c.configMu.RLock()
	defer c.configMu.RUnlock()
	var jobs []newPartition
	for _, t := range topics {
		for i := int32(0); i < t.Partitions; i++ {
			if !c.ours(byName[t.Name], i) {
				continue
			}
			key := logdir.Partition{Topic: t.Name, Partition: i}
			c.mu.RLock()
			_, open := c.parts[key]
			c.mu.RUnlock()
			if open {
				continue
			}
			if _, err := c.cfg.FS.Stat(c.dir.PartitionDir(key)); err == nil {
				if id, hasID := c.dir.TopicIDOf(key); !hasID || metadata.TopicID(id) == t.ID {
					// Ours from before a restart: open it as it is.
					if err := c.openPartition(t, i, c.TopicSettings(t.Name), hasID); err != nil {
						c.cfg.Logger.Error("cannot open a partition assigned to this broker; retrying", "partition", key, "err", err)
						retry = true
					}
					continue
				}
			}
			jobs = append(jobs, newPartition{topic: byName[t.Name], index: i})
		}
	}
	if len(jobs) == 0 {
		return retry, nil
	}
	c.openNew(jobs)
	var failed []newPartition
	for _, j := range jobs {
		if j.err != nil {
			failed = append(failed, j)
			c.cfg.Logger.Error("cannot create a partition assigned to this broker; retrying", "topic", j.topic.Name, "partition", j.index, "err", j.err)
			if createErrs == nil {
				createErrs = map[string]error{}
			}
			if createErrs[j.topic.Name] == nil {
				createErrs[j.topic.Name] = j.err
			}
		}
	}
	if len(failed) > 0 {
		c.discard(failed, func(j newPartition) bool { return j.err != nil })
	}
	c.publish(jobs, func(j newPartition) bool { return j.err == nil })
	return retry || len(failed) > 0, createErrs
}

// appliedConfig is what the reconciler last applied for a topic.
type appliedConfig struct {
	id      metadata.TopicID
	configs map[string]string
}

func (c *Cluster) runDeleteHooks(topic string) {
	c.hooksMu.Lock()
	hooks := append([]func(string){}, c.onTopicDeleted...)
	c.hooksMu.Unlock()
	for _, fn := range hooks {
		fn(topic)
	}
}

// RunFencing runs on every node until ctx ends: while this node leads the
// quorum, it fences the brokers the quorum has not heard from within
// broker.session.timeout.ms and unfences those it hears again (a broker
// that restarts registers anew). Brokers are the quorum's voters (every
// Strom node is broker and controller), so raft's own heartbeats are the
// brokers' heartbeats.
func (c *Cluster) RunFencing(ctx context.Context) {
	if c.cfg.Quorum == nil {
		return
	}
	s := c.cfg.Broker.Settings()
	timeout := s.BrokerSessionTimeout
	every := s.BrokerHeartbeatInterval
	if every <= 0 {
		every = 2 * time.Second
	}
	lastSeen := map[int32]time.Time{}
	t := time.NewTicker(every / 2)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if c.cfg.Quorum.Leader() != c.NodeID() {
			clear(lastSeen)
			continue
		}
		now := c.cfg.Now()
		active := c.cfg.Quorum.Active()
		for _, b := range c.store.Brokers() {
			if b.ID == c.NodeID() || active[b.ID] {
				lastSeen[b.ID] = now
			} else if _, ok := lastSeen[b.ID]; !ok {
				lastSeen[b.ID] = now // this leader starts its own clock
			}
			dead := now.Sub(lastSeen[b.ID]) > timeout
			if dead != b.Fenced {
				if err := c.store.FenceBroker(b.ID, dead); err != nil {
					c.cfg.Logger.Warn("cannot change a broker's fencing", "broker", b.ID, "fence", dead, "err", err)
					continue
				}
				c.cfg.Logger.Info("broker fencing changed", "broker", b.ID, "fenced", dead)
			}
		}
	}
}

// OffsetsLeader returns the node that coordinates groups: the leader of the
// offsets topic's partition, the topic created first if it does not exist
// (as Kafka creates it at the first FindCoordinator). On a single node it
// is this node, once the partition is open.
func (c *Cluster) OffsetsLeader() (int32, error) {
	if !c.Replicated() {
		if _, err := c.OffsetsPartition(true); err != nil {
			return -1, err
		}
		return c.NodeID(), nil
	}
	t, ok := c.store.Topic(OffsetsTopic)
	if !ok {
		if _, err := c.CreateTopic(OffsetsTopic, 1, nil, false); err != nil && !errors.Is(err, metadata.ErrTopicExists) {
			return -1, err
		}
		if t, ok = c.store.Topic(OffsetsTopic); !ok {
			return -1, fmt.Errorf("%w: %s", ErrLeaderNotAvailable, OffsetsTopic)
		}
	}
	lead := c.Leader(&t, 0)
	if lead < 0 {
		return -1, fmt.Errorf("%w: %s-0", ErrLeaderNotAvailable, OffsetsTopic)
	}
	if lead == c.NodeID() {
		if _, err := c.Partition(OffsetsTopic, 0); err != nil {
			return -1, err // not open yet here: the client retries
		}
	}
	return lead, nil
}
