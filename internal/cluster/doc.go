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
//     deleted (on a cluster node, only once its view is known current:
//     below).
//   - Creation is all or nothing per topic. On a node whose metadata is a
//     quorum's (every node a broker runs; a single node is a quorum of one
//     voter, Peers false), the topic's record is committed first and the
//     node's reconciler creates the logs it holds before CreateTopics
//     answers; on a cluster of one, a topic whose logs cannot all be
//     created is deleted again (a second record; the tombstone lets the
//     next start remove what is left) and answered with the error. A crash
//     between the record and the logs finds the topic at the next start,
//     whose reconciler creates them. CreatePartitions on a quorum cannot
//     be undone (counts only grow): partitions that fail to open are
//     retried by the reconciler every second. Without a quorum (Config
//     without OpenMetadata: unit tests), every check is made first, then
//     the new partitions' logs are created
//     (directories made durable, each with its topic's id, chosen up front,
//     in partition.metadata), then the metadata is written once for the
//     whole request, and only then are the partitions visible. If a log
//     cannot be created (out of descriptors, disk full) or the metadata
//     write fails, the logs this request created are closed and removed and
//     the metadata is left as it was. Crash order: logs before metadata, so
//     a crash in between leaves directories no topic claims, which hold no
//     record (they were never visible) and the next start removes; a crash
//     after the metadata write finds every log in place. A directory
//     already on disk under a new partition's name is removed or set aside
//     by the rule above before the log is created, so a new partition never
//     inherits old records. (One corner: when the metadata file was renamed
//     into place but syncing its directory failed, the request fails and
//     its logs are removed, yet a restart may find the topic; its
//     partitions then start empty. Nothing acknowledged is lost either way.)
//   - The broker holds at most MaxPartitions partitions: the smaller of
//     max.broker.partitions and what the open-file limit (Config.FileLimit)
//     leaves after room for connections, the sealed-segment descriptor
//     cache and transient files, at one descriptor per idle partition (its
//     active segment). Start-up opens every partition the metadata names,
//     even past that bound (a data directory from a larger limit), and only
//     warns.
//   - A data directory with partition directories holding records but no
//     metadata (no file without a quorum; on a single node, a metadata log
//     that never held a topic or a registration and no file to migrate: a
//     bad restore, a copy that skipped it) does not start: ErrNoMetadata
//     says how to rebuild the file from the directories (RebuildMetadata,
//     `strom storage rebuild-metadata`).
//   - Opening needs no free space (package logdir); a partition that cannot
//     write is still opened and served for reads, and UnhealthyPartitions
//     says which (Degraded: retried; Failed: until a restart).
//   - In a cluster a node deletes its replica of a partition only once the
//     metadata no longer lists it: during a reassignment the partition's
//     replicas are the union of old and new, until its raft group's leader
//     records that the group reached the target (reassign.go). A replica a
//     reassignment added, or one of a partition it reconfigured, starts
//     empty by joining its group, never by bootstrapping.
//   - A cluster node's start removes only the directories a tombstone in
//     its view names. Its view may lag the quorum after a restart (see
//     package metadata), so any other directory the view does not claim
//     stays in place, unopened: the reconciler opens it, records intact,
//     when the topic's record is applied; sweepUnclaimed removes or sets
//     aside what is still unclaimed once a barrier record committed
//     (dirs.go). Before, a replica of a topic created just before a kill
//     was set aside, restarted empty and never rejoined the ISR.
//   - A config change (topic overrides, dynamic broker configs) is persisted
//     before it is pushed to the open logs, and a partition that opens
//     meanwhile gets the new values (configMu).
//   - The log cleaner never rewrites a raft entry: a replicated
//     partition's cleaning bound is its replica's raft anchor
//     (cleanBound, replica.CleanBound); one whose replica is not running
//     is not cleaned.
//
// Concurrency: methods are safe for concurrent use. growMu serialises the
// changes that add or remove topics and partitions (so that concurrent
// requests cannot both pass MaxPartitions); creation runs its workers
// under it and they end before it returns. The background loops are
// started by Open and stopped by Close; among them, on a cluster node, the
// liveness loop (liveness.go) that wakes quiesced partition groups whose
// leader's node is fenced or has lost its raft connection, and the one
// replica.Ticker that ticks the awake groups (stopped after the replicas).
// The same view, with when each node was first seen down (failover.go),
// tells Metadata whether a partition is between leaders, so that its
// answer waits for the new leader during the moments after a kill.
package cluster
