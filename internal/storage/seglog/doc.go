// Package seglog is one partition's durable log: an ordered set of segments
// (package segment) in the partition's directory, with a single writer,
// concurrent readers, group-committed fsyncs, crash recovery and retention.
//
// Directory layout, as Kafka has it:
//
//	<topic>-<partition>/
//	  00000000000000000000.log        batches with offsets [0, 1234)
//	  00000000000000000000.index      sparse offset -> position (sealed: trimmed)
//	  00000000000000000000.timeindex  sparse timestamp -> offset
//	  00000000000000001234.log        the active segment: its indexes in memory,
//	                                  their files written at flush, roll or clean
//	                                  shutdown (so absent or short while it runs)
//	  ...
//
// Offsets. Three offsets describe the log (Redpanda's segment keeps the same
// three): the end offset (next offset to assign; everything below it is
// written and readable — with one replica it is also the high watermark),
// the durable offset (everything below it is fsynced; acks=all waits for it
// through WaitDurable), and the start offset (the first readable offset,
// advanced by retention and DeleteRecords).
//
// Invariants:
//   - Segments' base offsets increase; each segment's offsets lie in
//     [base, next segment's base). Only the last (active) segment is
//     written; the others are sealed, synced and read-only.
//   - start <= durable-or-end, durable <= end.
//   - Append validates every batch (record.ValidateBatch: length, magic 2,
//     CRC-32C, records, decompressed size cap) before any byte is written,
//     then assigns consecutive offsets by rewriting base offsets in place.
//     A failed write is truncated away, so readers and recovery never see
//     half a batch from a live process.
//   - Recovery (Open without State.Clean) re-validates every segment from
//     the one holding the recovery point, truncates at the first bad byte and
//     drops any later segments; it never refuses to start on bad data.
//   - Only the active segment keeps a descriptor open; sealed segments are
//     read through Config.Files, the data directory's descriptor cache.
//   - Storage errors come in two kinds. A failed fsync of segment data is
//     sticky (ErrFailed, Health Failed): the log stops accepting writes
//     until reopened, since after a failed fsync the kernel may have dropped
//     the dirty pages. Everything else on the write path — ENOSPC on a
//     write (the half-written batch is truncated away), EMFILE, EPERM or
//     ENOSPC while sealing a segment's indexes, creating the next segment
//     or syncing the directory during a roll — is transient (ErrStorage,
//     Health Degraded): that append fails, nothing acknowledged is lost,
//     and the next append retries (a half-done roll is finished). The
//     first append that succeeds, or a Probe, makes the log Healthy.
//   - Opening never needs to write: when recovery cannot write rebuilt
//     index files (a full disk after a crash), the indexes stay in memory
//     and the log opens Degraded, serving reads. An index is a hint.
//
// Truncation (TruncateTo, the groundwork of a raft follower overwriting a
// conflicting uncommitted tail) removes every batch from a batch boundary
// on. It is made durable before it returns, in this order, so that a crash
// at any point leaves either every old batch or exactly the kept ones:
//  1. validate (offset within [start, end], a batch's base offset);
//  2. write the intent file (TruncateIntentFile: the offset, under package
//     atomicfile's header; temp, fsync, rename, directory fsync): the
//     commit point. Before it nothing has changed;
//  3. under segMu held for writing (readers wait): cut the segment holding
//     offset at that batch (ftruncate, fsync), trim and rewrite its
//     indexes, reopen it for writing if it was sealed; drop the later
//     segments from the list; end and durable offsets become offset;
//  4. delete the later segments' files (forgetting their cached
//     descriptors), newest first, then fsync the directory;
//  5. remove the intent file and fsync the directory.
//
// Open that finds the intent file recovers every segment from the one
// holding its offset (whatever the checkpointed recovery point says: a cut
// sealed segment is shorter than the next segment's base implies), then
// redoes steps 3 to 5, which are idempotent. A failure after step 2 makes
// the log Failed: the intent is durable, so nothing may be appended until
// a reopen has finished the truncation. A WaitDurable for a removed offset
// returns ErrTruncated (a caller that waits after a truncation and a
// re-append past its offset cannot tell; the raft layer acknowledges by
// commit index, not through it).
//
// Resetting (ResetAt, Kafka's truncateFullyAndStartAt: a raft follower
// given a snapshot restarts its log at the leader's log start) discards
// every batch and leaves one empty segment at the given offset, above or
// below the old end. A reset-intent file (the offset) is its commit point:
// written first (temp, fsync, rename, directory fsync); then, under segMu
// held for writing, every segment's files are deleted and the empty one
// created, the directory fsynced, the intent removed. Open that finds the
// intent deletes every segment file (and a truncation intent: the reset
// supersedes it) and creates the empty segment; so a crash leaves the old
// log whole or the new empty one (TestResetAtCrashAtEveryStep). A failure
// after the intent makes the log Failed until a reopen finishes it.
//
// A follower's append (AppendAsFollower: a replica installing the region
// below a leader's raft anchor) keeps each batch's base offset and epoch,
// gaps and cleaned batches allowed, and applies none of the log's write
// rules (keys, recompression, LogAppendTime); SkipTo moves the end past a
// gap with no batch by rolling an empty segment based there. Their
// durability is Append's (Flush; the roll syncs); the caller (package
// raftlog) makes the whole fill restartable from a reset.
//
// Replacing segments (ReplaceSegments, the log cleaner's swap) turns the
// sealed segments [base, end) into one segment based at base whose data the
// caller writes (whole batches, offsets kept, gaps allowed). File states, in
// order, and what Open does when a crash leaves each:
//
//	<base>-<end>.log.cleaned   written, fsynced     removed (no commit yet)
//	<base>-<end>.log.swap      renamed, dir synced  COMMIT: Open deletes every
//	                                                segment file based in
//	                                                [base, end), renames the
//	                                                swap to <base>.log
//	old segments' files        deleted              (same)
//	<base>.log                 renamed, dir synced  done; indexes rebuilt from
//	                                                the data when absent
//
// The range in the name tells recovery which old segments go, without
// anything else to trust. The data is written without appendMu; the renames
// run under appendMu (and segMu for the list), after checking that the
// segments are the ones that were read (ErrSegmentsChanged otherwise). A
// failure after the commit makes the log Failed until a reopen finishes it.
// A sealed segment's end offset is the next segment's base, so the gaps a
// cleaned segment has at its end are never mistaken for a short segment.
//
// Concurrency: appendMu serializes writers (Append, roll, retention,
// truncation, close); segMu guards the segment list, held for reading by
// readers during a read and for writing only while the list changes (and,
// for a truncation, while the cut segment is cut), so reads do not block
// appends. WaitDurable runs the fsync on one waiter's goroutine while the
// others wait for it (group commit); TruncateTo takes that fsync slot
// itself, so no fsync started before it moves the durable offset past the
// new end. Lock order: appendMu, then the fsync slot, then segMu. No
// goroutine is started by this package.
//
// The data directory's hooks (watch.go): OnCheckpointDue's function runs
// when the durable or start offset moves after the last
// CheckpointOffsets, OnFlushPending's when records wait for flush.ms
// after FlushPending last said none did; both run on the goroutine that
// made the change, possibly under the log's locks, and must only take
// note. Every store of the durable or start offset after Open goes through
// setDurable/advanceDurable/setStart/advanceStart, which call it.
package seglog
