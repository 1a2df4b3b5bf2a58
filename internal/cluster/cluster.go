// Package cluster is the broker's state on one node: the topic metadata
// store, the partitions (each a log plus producer state) in the data
// directory, and producer id allocation. The protocol handlers and the
// console's in-process paths call it; it knows nothing of Kafka's wire
// format or error codes.
//
// Invariants:
//   - Every topic in the metadata store has all its partitions open.
//   - Data is deleted only on a durable record of its deletion. Deleting a
//     topic replaces it in the metadata file by a tombstone (name and id) in
//     one atomic rewrite, then removes its directories. At start, a
//     partition directory that no topic claims is removed only when a
//     tombstone names it (by the topic id in its partition.metadata) or it
//     holds no record; any other is set aside as <dir>.<random>-stray, never
//     deleted.
//   - A data directory with partition directories holding records but no
//     metadata file (a bad restore, a copy that skipped it) does not start: ErrNoMetadata
//     says how to rebuild the file from the directories (RebuildMetadata,
//     `strom storage rebuild-metadata`).
//   - Opening needs no free space (package logdir); a partition that cannot
//     write is still opened and served for reads, and UnhealthyPartitions
//     says which (Degraded: retried; Failed: until a restart).
//   - A config change (topic overrides, dynamic broker configs) is persisted
//     before it is pushed to the open logs, and a partition that opens
//     meanwhile gets the new values (configMu).
//
// Concurrency: methods are safe for concurrent use. Run is started by Open
// and stopped by Close.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
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
}

// Cluster is the single-node broker state.
type Cluster struct {
	cfg   Config
	dir   *logdir.Dir
	store *metadata.Store

	mu    sync.RWMutex
	parts map[logdir.Partition]*partition.Partition

	// growMu serialises the changes that add partitions, so that two
	// concurrent requests cannot both pass max.broker.partitions.
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
	dir, err := logdir.Open(cfg.FS, cfg.DataDir, cfg.Logger)
	if err != nil {
		return nil, err
	}
	store, err := metadata.OpenStore(cfg.FS, cfg.DataDir)
	if err != nil {
		dir.Close()
		return nil, err
	}
	c := &Cluster{cfg: cfg, dir: dir, store: store, parts: map[logdir.Partition]*partition.Partition{}}
	c.loadDynamicConfigs()
	if err := c.sortOutDirectories(); err != nil {
		c.closeAll()
		return nil, err
	}
	for _, t := range store.Topics() {
		for i := int32(0); i < t.Partitions; i++ {
			if err := c.openPartition(t, i); err != nil {
				c.closeAll()
				return nil, err
			}
		}
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
		c.snapshotLoop(ctx, cfg.Broker.Settings().LogFlushOffsetCheckpointInterval)
	}()
	return c, nil
}

func (c *Cluster) openPartition(t metadata.Topic, i int32) error {
	c.configMu.RLock()
	defer c.configMu.RUnlock()
	if cur, ok := c.store.Topic(t.Name); ok {
		t.Configs = cur.Configs // a change may have come since t was read
	}
	key := logdir.Partition{Topic: t.Name, Partition: i}
	if id, ok := c.dir.TopicIDOf(key); ok && metadata.TopicID(id) != t.ID {
		// Another topic of this name left it: a deletion whose removal
		// failed, or a restored copy.
		if err := c.removeOrSetAside(key, c.tombstoned(key.Topic, id, true)); err != nil {
			return err
		}
	}
	// Resolved afresh: a topic created under the name of a deleted one
	// must not inherit its settings.
	s := c.resolveSettings(t)
	c.settings.Store(t.Name, s)
	l, err := c.dir.OpenLog(key, s.Log)
	if err != nil {
		return fmt.Errorf("open %s-%d: %w", t.Name, i, err)
	}
	if err := c.dir.MarkTopicID(key, t.ID); err != nil {
		// A hint for later starts, not data: a full disk must not keep
		// the partition from opening.
		c.cfg.Logger.Warn("cannot write the partition's topic id", "partition", c.dir.PartitionDir(key), "err", err)
	}
	p, err := partition.Open(t.Name, i, l, partition.Options{FS: c.cfg.FS, Now: c.cfg.Now})
	if err != nil {
		return err
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
// package log: Degraded takes no writes for now and retries, Failed takes
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

// DataDir is the data directory's path (DescribeLogDirs reports it).
func (c *Cluster) DataDir() string { return c.dir.Path() }

// Topics returns all topics, sorted by name.
func (c *Cluster) Topics() []metadata.Topic { return c.store.Topics() }

// Topic returns one topic.
func (c *Cluster) Topic(name string) (metadata.Topic, bool) { return c.store.Topic(name) }

// TopicByID finds a topic by id.
func (c *Cluster) TopicByID(id metadata.TopicID) (metadata.Topic, bool) { return c.store.TopicByID(id) }

// OffsetsTopic is the internal topic where the group coordinator keeps
// committed offsets and group metadata.
const OffsetsTopic = "__consumer_offsets"

// offsetsTopicConfigs are the offsets topic's overrides: its records are
// never deleted by age or size (the coordinator compacts the log itself),
// segments of 100 MiB (Kafka's offsets.topic.segment.bytes), and batches up
// to 10 MiB (a large group's metadata with its assignments).
var offsetsTopicConfigs = map[string]string{
	"retention.ms":      "-1",
	"retention.bytes":   "-1",
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

// CreateTopic validates and creates a topic with its partitions. With
// validateOnly nothing is created. The offsets topic is always created
// internal, with its own configs.
func (c *Cluster) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (metadata.Topic, error) {
	if partitions == -1 {
		partitions = c.cfg.Broker.Settings().NumPartitions
	}
	t := metadata.Topic{Name: name, Partitions: partitions, Configs: configs}
	if name == OffsetsTopic {
		t.Internal = true
		t.Configs = map[string]string{}
		for k, v := range configs {
			t.Configs[k] = v
		}
		for k, v := range offsetsTopicConfigs {
			t.Configs[k] = v
		}
	}
	if validateOnly {
		if err := metadata.ValidTopicName(name); err != nil {
			return t, err
		}
		if partitions <= 0 {
			return t, fmt.Errorf("%w: %d", metadata.ErrInvalidPartitions, partitions)
		}
		for k, v := range configs {
			if err := metadata.ValidateTopicConfig(k, v); err != nil {
				return t, err
			}
		}
		if _, ok := c.store.Topic(name); ok {
			return t, fmt.Errorf("%w: %q", metadata.ErrTopicExists, name)
		}
		return t, c.checkPartitionLimit(name, partitions)
	}
	c.growMu.Lock()
	defer c.growMu.Unlock()
	if err := c.checkPartitionLimit(name, partitions); err != nil {
		return t, err
	}
	t, err := c.store.CreateTopic(t)
	if err != nil {
		return t, err
	}
	for i := int32(0); i < t.Partitions; i++ {
		if err := c.openPartition(t, i); err != nil {
			return t, err
		}
	}
	c.cfg.Logger.Info("created topic", "topic", name, "partitions", t.Partitions)
	return t, nil
}

// checkPartitionLimit refuses adding n partitions to topic when the broker
// would then hold more than max.broker.partitions. Each partition keeps a
// file open and takes a moment to create, so without a bound one
// CreateTopics request asking for 2^31-1 partitions holds its connection
// for days, runs the process out of file descriptors, and makes every
// Metadata answer enormous. The internal offsets topic is never refused.
// growMu must be held for the check to stay true until the partitions
// exist.
func (c *Cluster) checkPartitionLimit(topic string, n int32) error {
	limit := c.cfg.Broker.Settings().MaxBrokerPartitions
	if limit < 0 || topic == OffsetsTopic {
		return nil
	}
	var have int64
	for _, t := range c.store.Topics() {
		have += int64(t.Partitions)
	}
	if have+int64(n) > limit {
		return fmt.Errorf("%w: %d more partitions would make %d on this broker; max.broker.partitions is %d",
			metadata.ErrInvalidPartitions, n, have+int64(n), limit)
	}
	return nil
}

// DeleteTopic removes a topic and its data.
func (c *Cluster) DeleteTopic(name string) error {
	t, ok := c.store.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	if err := c.store.DeleteTopic(name); err != nil {
		return err
	}
	c.settings.Delete(name)
	c.mu.Lock()
	for i := int32(0); i < t.Partitions; i++ {
		delete(c.parts, logdir.Partition{Topic: name, Partition: i})
	}
	c.mu.Unlock()
	var first error
	for i := int32(0); i < t.Partitions; i++ {
		if err := c.dir.DeleteLog(logdir.Partition{Topic: name, Partition: i}); err != nil && first == nil {
			first = err
		}
	}
	if first == nil {
		c.store.ForgetDeleted(t.ID)
	}
	c.cfg.Logger.Info("deleted topic", "topic", name)
	c.hooksMu.Lock()
	hooks := append([]func(string){}, c.onTopicDeleted...)
	c.hooksMu.Unlock()
	for _, fn := range hooks {
		fn(name)
	}
	return first
}

// CreatePartitions grows a topic to count partitions.
func (c *Cluster) CreatePartitions(name string, count int32, validateOnly bool) error {
	t, ok := c.store.Topic(name)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	if count <= t.Partitions {
		return fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", metadata.ErrInvalidPartitions, name, t.Partitions)
	}
	c.growMu.Lock()
	defer c.growMu.Unlock()
	if err := c.checkPartitionLimit(name, count-t.Partitions); err != nil || validateOnly {
		return err
	}
	if err := c.store.SetPartitions(name, count); err != nil {
		return err
	}
	old := t.Partitions
	t.Partitions = count
	for i := old; i < count; i++ {
		if err := c.openPartition(t, i); err != nil {
			return err
		}
	}
	return nil
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

// Partition returns an open partition.
func (c *Cluster) Partition(topic string, index int32) (*partition.Partition, error) {
	c.mu.RLock()
	p, ok := c.parts[logdir.Partition{Topic: topic, Partition: index}]
	c.mu.RUnlock()
	if ok {
		return p, nil
	}
	if _, ok := c.store.Topic(topic); !ok {
		return nil, fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, topic)
	}
	return nil, fmt.Errorf("%w: %s-%d", ErrUnknownPartition, topic, index)
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
	c.dir.Close()
}

// Close stops background work, snapshots producer state and closes every
// log cleanly (the next start reads no data).
func (c *Cluster) Close() error {
	if c.stop != nil {
		c.stop()
		c.done.Wait()
	}
	c.snapshotAll()
	return c.dir.Close()
}
