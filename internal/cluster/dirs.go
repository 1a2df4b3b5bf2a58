package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/logdir"
)

// ErrNoMetadata is returned by Open for a data directory that holds
// partition directories but no metadata file.
var ErrNoMetadata = errors.New("metadata file missing")

// sortOutDirectories matches the partition directories on disk with the
// metadata before any log is opened: a directory of a live topic is left
// for openPartition; one a tombstone names, or one holding no record, is
// removed; any other is set aside. A data directory with partition
// directories that hold records and no metadata file is refused as a whole.
// It returns the live partitions whose partition.metadata names their
// topic already, which openPartition then neither reads nor writes, and,
// on a cluster node, the directories left for sweepUnclaimed.
func (c *Cluster) sortOutDirectories() (stamped map[logdir.Partition]bool, unclaimed []logdir.Partition, err error) {
	existing, err := c.dir.Existing()
	if err != nil {
		return nil, nil, err
	}
	if !c.store.Found() {
		var withRecords []logdir.Partition
		for _, p := range existing {
			holds, err := c.dir.HoldsRecords(p)
			if err != nil {
				return nil, nil, err
			}
			if holds {
				withRecords = append(withRecords, p)
			}
		}
		if len(withRecords) > 0 {
			return nil, nil, fmt.Errorf("%w: %s has %d partition directories with records (%s-%d ...) but no metadata (neither %s nor the metadata log %s holds any); refusing to start, so that nothing is deleted. "+
				"Restore it, or rebuild it from the directories with `strom storage rebuild-metadata --data-dir %s` "+
				"(topic configs are not recovered)",
				ErrNoMetadata, c.dir.Path(), len(withRecords), withRecords[0].Topic, withRecords[0].Partition, metadata.FileName, logdir.ClusterMetadataDir, c.dir.Path())
		}
	}
	live := c.claimed()
	stamped = map[logdir.Partition]bool{}
	for _, p := range existing {
		id, hasID := c.dir.TopicIDOf(p)
		liveID, isLive := live[p]
		if isLive && (!hasID || metadata.TopicID(id) == liveID) {
			stamped[p] = hasID
			continue
		}
		deleted := c.tombstoned(p.Topic, id, hasID)
		if !deleted && c.store.Replicated() {
			// The view may lag the quorum (metadata.Store.Barrier): the
			// topic, or this node's place among its replicas, may be
			// committed and not applied here yet. The reconciler opens
			// the directory when it is; sweepUnclaimed settles the rest.
			unclaimed = append(unclaimed, p)
			continue
		}
		if err := c.removeOrSetAside(p, deleted); err != nil {
			return nil, nil, err
		}
	}
	// Every directory a tombstone named is gone now.
	// Dropping the tombstones rewrites the metadata file; on a full disk
	// that fails, and keeping them is harmless: the start goes on.
	if err := c.store.ForgetAllDeleted(); err != nil {
		c.cfg.Logger.Warn("cannot drop the tombstones of deleted topics from the metadata file; kept for the next start", "err", err)
	}
	return stamped, unclaimed, nil
}

// claimed maps the partitions the metadata view assigns to this node to
// their topic's id.
func (c *Cluster) claimed() map[logdir.Partition]metadata.TopicID {
	live := map[logdir.Partition]metadata.TopicID{}
	for _, t := range c.store.Topics() {
		for i := int32(0); i < t.Partitions; i++ {
			if c.ours(&t, i) {
				live[logdir.Partition{Topic: t.Name, Partition: i}] = t.ID
			}
		}
	}
	return live
}

// sweepUnclaimed settles the directories a cluster node found at start
// that its metadata view did not claim. A restarted node's view can lag
// the quorum's (its commit index on disk lags its log), so a directory
// of a topic created just before a kill looked unclaimed: setting it
// aside then made the replica start empty, which the raft group refuses
// as a replica that lost acknowledged entries, and it never rejoined the
// ISR. Here the directories wait for a barrier through the quorum
// (retried until ctx ends: a node may start before a majority); then
// those the now-current view still does not claim are removed or set
// aside as at a local start.
func (c *Cluster) sweepUnclaimed(ctx context.Context, pending []logdir.Partition) {
	wait := 100 * time.Millisecond
	for {
		bctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := c.store.Barrier(bctx)
		cancel()
		if err == nil {
			break
		}
		c.cfg.Logger.Debug("partition directories no topic claims wait for the metadata quorum", "directories", len(pending), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, 5*time.Second)
	}
	// Under growMu no reconcile pass opens a directory meanwhile; one the
	// now-current view claims is the reconciler's (the barrier's apply
	// woke it).
	c.growMu.Lock()
	defer c.growMu.Unlock()
	live := c.claimed()
	for _, p := range pending {
		c.mu.RLock()
		_, open := c.parts[p]
		c.mu.RUnlock()
		if open {
			continue
		}
		if _, err := c.cfg.FS.Stat(c.dir.PartitionDir(p)); err != nil {
			continue
		}
		id, hasID := c.dir.TopicIDOf(p)
		if liveID, ok := live[p]; ok && (!hasID || metadata.TopicID(id) == liveID) {
			continue // the reconciler's to open (it retries a failure)
		}
		if err := c.removeOrSetAside(p, c.tombstoned(p.Topic, id, hasID)); err != nil {
			c.cfg.Logger.Error("cannot remove or set aside a partition directory no topic claims; left in place", "partition", c.dir.PartitionDir(p), "err", err)
		}
	}
}

// tombstoned reports whether a tombstone names the directory of p's topic
// with id. A directory written before partition.metadata existed has no
// id (hasID false): its name is all there is.
func (c *Cluster) tombstoned(topic string, id [16]byte, hasID bool) bool {
	for _, d := range c.store.Deleted() {
		if d.Name == topic && (!hasID || d.ID == metadata.TopicID(id)) {
			return true
		}
	}
	return false
}

// removeOrSetAside removes p's directory if its topic was deleted or it
// holds no record, and otherwise renames it aside.
func (c *Cluster) removeOrSetAside(p logdir.Partition, deleted bool) error {
	holds, err := c.dir.HoldsRecords(p)
	if err != nil {
		return err
	}
	if deleted || !holds {
		why := "of a deleted topic"
		if !deleted {
			why = "with no records, claimed by no topic (a creation a crash interrupted)"
		}
		c.cfg.Logger.Info("removing partition directory "+why, "partition", c.dir.PartitionDir(p))
		return c.dir.DeleteLog(p)
	}
	to, err := c.dir.SetAside(p)
	if err != nil {
		return err
	}
	c.cfg.Logger.Warn("set aside a partition directory no topic claims; its data is kept, nothing reads it",
		"partition", c.dir.PartitionDir(p), "now", to)
	return nil
}
