package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// TopicSpec is one topic to create.
type TopicSpec struct {
	Name string
	// Partitions is the partition count; -1 takes num.partitions.
	Partitions int32
	Configs    map[string]string
	// ReplicationFactor is the replicas per partition in a cluster; 0 or
	// -1 takes default.replication.factor. A single node holds one.
	ReplicationFactor int16
	// Assignment, in a cluster, is a manual placement: each partition's
	// replicas (checked by the caller against the live brokers).
	Assignment [][]int32
}

// CreateResult is the outcome of one TopicSpec: the topic as created (or,
// with validateOnly, as it would be), or why it was not.
type CreateResult struct {
	Topic metadata.Topic
	Err   error
}

// CreateTopic validates and creates a topic with its partitions. With
// validateOnly nothing is created. The offsets topic is always created
// internal, with its own configs.
func (c *Cluster) CreateTopic(name string, partitions int32, configs map[string]string, validateOnly bool) (metadata.Topic, error) {
	r := c.CreateTopics([]TopicSpec{{Name: name, Partitions: partitions, Configs: configs}}, validateOnly)[0]
	return r.Topic, r.Err
}

// CreateTopics validates and creates topics, answering for each on its own
// as Kafka does: a topic that fails a check, does not fit under
// MaxPartitions (checked in request order) or whose logs cannot be created
// is not created at all, and the others are. The metadata is written once
// for the whole request. With validateOnly every check runs and nothing is
// created.
func (c *Cluster) CreateTopics(specs []TopicSpec, validateOnly bool) []CreateResult {
	res := make([]CreateResult, len(specs))
	c.growMu.Lock()
	// No config change slips between resolving the new logs' configs and
	// publishing them (see configMu).
	c.configMu.RLock()
	unlock := sync.OnceFunc(func() { c.configMu.RUnlock(); c.growMu.Unlock() })
	defer unlock()
	have := c.partitionCount()
	inRequest := make(map[string]bool, len(specs))
	var ok []int // indexes of specs that passed every check
	for i, sp := range specs {
		t := c.newTopic(sp)
		res[i].Topic = t
		if err := c.checkNewTopic(t, inRequest); err != nil {
			res[i].Err = err
			continue
		}
		if err := c.checkPartitionLimit(t.Name, have, t.Partitions); err != nil {
			res[i].Err = err
			continue
		}
		inRequest[t.Name] = true
		have += int64(t.Partitions)
		ok = append(ok, i)
	}
	if validateOnly || len(ok) == 0 {
		return res
	}
	if c.Replicated() {
		// The commit may wait for a quorum leader (an election, a
		// partition): it holds no lock that other creations or the
		// reconciler need. Logs are made when the record applies, and
		// the state machine refuses a name taken meanwhile.
		unlock()
		c.createReplicated(res, specs, ok)
		return res
	}
	// The ids are chosen now: each new directory records its topic's.
	for _, i := range ok {
		rand.Read(res[i].Topic.ID[:]) // never fails: Go crashes the program instead
	}

	// Create every partition's log, then keep the topics whose partitions
	// all opened; the others' logs are removed again.
	var jobs []newPartition
	for _, i := range ok {
		jobs = append(jobs, c.newPartitions(res[i].Topic, 0)...)
	}
	c.openNew(jobs)
	failed := map[string]error{}
	for _, j := range jobs {
		if j.err != nil && failed[j.topic.Name] == nil {
			failed[j.topic.Name] = j.err
		}
	}
	var created []metadata.Topic
	var createdAt []int
	for _, i := range ok {
		if err := failed[res[i].Topic.Name]; err != nil {
			res[i].Err = fmt.Errorf("create topic %q: %w", res[i].Topic.Name, err)
			continue
		}
		created = append(created, res[i].Topic)
		createdAt = append(createdAt, i)
	}
	if len(failed) > 0 {
		c.discard(jobs, func(j newPartition) bool { return failed[j.topic.Name] != nil })
	}
	if len(created) == 0 {
		return res
	}
	stored, err := c.store.CreateTopics(created)
	if err != nil {
		c.discard(jobs, func(j newPartition) bool { return failed[j.topic.Name] == nil })
		for _, i := range createdAt {
			res[i].Err = fmt.Errorf("create topic %q: %w", res[i].Topic.Name, err)
		}
		return res
	}
	for k, i := range createdAt {
		res[i].Topic = stored[k]
	}
	c.publish(jobs, func(j newPartition) bool { return failed[j.topic.Name] == nil })
	for _, t := range stored {
		c.cfg.Logger.Info("created topic", "topic", t.Name, "partitions", t.Partitions)
	}
	return res
}

// newTopic is the topic a spec asks for, with the broker's defaults and
// the offsets topic's own settings applied.
func (c *Cluster) newTopic(sp TopicSpec) metadata.Topic {
	if sp.Partitions == -1 {
		sp.Partitions = c.cfg.Broker.Settings().NumPartitions
	}
	t := metadata.Topic{Name: sp.Name, Partitions: sp.Partitions, Configs: sp.Configs}
	if internal, ok := internalTopicConfigs(sp.Name); ok {
		t.Internal = true
		t.Configs = map[string]string{}
		for k, v := range sp.Configs {
			t.Configs[k] = v
		}
		for k, v := range internal {
			t.Configs[k] = v
		}
	}
	return t
}

// checkNewTopic makes the store's checks before anything is created.
func (c *Cluster) checkNewTopic(t metadata.Topic, inRequest map[string]bool) error {
	if err := metadata.ValidTopicName(t.Name); err != nil {
		return err
	}
	if t.Name+"-0" == logdir.ClusterMetadataDir {
		return fmt.Errorf("%w: %q is the metadata log's name", metadata.ErrInvalidTopic, t.Name)
	}
	if t.Partitions <= 0 {
		return fmt.Errorf("%w: %d", metadata.ErrInvalidPartitions, t.Partitions)
	}
	for k, v := range t.Configs {
		if err := metadata.ValidateTopicConfig(k, v); err != nil {
			return err
		}
	}
	if _, ok := c.store.Topic(t.Name); ok || inRequest[t.Name] {
		return fmt.Errorf("%w: %q", metadata.ErrTopicExists, t.Name)
	}
	return nil
}

// CreatePartitions grows a topic to count partitions: all the new
// partitions are created, or none (see CreateTopics).
//
// In a cluster, assignment (one replica list per new partition, as the
// handler checked them) replaces the placement when given; it must have
// the topic's replication factor.
func (c *Cluster) CreatePartitions(name string, count int32, validateOnly bool, assignment ...[]int32) error {
	proposed, err := c.createPartitions(name, count, validateOnly, assignment...)
	if proposed && err == nil {
		// This node's new replicas open before the answer (see
		// createReplicated).
		c.reconcile()
	}
	return err
}

// createPartitions is CreatePartitions under its locks; proposed: the
// change went through the metadata quorum (the reconciler opens the
// partitions).
func (c *Cluster) createPartitions(name string, count int32, validateOnly bool, assignment ...[]int32) (proposed bool, err error) {
	c.growMu.Lock()
	defer c.growMu.Unlock()
	c.configMu.RLock()
	defer c.configMu.RUnlock()
	t, ok := c.store.Topic(name)
	if !ok {
		return false, fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	if count <= t.Partitions {
		return false, fmt.Errorf("%w: topic %q has %d partitions; the count can only grow", metadata.ErrInvalidPartitions, name, t.Partitions)
	}
	if err := c.checkPartitionLimit(name, c.partitionCount(), count-t.Partitions); err != nil || validateOnly {
		return false, err
	}
	if c.Replicated() {
		rf := int16(1)
		if len(t.Replicas) > 0 {
			rf = int16(len(t.Replicas[0]))
		}
		replicas := assignment
		if len(replicas) == 0 {
			var err error
			if replicas, err = c.placement(count-t.Partitions, rf); err != nil {
				return false, err
			}
		} else if int32(len(replicas)) != count-t.Partitions {
			return false, fmt.Errorf("%w: %d replica lists for %d new partitions", metadata.ErrInvalidReplicaAssignment, len(replicas), count-t.Partitions)
		}
		for _, r := range replicas {
			if len(r) != int(rf) {
				return false, fmt.Errorf("%w: replicas %v for a topic of replication factor %d", metadata.ErrInvalidReplicaAssignment, r, rf)
			}
		}
		if err := c.store.SetPartitions(name, count, replicas...); err != nil {
			return false, err
		}
		c.cfg.Logger.Info("created partitions", "topic", name, "partitions", count)
		return true, nil
	}
	old := t.Partitions
	t.Partitions = count
	jobs := c.newPartitions(t, old)
	c.openNew(jobs)
	for _, j := range jobs {
		if j.err != nil {
			c.discard(jobs, func(newPartition) bool { return true })
			return false, fmt.Errorf("create partitions of %q: %w", name, j.err)
		}
	}
	if err := c.store.SetPartitions(name, count); err != nil {
		c.discard(jobs, func(newPartition) bool { return true })
		return false, err
	}
	c.publish(jobs, func(newPartition) bool { return true })
	c.cfg.Logger.Info("created partitions", "topic", name, "partitions", count)
	return false, nil
}

// newPartition is one partition being created, and its outcome.
type newPartition struct {
	topic *metadata.Topic
	index int32
	part  *partition.Partition
	err   error
	// notOurs: the directory under this name was there before and is
	// not this request's to remove.
	notOurs  bool
	settings *metadata.TopicSettings // the topic's, stored at publish
}

// newPartitions lists the partitions of t from index from on.
func (c *Cluster) newPartitions(t metadata.Topic, from int32) []newPartition {
	out := make([]newPartition, 0, t.Partitions-from)
	for i := from; i < t.Partitions; i++ {
		out = append(out, newPartition{topic: &t, index: i})
	}
	return out
}

// openNew creates the jobs' partitions: their logs (Workers at a time),
// then their producer state (none yet). A directory already under a new
// partition's name is first removed or set aside (removeOrSetAside).
func (c *Cluster) openNew(jobs []newPartition) {
	keys := make([]logdir.Partition, len(jobs))
	cfgs := make([]seglog.Config, len(jobs))
	ids := make([][16]byte, len(jobs))
	var st *metadata.TopicSettings
	var of *metadata.Topic
	for k, j := range jobs {
		keys[k] = logdir.Partition{Topic: j.topic.Name, Partition: j.index}
		ids[k] = j.topic.ID
		// One stat per new partition, not a listing of the data directory:
		// creating topics one request at a time must stay linear.
		if _, err := c.cfg.FS.Stat(c.dir.PartitionDir(keys[k])); err == nil {
			id, hasID := c.dir.TopicIDOf(keys[k])
			if err := c.removeOrSetAside(keys[k], c.tombstoned(keys[k].Topic, id, hasID)); err != nil {
				jobs[k].err = fmt.Errorf("partition %d: a directory of that name is in the way: %w", j.index, err)
				jobs[k].notOurs = true
			}
		}
		if j.topic != of {
			// Resolved afresh: a topic created under the name of a
			// deleted one must not inherit its settings.
			of, st = j.topic, c.resolveSettings(*j.topic)
		}
		jobs[k].settings = st
		cfgs[k] = st.Log
	}
	logs, errs := c.dir.CreateLogs(keys, cfgs, ids, c.budget.Workers)
	for k := range jobs {
		j := &jobs[k]
		if j.err != nil {
			if logs[k] != nil {
				j.notOurs = false // the way cleared after all: discard removes it
			}
			continue
		}
		if errs[k] != nil {
			j.err = fmt.Errorf("partition %d: %w", j.index, errs[k])
			j.notOurs = errors.Is(errs[k], fs.ErrExist)
			continue
		}
		j.part, j.err = partition.Open(j.topic.Name, j.index, logs[k], partition.Options{FS: c.cfg.FS, Now: c.cfg.Now})
		if j.err == nil {
			j.err = c.startReplica(j.topic, j.index, j.part)
		}
		if j.err != nil {
			j.err = fmt.Errorf("partition %d: %w", j.index, j.err)
		}
	}
}

// discard closes and removes the logs created for the jobs that drop
// selects (also those whose creation failed half way), leaving no
// directory behind.
func (c *Cluster) discard(jobs []newPartition, drop func(newPartition) bool) {
	keys := make([]logdir.Partition, 0, len(jobs))
	for _, j := range jobs {
		if drop(j) && !j.notOurs {
			keys = append(keys, logdir.Partition{Topic: j.topic.Name, Partition: j.index})
		}
	}
	c.stopReplicas(keys)
	if err := c.dir.DeleteLogs(keys); err != nil {
		c.cfg.Logger.Error("removing the logs of a failed creation", "err", err,
			"note", "the next start removes what is left")
	}
}

// publish makes the created partitions of the jobs keep selects visible,
// once the metadata names them.
func (c *Cluster) publish(jobs []newPartition, keep func(newPartition) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, j := range jobs {
		if !keep(j) {
			continue
		}
		c.settings.Store(j.topic.Name, j.settings)
		c.parts[logdir.Partition{Topic: j.topic.Name, Partition: j.index}] = j.part
	}
}

// partitionCount is the number of partitions the broker holds.
func (c *Cluster) partitionCount() int64 { return c.store.PartitionCount() }

// MaxPartitions is the most partitions the broker may hold: the smaller
// of max.broker.partitions (-1: no bound) and what the open-file limit
// leaves (see FileBudget); -1 when neither bounds it.
func (c *Cluster) MaxPartitions() int64 {
	limit := c.cfg.Broker.Settings().MaxBrokerPartitions
	if fd := c.budget.Partitions; fd >= 0 && (limit < 0 || fd < limit) {
		return fd
	}
	return limit
}

// checkPartitionLimit refuses adding n partitions to topic when the broker
// (holding have) would then hold more than MaxPartitions. Each partition
// keeps a file open and takes a moment to create, so without a bound one
// CreateTopics request asking for 2^31-1 partitions holds its connection
// for days, runs the process out of file descriptors, and makes every
// Metadata answer enormous. The internal offsets topic is never refused.
// growMu must be held for the check to stay true until the partitions
// exist.
func (c *Cluster) checkPartitionLimit(topic string, have int64, n int32) error {
	limit := c.MaxPartitions()
	if _, internal := internalTopicConfigs(topic); limit < 0 || internal || have+int64(n) <= limit {
		return nil
	}
	why := fmt.Sprintf("max.broker.partitions is %d", c.cfg.Broker.Settings().MaxBrokerPartitions)
	if limit == c.budget.Partitions {
		why = fmt.Sprintf("the open-file limit of %d descriptors leaves room for %d partitions "+
			"(%d kept for connections, %d for cached segment files, %d for other files); "+
			"raise it (ulimit -n, or LimitNOFILE= for systemd) and restart the broker",
			c.budget.Limit, limit, c.budget.Connections, c.budget.Cache, c.budget.Transient)
	}
	return fmt.Errorf("%w: %d more partitions would make %d on this broker, more than its limit of %d: %s",
		metadata.ErrInvalidPartitions, n, have+int64(n), limit, why)
}

// partitionKeys names partitions [from, to) of topic.
func partitionKeys(topic string, from, to int32) []logdir.Partition {
	out := make([]logdir.Partition, 0, max(to-from, 0))
	for i := from; i < to; i++ {
		out = append(out, logdir.Partition{Topic: topic, Partition: i})
	}
	return out
}
