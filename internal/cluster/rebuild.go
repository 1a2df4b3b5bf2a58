package cluster

import (
	"crypto/rand"
	"fmt"
	"log/slog"
	"sort"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// RebuildReport says what RebuildMetadata found and wrote.
type RebuildReport struct {
	Topics []metadata.Topic
	// NewIDs lists topics whose directories named no (or no single) topic
	// id, so they got a new one; clients that cached the old id see a new
	// topic.
	NewIDs []string
	// Gaps lists topics with a partition directory missing below their
	// highest one; those partitions start empty.
	Gaps []string
	// NextProducerID is where producer id allocation resumes.
	NextProducerID int64
}

// producerIDMargin is added to the highest producer id found in the logs
// when the metadata file is rebuilt: ids handed out but never written
// anywhere leave no trace, and a client may still hold one.
const producerIDMargin = 1 << 20

// RebuildMetadata writes a new metadata file for a data directory that
// lost its own, from its partition directories: every <topic>-<n>
// directory makes topic a topic with the highest n+1 partitions, under the
// id its partition.metadata files name. Topic configs are not recovered
// (they were only in the lost file): topics come back with the broker's
// defaults, except the internal offsets topic, whose configs are known.
// Producer id allocation resumes past every producer id in the logs. It
// refuses to run while a broker holds the directory, or when a metadata
// file is there.
func RebuildMetadata(fsys vfs.FS, dataDir string, logger *slog.Logger) (RebuildReport, error) {
	var rep RebuildReport
	if fsys == nil {
		fsys = vfs.Default
	}
	if logger == nil {
		logger = slog.Default()
	}
	dir, err := logdir.Open(fsys, dataDir, logger)
	if err != nil {
		return rep, err
	}
	defer dir.Close()
	if store, err := metadata.OpenStore(fsys, dataDir); err != nil {
		return rep, fmt.Errorf("%w; move it aside first to rebuild it", err)
	} else if store.Found() {
		return rep, fmt.Errorf("%w: %s/%s; nothing to rebuild", metadata.ErrStoreExists, dataDir, metadata.FileName)
	}
	existing, err := dir.Existing()
	if err != nil {
		return rep, err
	}
	byTopic := map[string][]logdir.Partition{}
	for _, p := range existing {
		byTopic[p.Topic] = append(byTopic[p.Topic], p)
	}
	names := make([]string, 0, len(byTopic))
	for n := range byTopic {
		names = append(names, n)
	}
	sort.Strings(names)
	maxPID := int64(-1)
	for _, name := range names {
		if err := metadata.ValidTopicName(name); err != nil {
			return rep, fmt.Errorf("directory of %q: %w; move it out of the data dir and run again", name, err)
		}
		t := metadata.Topic{Name: name}
		ids := map[[16]byte]bool{}
		for _, p := range byTopic[name] {
			t.Partitions = max(t.Partitions, p.Partition+1)
			if id, ok := dir.TopicIDOf(p); ok {
				ids[id] = true
			}
			if pid, err := maxProducerID(dir, p); err != nil {
				return rep, err
			} else {
				maxPID = max(maxPID, pid)
			}
		}
		if len(ids) == 1 {
			for id := range ids {
				t.ID = id
			}
		} else {
			if _, err := rand.Read(t.ID[:]); err != nil {
				return rep, err
			}
			rep.NewIDs = append(rep.NewIDs, name)
			// Every directory takes the new id: one still naming an old id
			// would be set aside at the next start as another topic's.
			for _, p := range byTopic[name] {
				if err := dir.WriteTopicID(p, t.ID, false); err != nil {
					return rep, err
				}
			}
		}
		if int(t.Partitions) != len(byTopic[name]) {
			rep.Gaps = append(rep.Gaps, name)
		}
		if internal, ok := internalTopicConfigs(name); ok {
			t.Internal = true
			t.Configs = internal
		}
		rep.Topics = append(rep.Topics, t)
	}
	rep.NextProducerID = (maxPID/producerIDBlock+1)*producerIDBlock + producerIDMargin
	if _, err := metadata.CreateStore(fsys, dataDir, rep.Topics, rep.NextProducerID); err != nil {
		return rep, err
	}
	return rep, nil
}

// maxProducerID is the highest producer id of any batch in p's log, or -1.
func maxProducerID(dir *logdir.Dir, p logdir.Partition) (int64, error) {
	l, err := dir.OpenLog(p, metadata.LogConfig(metadata.Resolve(nil, nil)))
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir.PartitionDir(p), err)
	}
	top := int64(-1)
	err = l.WalkHeaders(l.StartOffset(), func(h record.BatchHeader) bool {
		top = max(top, h.ProducerID)
		return true
	})
	if err != nil {
		return -1, fmt.Errorf("read %s: %w", dir.PartitionDir(p), err)
	}
	return top, nil
}
