package cluster

import "github.com/stromhq/strom/internal/storage/fdcache"

// FileBudget returns how the open-file limit is shared.
func (c *Cluster) FileBudget() FileBudget { return c.budget }

// CachedFiles reports the sealed-segment descriptor cache's counters.
func (c *Cluster) CachedFiles() fdcache.Stats { return c.dir.CachedFiles() }

// FileBudget shares the process's open-file limit (RLIMIT_NOFILE) between
// what holds descriptors: client connections, the descriptor cache of
// sealed segments, files opened for a moment, and the partitions, each of
// which keeps one descriptor while idle (its active segment's writer).
type FileBudget struct {
	// Limit is the open-file limit; 0 when unknown, which bounds nothing.
	Limit int64
	// Connections is kept for client connections: max.connections, but
	// at most a quarter of the limit.
	Connections int64
	// Transient covers files open for a moment: the metadata file,
	// checkpoints, producer snapshots, index writes, directory syncs, the
	// listener, and the logs being created by Workers.
	Transient int64
	// Cache is how many sealed segments' files stay open for reads.
	Cache int
	// Workers is how many partitions are created at once.
	Workers int
	// Partitions is how many partitions fit in what is left; -1 without a
	// limit.
	Partitions int64
}

// Bounds of the budget's parts.
const (
	maxCreateWorkers = 64
	maxCachedFiles   = 4096
	minCachedFiles   = 8
	defaultCache     = 1024
)

// NewFileBudget divides limit descriptors; maxConnections <= 0 means
// unbounded connections.
func NewFileBudget(limit, maxConnections int64) FileBudget {
	if limit <= 0 {
		return FileBudget{Cache: defaultCache, Workers: maxCreateWorkers, Partitions: -1}
	}
	b := FileBudget{Limit: limit}
	b.Workers = int(min(max(limit/64, 1), maxCreateWorkers))
	b.Transient = 64 + 4*int64(b.Workers)
	b.Connections = limit / 4
	if maxConnections > 0 && maxConnections < b.Connections {
		b.Connections = maxConnections
	}
	b.Cache = int(min(max(limit/8, minCachedFiles), maxCachedFiles))
	b.Partitions = max(limit-b.Connections-b.Transient-int64(b.Cache), 0)
	return b
}
