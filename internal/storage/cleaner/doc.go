// Package cleaner is the log cleaner: it compacts the logs of topics with
// cleanup.policy=compact, keeping for every key the record with the
// latest offset (Kafka's LogCleaner). It reads a partition's sealed
// segments through package seglog and hands the cleaned data back to
// seglog.ReplaceSegments, which swaps the files in a crash-safe order.
//
// # A pass
//
// A log is split at its first dirty offset (the cleaner checkpoint file,
// CheckpointFile, in the partition directory; 0 when absent): below it
// everything was cleaned, from it on nothing was. Only sealed segments
// that end at or below the bound the caller gives (the high watermark
// today; with replication the offset every replica has), and before the
// first batch of a transaction with no marker yet (txn.go), and whose
// newest record is older than min.compaction.lag.ms are cleanable; the
// active segment never is.
//
// Transactions (txn.go, Kafka's rules; the offsets log holds the offsets
// of transactions): a pass first reads every transactional batch's
// outcome from the markers after it (batch headers from the first sealed
// segment to the log's end, and each marker's control record). An aborted
// transaction's records are not mapped and are removed; committed ones
// are ordinary records; a marker is kept while a batch of its transaction
// is left (a replay can still tell the two apart), then, empty, for
// delete.retention.ms more (its delete horizon, set as a tombstone's is),
// and removed by a later pass unless it is its producer's last batch.
// The partition answers no aborted-transaction entry whose marker is gone
// (partition.AbortedTxns).
//
//  1. Map: every keyed record of the cleanable dirty section, in offset
//     order, goes into the key map (key hash -> latest offset). The map
//     has a fixed size (the dedupe buffer); when a new key does not fit,
//     the map ends at that record's offset (MapEnd) and the pass is
//     partial: the next pass maps from there. A map end may fall inside a
//     batch or segment; nothing above it is ever removed, since the map
//     holds no offset above it. So a log with more keys than fit is
//     cleaned in several passes and never stalls (Redpanda #16952).
//  2. Rewrite: every cleanable segment below MapEnd, from the log's first
//     segment on, is rewritten, consecutive segments grouped into one as
//     long as their input fits segment.bytes (and one segment's 32-bit
//     offset range). Each record goes through retain (rules.go, the one
//     place that says what may be removed). A batch with every record
//     kept is copied as it is; otherwise it is rebuilt with the records
//     kept, its base offset, LastOffsetDelta, producer id, epoch, base
//     sequence and flags unchanged (record.AppendCompacted), so offsets
//     are kept and only gaps appear. A batch left with no record is
//     dropped, except the last batch of a producer id in the log, which
//     is kept as a bare header so that the producer's epoch and last
//     sequence survive a restart that rebuilds them from the log (Kafka
//     does the same, KAFKA-8522).
//  3. Checkpoint: the first dirty offset becomes MapEnd.
//
// # Tombstones
//
// A tombstone (a null value) that survives a pass which had its key in the
// map (its batch lies wholly below MapEnd) gets a delete horizon: the
// batch's BaseTimestamp becomes now + delete.retention.ms and attribute bit
// 6 is set (KIP-534; record timestamps are rebased so they do not change).
// At that pass every older value of the key was removed. A later pass
// removes the tombstone once the horizon has passed, so consumers have
// delete.retention.ms to see it.
//
// # Memory
//
// The key map is one slice: 24 bytes a slot (a 128-bit hash from two
// maphash seeds, and an offset), filled to 90%. It is sized for each pass
// from the dirty bytes (a key per 16 bytes at most), grows up to the dedupe
// buffer and never past it, and is kept for the next pass: a broker whose
// compacted logs are small never takes the whole buffer. A pass holds one batch's records at a time besides it. The
// producer table (last batch per producer id) grows with the number of
// producers, not keys.
//
// # Concurrency
//
// A Cleaner is used by one goroutine (a worker of the log directory's
// cleaner, package logdir); the Throttle is shared by all of them. A pass
// reads sealed segments while producers append to the active one; the
// swap alone takes the log's append lock (seglog.ReplaceSegments), and a
// pass whose segments changed meanwhile (retention, DeleteRecords,
// truncation, close) is dropped with seglog.ErrSegmentsChanged.
package cleaner
