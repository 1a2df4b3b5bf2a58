package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/replica"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// ErrUnknownPartition is returned for a partition index the topic lacks.
var ErrUnknownPartition = errors.New("unknown partition")

// Config configures Open.
type Config struct {
	DataDir string
	FS      vfs.FS
	Broker  *metadata.BrokerConfig
	Logger  *slog.Logger
	Now     func() time.Time
	// FileLimit is the process's open-file limit (RLIMIT_NOFILE, soft),
	// from which MaxPartitions and the size of the sealed-segment
	// descriptor cache are derived (see FileBudget); 0 bounds nothing.
	FileLimit int64
	// ClusterID, when set, is the cluster this node belongs to: a data
	// directory formatted for another is refused, an unformatted one is
	// formatted with it. Empty: FreshClusterID, or a random id, at the
	// first start.
	ClusterID string
	// FreshClusterID formats a new data directory when ClusterID is empty
	// (a cluster's nodes derive it from their common voters).
	FreshClusterID string
	// OpenMetadata, when set, makes this node one of a cluster: Open calls
	// it once the data directory is locked and identified, and it returns
	// the replicated metadata store, caught up with what the quorum had
	// committed on this node. The node holds the partitions whose replicas
	// name it. Nil: a single node with its own metadata file.
	OpenMetadata func(clusterID string) (*metadata.Store, error)
	// Quorum tells a cluster node who leads the metadata quorum.
	Quorum Quorum
	// RaftSend sends a raft message of a partition's group (replicas.go)
	// to its node; nil on a single node, whose partitions have one
	// replica. It must not block.
	RaftSend func(group uint64, m *raftpb.Message)
	// RaftSendSnapshot, when set, streams a raft snapshot whose region is
	// too large to ride in the message (replica.Config.SendSnapshot) on
	// the transport's snapshot stream; ReplicaSnapshotSink is the
	// receiving end.
	RaftSendSnapshot func(group uint64, m *raftpb.Message, body replica.SnapshotBody, done func(error))
	// PeerConnected reports whether node has a raft transport connection
	// to this one (liveness.go: a quiesced group's followers wake when
	// their leader's node has none). Nil: only fencing counts.
	PeerConnected func(node int32) bool
	// PeerProbe asks node's process to answer and reports whether it did
	// before ctx ended (false at once when it is not connected): Metadata
	// probes the leaders it names (failover.go, ProbeLeaders). Nil: no
	// probes.
	PeerProbe func(ctx context.Context, node int32) bool
	// ReplicaMetrics, when set, is given to every partition replica here
	// (replica.Config.Metrics): elections, proposals, commit latency.
	ReplicaMetrics *replica.Metrics
}

// Cluster is the single-node broker state.
type Cluster struct {
	cfg    Config
	budget FileBudget
	dir    *logdir.Dir
	meta   logdir.Meta // the data dir's identity (meta.properties)
	store  *metadata.Store

	mu    sync.RWMutex
	parts map[logdir.Partition]*partition.Partition

	// growMu serialises the changes that add or remove topics and
	// partitions, so that two concurrent requests cannot both pass
	// MaxPartitions.
	growMu sync.Mutex

	// configMu orders config changes against partition opening: a change
	// (topic overrides, dynamic broker configs) holds it to store the new
	// values and push them to the open logs; openPartition holds it for
	// reading from resolving its log's config until the partition is
	// registered, so no partition opens with a config a change missed.
	// Lock order: configMu before mu.
	configMu sync.RWMutex
	// settings holds each topic's *metadata.TopicSettings, swapped whole
	// (under configMu) when its configs or the dynamic broker configs
	// change, removed when the topic is deleted.
	settings sync.Map

	pidMu          sync.Mutex
	pidNext, pidHi int64

	hooksMu        sync.Mutex
	onTopicDeleted []func(topic string)

	// A cluster node's reconciler (replicated.go): its wake-up, and what
	// it last applied (touched by the reconciler only, under growMu).
	reconcileWake  chan struct{}
	appliedConfigs map[string]appliedConfig
	appliedDyn     [2]map[string]string

	// reps are the raft groups of this node's replicated partitions.
	reps replicaSet
	// elect carries preferred-leader requests from the metadata to the
	// membership loop (reassign.go).
	elect chan metadata.ElectPreferred
	// membershipDirty: a reassignment record applied or a replica
	// started since the membership loop last looked at the metadata.
	membershipDirty atomic.Bool
	live            liveness  // liveness.go: nodes down, and the replicas' ticker
	downAt          downSince // failover.go: when each node was first seen down

	stop context.CancelFunc
	done sync.WaitGroup
}

// Open opens the data directory and every topic's partitions.
func Open(cfg Config) (*Cluster, error) {
	if cfg.FS == nil {
		cfg.FS = vfs.Default
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Broker == nil {
		cfg.Broker, _ = metadata.NewBrokerConfig(nil)
	}
	budget := NewFileBudget(cfg.FileLimit, int64(cfg.Broker.Settings().MaxConnections))
	dir, err := logdir.OpenWith(cfg.FS, cfg.DataDir, logdir.Options{Logger: cfg.Logger, CachedFiles: budget.Cache, Workers: budget.Workers})
	if err != nil {
		return nil, err
	}
	var meta logdir.Meta
	if cfg.ClusterID != "" {
		meta, err = dir.Identify(cfg.Broker.Settings().NodeID, cfg.ClusterID)
	} else {
		meta, err = dir.IdentifyOr(cfg.Broker.Settings().NodeID, cfg.FreshClusterID)
	}
	if errors.Is(err, logdir.ErrMetaWrite) {
		// A full disk at the first start of a directory written before
		// meta.properties existed: serve (reads) under an identity the next
		// start with room writes down.
		cfg.Logger.Warn("cannot write meta.properties; the cluster id holds for this run only", "err", err)
	} else if err != nil {
		dir.Close()
		return nil, err
	}
	var store *metadata.Store
	if cfg.OpenMetadata != nil {
		store, err = cfg.OpenMetadata(meta.ClusterID)
	} else {
		store, err = metadata.OpenStore(cfg.FS, cfg.DataDir)
	}
	if err != nil {
		dir.Close()
		return nil, err
	}
	c := &Cluster{cfg: cfg, budget: budget, dir: dir, meta: meta, store: store, parts: map[logdir.Partition]*partition.Partition{},
		appliedConfigs: map[string]appliedConfig{}}
	c.loadDynamicConfigs()
	if store.Replicated() {
		// Loaded now: the reconciler's first pass need not apply them to
		// every log again.
		node := strconv.FormatInt(int64(c.NodeID()), 10)
		c.appliedDyn = [2]map[string]string{store.BrokerConfigs(node), store.BrokerConfigs("")}
	}
	if budget.Limit > 0 {
		cfg.Logger.Info("open-file budget", "limit", budget.Limit, "max_partitions", c.MaxPartitions(),
			"connections", budget.Connections, "cached_segment_files", budget.Cache, "transient", budget.Transient)
	}
	if n, limit := c.partitionCount(), c.MaxPartitions(); limit >= 0 && n > limit {
		cfg.Logger.Warn("the data directory holds more partitions than this broker may create; opening them all, creating none",
			"partitions", n, "limit", limit, "max.broker.partitions", cfg.Broker.Settings().MaxBrokerPartitions,
			"open_file_limit", budget.Limit)
	}
	stamped, unclaimed, err := c.sortOutDirectories()
	if err != nil {
		c.closeAll()
		return nil, err
	}
	if err := c.openAll(store.Topics(), stamped); err != nil {
		c.closeAll()
		return nil, err
	}
	dir.Recovered()
	if !dir.WasClean() {
		// Recovery made every log durable to its end: say so now, so
		// that a kill before the first periodic checkpoint does not
		// recover the same data again.
		if err := dir.Checkpoint(); err != nil {
			cfg.Logger.Warn("cannot write the checkpoints after recovery; retrying every interval", "err", err)
		}
	}
	if bs := cfg.Broker.Settings(); bs.LogCleanerEnable {
		// Owned by the directory: its Close stops the workers.
		dir.StartCleaner(logdir.CleanerOptions{Threads: bs.LogCleanerThreads, DedupeBufferBytes: bs.LogCleanerDedupeBuffer,
			IOMaxBytesPerSecond: bs.LogCleanerIOMaxBytesPerS, Backoff: bs.LogCleanerBackoff, Now: cfg.Now,
			Bound: c.cleanBound})
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.stop = cancel
	c.done.Add(2)
	go func() {
		defer c.done.Done()
		dir.Run(ctx, logdir.Intervals{
			Checkpoint: cfg.Broker.Settings().LogFlushOffsetCheckpointInterval,
			Retention:  cfg.Broker.Settings().LogRetentionCheckInterval,
		}, cfg.Now)
	}()
	go func() {
		defer c.done.Done()
		// Producer snapshots make their partition durable first: every
		// minute at most (the recovery points, cheap, are checkpointed
		// every second by default).
		c.snapshotLoop(ctx, max(cfg.Broker.Settings().LogFlushOffsetCheckpointInterval, time.Minute))
	}()
	if store.Replicated() {
		c.reconcile()
		c.startReconciler(ctx)
		if len(unclaimed) > 0 {
			cfg.Logger.Info("partition directories this node's metadata view does not claim (yet): left in place until the quorum confirms the view",
				"directories", len(unclaimed), "first", c.dir.PartitionDir(unclaimed[0]))
			c.done.Add(1)
			go func() {
				defer c.done.Done()
				c.sweepUnclaimed(ctx, unclaimed)
			}()
		}
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			c.publishLeaders(ctx, 200*time.Millisecond)
		}()
		c.startMembership(ctx, 200*time.Millisecond)
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			c.replicaRetention(ctx, cfg.Broker.Settings().LogRetentionCheckInterval)
		}()
		c.done.Add(1)
		go func() {
			defer c.done.Done()
			c.watchLiveness(ctx, livenessInterval)
		}()
	}
	return c, nil
}

// openAll opens every partition of topics that is this node's, Workers at
// a time: after a crash each log re-validates what its recovery point does
// not cover, and logs recover independently, so a restart takes about the
// time of the largest share rather than the sum. The first error stops it.
func (c *Cluster) openAll(topics []metadata.Topic, stamped map[logdir.Partition]bool) error {
	type job struct {
		t  *metadata.Topic
		i  int32
		st *metadata.TopicSettings
	}
	jobs := make(chan job)
	errs := make(chan error, 1)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range max(c.budget.Workers, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				if err := c.openPartition(*j.t, j.i, j.st, stamped[logdir.Partition{Topic: j.t.Name, Partition: j.i}]); err != nil {
					select {
					case errs <- err:
						close(stop)
					default:
					}
				}
			}
		}()
	}
feed:
	for k := range topics {
		t := &topics[k]
		// Resolved once per topic, afresh: a topic created under the name
		// of a deleted one must not inherit its settings.
		st := c.resolveSettings(*t)
		c.settings.Store(t.Name, st)
		if c.store.Replicated() {
			// What the reconciler's first pass would apply again (no
			// goroutine reads the map yet).
			c.appliedConfigs[t.Name] = appliedConfig{id: t.ID, configs: t.Configs}
		}
		for i := int32(0); i < t.Partitions; i++ {
			if !c.ours(t, i) {
				continue
			}
			select {
			case jobs <- job{t, i, st}:
			case <-stop:
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}

// openPartition opens partition i of t at start, after
// sortOutDirectories: a directory of another topic's id is gone by then,
// and stamped says this one names t already (else its id is written).
func (c *Cluster) openPartition(t metadata.Topic, i int32, s *metadata.TopicSettings, stamped bool) error {
	key := logdir.Partition{Topic: t.Name, Partition: i}
	l, err := c.dir.OpenLog(key, s.Log)
	if err != nil {
		return fmt.Errorf("open %s-%d: %w", t.Name, i, err)
	}
	if err := c.dir.WriteTopicID(key, t.ID, stamped); err != nil {
		// A hint for later starts, not data: a full disk must not keep
		// the partition from opening.
		c.cfg.Logger.Warn("cannot write the partition's topic id", "partition", c.dir.PartitionDir(key), "err", err)
	}
	p, err := partition.Open(t.Name, i, l, partition.Options{FS: c.cfg.FS, Now: c.cfg.Now})
	if err != nil {
		return err
	}
	if err := c.startReplica(&t, i, p); err != nil {
		return fmt.Errorf("open %s-%d: %w", t.Name, i, err)
	}
	c.mu.Lock()
	c.parts[key] = p
	c.mu.Unlock()
	return nil
}

func (c *Cluster) snapshotLoop(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Minute
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false // log when snapshots start and stop failing, not every round
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := c.snapshotAll()
			if n > 0 && !failing {
				c.cfg.Logger.Error("producer state snapshots failing; retrying every interval", "partitions", n, "err", err)
			} else if n == 0 && failing {
				c.cfg.Logger.Info("producer state snapshots written again")
			}
			failing = n > 0
		}
	}
}

// snapshotAll snapshots every partition's producer state, returning how
// many failed and the first error.
func (c *Cluster) snapshotAll() (int, error) {
	c.mu.RLock()
	ps := make([]*partition.Partition, 0, len(c.parts))
	for _, p := range c.parts {
		ps = append(ps, p)
	}
	c.mu.RUnlock()
	var n int
	var first error
	for _, p := range ps {
		if err := p.Snapshot(); err != nil {
			if n == 0 {
				first = err
			}
			n++
		}
	}
	return n, first
}

// PartitionHealth describes a partition whose storage is not Healthy (see
// package seglog: Degraded takes no writes for now and retries, Failed takes
// none until a restart).
type PartitionHealth = logdir.PartitionHealth

// UnhealthyPartitions returns the partitions whose storage is Degraded or
// Failed, sorted; usually none.
func (c *Cluster) UnhealthyPartitions() []PartitionHealth { return c.dir.Unhealthy() }

// StorageErrors returns the storage errors met since start, by kind
// (log.ErrorKind).
func (c *Cluster) StorageErrors() map[string]int64 { return c.dir.StorageErrors() }

// Broker returns the broker's configuration: static, with the dynamic
// configs (SetBrokerConfigs) above it.
func (c *Cluster) Broker() *metadata.BrokerConfig { return c.cfg.Broker }

// NodeID is this broker's id.
func (c *Cluster) NodeID() int32 { return c.cfg.Broker.Settings().NodeID }

// ClusterID is the cluster id the data directory was formatted with
// (meta.properties; the first start formats it with a random one).
func (c *Cluster) ClusterID() string { return c.meta.ClusterID }

// DataDir is the data directory's path (DescribeLogDirs reports it).
func (c *Cluster) DataDir() string { return c.dir.Path() }

// Topics returns all topics, sorted by name.
func (c *Cluster) Topics() []metadata.Topic { return c.store.Topics() }

// Topic returns one topic.
func (c *Cluster) Topic(name string) (metadata.Topic, bool) { return c.store.Topic(name) }

// TopicByID finds a topic by id.
func (c *Cluster) TopicByID(id metadata.TopicID) (metadata.Topic, bool) { return c.store.TopicByID(id) }

// TopicView returns one topic shared with the metadata, not copied: read
// only (metadata.Store.TopicView).
func (c *Cluster) TopicView(name string) (metadata.Topic, bool) { return c.store.TopicView(name) }

// TopicViewByID is TopicByID shared with the metadata, read only.
func (c *Cluster) TopicViewByID(id metadata.TopicID) (metadata.Topic, bool) {
	return c.store.TopicViewByID(id)
}

// OffsetsTopic is the internal topic where the group coordinator keeps
// committed offsets and group metadata.
const OffsetsTopic = "__consumer_offsets"

// offsetsTopicConfigs are the offsets topic's overrides, Kafka's: the log
// cleaner keeps the latest record of every key (cleanup.policy=compact;
// records are never deleted by age or size), segments of 100 MiB (Kafka's
// offsets.topic.segment.bytes), and batches up to 10 MiB (a large group's
// metadata with its assignments).
var offsetsTopicConfigs = map[string]string{
	"cleanup.policy":    "compact",
	"segment.bytes":     "104857600",
	"max.message.bytes": "10485760",
}

// OffsetsPartition returns partition 0 of the offsets topic. With create
// set, the topic is created (internal, one partition) if it does not exist
// yet, as Kafka creates it on first use; without, a missing topic is (nil,
// nil).
func (c *Cluster) OffsetsPartition(create bool) (*partition.Partition, error) {
	if p, err := c.Partition(OffsetsTopic, 0); err == nil {
		return p, nil
	}
	if !create {
		return nil, nil
	}
	if _, err := c.CreateTopic(OffsetsTopic, 1, nil, false); err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return nil, err
	}
	return c.Partition(OffsetsTopic, 0)
}

// OnTopicDeleted registers fn to be called after a topic is deleted (the
// group coordinator drops the topic's committed offsets).
func (c *Cluster) OnTopicDeleted(fn func(topic string)) {
	c.hooksMu.Lock()
	c.onTopicDeleted = append(c.onTopicDeleted, fn)
	c.hooksMu.Unlock()
}

// DeleteTopic removes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	if c.Replicated() {
		// Every node removes its partitions (and runs the hooks) when
		// the record applies.
		if err := c.store.DeleteTopic(name); err != nil {
			return err
		}
		c.cfg.Logger.Info("deleted topic", "topic", name)
		// This node's partitions go before the answer (the reconciler
		// would, a moment later), so that a topic created again under
		// the name right after is not served the old logs.
		c.reconcile()
		return nil
	}
	first, err := c.deleteTopic(name)
	if err != nil {
		return err
	}
	c.cfg.Logger.Info("deleted topic", "topic", name)
	// The hooks run without growMu: they may create the offsets topic.
	c.hooksMu.Lock()
	hooks := append([]func(string){}, c.onTopicDeleted...)
	c.hooksMu.Unlock()
	for _, fn := range hooks {
		fn(name)
	}
	return first
}

// deleteTopic replaces the topic by its tombstone in the metadata, then
// removes its partitions and their logs (and the tombstone once they are
// gone); the first error is the logs' removal's (the next start removes
// what is left), the second why nothing was done.
func (c *Cluster) deleteTopic(name string) (logsErr, err error) {
	// Not in the middle of a CreatePartitions of the same topic, which
	// would publish partitions of a deleted topic.
	c.growMu.Lock()
	defer c.growMu.Unlock()
	t, ok := c.store.Topic(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	if err := c.store.DeleteTopic(name); err != nil {
		return nil, err
	}
	c.settings.Delete(name)
	c.mu.Lock()
	for i := int32(0); i < t.Partitions; i++ {
		delete(c.parts, logdir.Partition{Topic: name, Partition: i})
	}
	c.mu.Unlock()
	first := c.dir.DeleteLogs(partitionKeys(name, 0, t.Partitions))
	if first == nil {
		c.store.ForgetDeleted(t.ID)
	}
	return first, nil
}

// SetTopicConfigs replaces a topic's config overrides and applies them to
// its open logs.
func (c *Cluster) SetTopicConfigs(name string, cfg map[string]string, validateOnly bool) error {
	t, ok := c.store.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	for k, v := range cfg {
		if err := metadata.ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	if validateOnly {
		return nil
	}
	if c.Replicated() {
		// Applied by every node's reconciler.
		if err := c.store.SetConfigs(name, cfg); err != nil {
			return err
		}
		c.reconcile()
		return nil
	}
	c.configMu.Lock()
	defer c.configMu.Unlock()
	if err := c.store.SetConfigs(name, cfg); err != nil {
		return err
	}
	t.Configs = cfg
	c.applySettingsLocked(t)
	return nil
}

// TopicConfigs resolves every config of a topic with its source.
func (c *Cluster) TopicConfigs(name string) ([]metadata.ConfigValue, error) {
	t, ok := c.store.Topic(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	return metadata.Resolve(t.Configs, c.cfg.Broker), nil
}

// hosted is this node's open partition index of topic, if any (a leader,
// a follower or a single copy).
func (c *Cluster) hosted(topic string, index int32) (*partition.Partition, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	p, ok := c.parts[logdir.Partition{Topic: topic, Partition: index}]
	return p, ok
}

// Partition returns an open partition.
func (c *Cluster) Partition(topic string, index int32) (*partition.Partition, error) {
	p, ok := c.hosted(topic, index)
	if ok && p.Replicated() && p.LeaderEpoch() < 0 {
		// A follower (or a leader that has not committed in its term
		// yet): clients go to the leader.
		if t, ok := c.store.Topic(topic); ok {
			if lead := c.PartitionLeader(&t, index).Leader; lead >= 0 && lead != c.NodeID() {
				return nil, fmt.Errorf("%w: %s-%d is led by broker %d", ErrNotLeader, topic, index, lead)
			}
		}
		return nil, fmt.Errorf("%w: %s-%d: this replica does not lead", ErrNotLeader, topic, index)
	}
	if ok {
		return p, nil
	}
	t, ok := c.store.Topic(topic)
	if !ok {
		return nil, fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, topic)
	}
	if index < 0 || index >= t.Partitions {
		return nil, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, index)
	}
	if lead := c.PartitionLeader(&t, index).Leader; lead != c.NodeID() && lead >= 0 {
		return nil, fmt.Errorf("%w: %s-%d is led by broker %d", ErrNotLeader, topic, index, lead)
	}
	return nil, fmt.Errorf("%w: %s-%d", ErrLeaderNotAvailable, topic, index)
}

// AwaitLeadership waits while this node's replica of the partition is
// becoming its leader (a hand-over's transferee, an election's candidate,
// or a leader whose epoch is not confirmed yet), at most max, and reports
// whether there is such a replica here to ask Partition again about. A
// produce sent here by a leader hint then finds the partition led instead
// of being refused. (A leader handing over is waited for on its partition:
// Partition.WaitLeadershipSettled.)
func (c *Cluster) AwaitLeadership(topic string, index int32, max time.Duration) bool {
	p, ok := c.hosted(topic, index)
	if !ok || !p.Replicated() {
		return false
	}
	p.WaitLeadershipSettled(max)
	return true
}

// Partitions returns the open partitions of a topic in index order.
func (c *Cluster) Partitions(topic string) []*partition.Partition {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []*partition.Partition
	for k, p := range c.parts {
		if k.Topic == topic {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// producerIDBlock is how many ids are reserved per persisted allocation.
const producerIDBlock = 1000

// AllocateProducerID returns a producer id never handed out before.
func (c *Cluster) AllocateProducerID() (int64, error) {
	c.pidMu.Lock()
	defer c.pidMu.Unlock()
	if c.pidNext >= c.pidHi {
		first, err := c.store.AllocateProducerIDs(producerIDBlock)
		if err != nil {
			return 0, err
		}
		c.pidNext, c.pidHi = first, first+producerIDBlock
	}
	id := c.pidNext
	c.pidNext++
	return id, nil
}

// Checkpoint writes the recovery points and log start offsets now (after
// DeleteRecords, so a restart keeps the new start).
func (c *Cluster) Checkpoint() error { return c.dir.Checkpoint() }

func (c *Cluster) closeAll() {
	c.stopReplicas(nil)
	c.dir.Close()
}

// Close stops background work, snapshots producer state and closes every
// log cleanly (the next start reads no data).
func (c *Cluster) Close() error {
	if c.stop != nil {
		c.stop()
		c.done.Wait()
	}
	c.stopReplicas(nil)
	c.stopReplicaTicker()
	c.snapshotAll()
	return c.dir.Close()
}
