// Package partition is one partition as the broker sees it: the log
// (package storage/seglog) plus the state of the idempotent producers that
// write to it, so that a retried batch is answered with the offsets it got
// the first time instead of being written twice.
//
// The partition is the only door to its log: handlers and coordinators
// append, read, wait for new data (Waiter), ask for its offsets (start,
// high watermark, last stable, durable) and delete records through it, and
// see its errors (ErrOffsetOutOfRange, ErrFailed, ...), never the storage
// packages. That is what lets a partition become a replica of a raft
// group without its callers changing: the high watermark then follows the
// commit index, and Waiters are woken when it moves.
//
// Idempotence (Kafka's ProducerStateManager semantics): for each producer id
// the partition keeps the current epoch and its last 5 batches (first and
// last sequence, first and last offset). A batch is
//   - a duplicate when its sequence range equals a cached batch's: answered
//     with the cached offsets, nothing written (never OUT_OF_ORDER_SEQUENCE
//     for an in-window retry — redpanda#3039);
//   - in order when it starts right after the last cached batch, or at 0 with
//     a bumped epoch, or from an unknown producer (KIP-360);
//   - out of order otherwise, and fenced when its epoch is older.
//
// A batch with a producer id but no sequence (-1) is a coordinator's,
// written on the producer's behalf (the group coordinator's offsets of a
// transaction, Kafka's coordinator-origin appends): only its epoch is
// checked, and it is never kept to answer a retry.
//
// Transactions (txn.go): a transactional batch opens its producer's
// transaction on the partition (its first offset is kept), after the
// transaction coordinator confirms the partition belongs to the
// producer's ongoing transaction (AppendRules.VerifyTxn, KIP-890 part 1;
// asked under the partition's lock, so no marker can land between the
// check and the append). A marker (AppendMarker: a control batch, COMMIT
// or ABORT, written only by the coordinator or WriteTxnMarkers) closes it
// (RepairMarker: only when the producer's open transaction is at an older
// epoch than the marker, for the coordinator's restart);
// an abort is added to the aborted-transaction list (Kafka's .txnindex
// entry: producer, first offset, marker offset, last stable offset). The
// last stable offset is the first offset of the oldest open transaction,
// or the high watermark; ReadCommitted stops below it.
//
// Coordinators rebuild their state from their internal partition with
// Replay, or ReplayBatches, which also gives each record's producer and
// every COMMIT/ABORT marker (the group coordinator's transactional
// offsets).
//
// The state survives restarts: Snapshot writes it (with the log offset it
// covers) atomically, with the open transactions (the aborted ones go to
// Kafka's <base>.txnindex files, txnindex.go), and Open loads the snapshot
// and the index entries below its offset, and replays the headers of the
// batches after it (all of them when there is no snapshot or an index
// file is unreadable; a marker's type is read from its control record).
//
// Truncation (TruncateTo, for a raft follower whose uncommitted tail
// conflicts with the leader's) cuts the log at a batch boundary and
// rebuilds the producer state from what remains, as Open does: from the
// snapshot when it covers only kept batches, else from the log start (the
// cost: every batch header of the partition read once). A snapshot that
// covers removed batches is deleted first, durably, so a crash cannot
// bring it back.
//
// A replicated partition's raft snapshot (replsnap.go) is its log start
// offset and the producer state as of it, in a versioned binary layout
// drawn there (fuzzed); a follower puts the state aside durably
// (PrepareReset, producer-state.reset), and once raft's storage restarted
// the log empty at the offset, FinishReset renames it into place as the
// producer snapshot and reloads from it. Its log keeps no retention of
// its own: RetentionOffset tells the replicator where the topic's
// retention would move the start, and the replicator moves it through
// raft's storage. Its compaction and compression.type stay (logConfig):
// the leader validates (a compacted topic's keys) and recompresses in
// Append before proposing, raft's storage stores entries as they are, and
// the cleaner is bounded by the replica's raft anchor (internal/replica).
//
// Concurrency: Append holds the partition's mutex across the checks and the
// log append, so checks and offsets agree; reads go to the log without it.
// Snapshot and TruncateTo also hold snapMu (taken before the mutex), so a
// snapshot file write never crosses a truncation. A Waiter is registered
// under its own small lock (wmu), which Append and TruncateTo take after
// the partition's mutex, to wake long polls. The aborted list has its own
// read-write lock (amu) so read_committed fetches do not wait on appends;
// the last stable offset is read without a lock. Lock order: snapMu, mu,
// then wmu or amu; VerifyTxn runs under mu and takes only the transaction
// coordinator's own mutex.
package partition
