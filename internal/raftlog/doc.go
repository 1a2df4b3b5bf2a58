// Package raftlog is etcd raft's Storage (go.etcd.io/raft/v3) over one
// partition's segment log (internal/storage/seglog): the segment files are
// the raft log, there is no second copy of the data (issue 18). It sits
// between the partition and storage; it imports storage, record and raft,
// nothing above; raftgroup (the metadata quorum) and replica (replicated
// partitions) run on it.
//
// # Entries are batches
//
// One raft entry is one record batch; the entry's term is the batch's
// PartitionLeaderEpoch (so terms are limited to int32; a larger one is
// ErrBadEntry). A normal entry with Data is client data: Data must be one
// v2 batch, stored as it is except for the base offset and the epoch, which
// the log's append rewrites; Entries returns the stored batch. Entries that
// are not client data are control batches (attribute bit 0x20) holding one
// record whose key is the control key (int16 version 0, int16 type):
//
//	entry                        control type  value
//	normal, empty Data           2             empty
//	  (a new leader's entry)     (Kafka's LEADER_CHANGE: KRaft writes it for
//	                             the same event, and every client skips it)
//	EntryConfChange              0x5301        the entry's Data
//	EntryConfChangeV2            0x5302        the entry's Data
//	normal, Data a control batch 0x5303        int64 new log start offset
//	  (a replicated partition's  (written by internal/replica, stored as
//	  DeleteRecords)             client data: Data is the batch)
//
// The conf-change types are Strom's own, far from Kafka's (0..6 in Kafka
// 3.9) so that a future Kafka type never collides; clients skip control
// batches, and the Java client logs an unknown type and skips it. Control
// batches of other types (Kafka's transaction markers, 0 and 1) come from
// clients and stay normal entries whose Data is the batch.
//
// # The translator
//
// Raft indexes are dense, Kafka offsets count records. The translator maps
// index i to the batch that is the (i-FirstIndex)th from the anchor and
// back. It is two slices in memory, a base offset (int64) and a term
// (int32) per entry: 12 bytes per entry (plus slice slack), 12 MB for a
// million batches in the log. Open rebuilds it from the batch headers
// (seglog.WalkHeaders), reading no record data: 100,000 entries in about
// 8 ms on memfs, 79 ns per entry (BenchmarkOpenRebuild, 2 shared cores).
//
// # What is on disk
//
// Besides the segments, StateFile ("raft-state", an atomicfile: temp file,
// fsync, rename, directory fsync; version 3) holds raft's HardState and
// ConfState (protobuf), and the anchor: the raft index and the offset of the
// raft log's first batch, and the term of the entry before it (raft's
// Term(FirstIndex-1)); then a flags byte (1: a snapshot install's log reset
// is pending; 2: that install fills the log from RegionFile; 4: with 2,
// from RegionStreamFile instead), the
// configuration as of the anchor (protobuf; length 0xffffffff when
// unknown), and the log start offset as this package last moved it:
//
//	| u32 len | HardState | u32 len | ConfState |
//	| u64 anchor index | i64 anchor offset | u64 anchor prev term |
//	| u8 flags | u32 len | anchor ConfState | i64 log start |
//
// Version 2 (read still) ends before the log start, which is then the
// anchor's offset; version 1 after the prev term. The first Open writes
// the file, with the anchor at index 1 and the log start offset, so that a
// start moved later around this package is caught.
//
// # The anchor above the log start (compaction)
//
// The log start and the anchor are the same offset except on a compacted
// topic: AdvanceAnchorApplied moves the anchor (FirstIndex) up without
// moving the start, so the batches in [log start, anchor offset) stay in
// the segments, readable as ever, but are no longer raft entries; the log
// cleaner rewrites only those (its bound is AnchorOffset), so raft never
// reads, sends or truncates a cleaned batch, and the translator, rebuilt
// from the anchor's offset, never walks a cleaned region. A follower given
// a snapshot must get that region too (a hole otherwise): Region reads it
// on the leader, InstallSnapshotRegion installs it (RegionFile, below).
//
// RegionFile ("raft-region", an atomicfile) holds during such an install
// the leader's batches below its anchor as stored (offsets with gaps,
// epochs, cleaned batches): written durably before the install's commit
// point, read again by Open to redo a committed install, removed after;
// Open removes one whose install never committed.
//
// A region too large for a snapshot's Data (Region's maxBytes) streams
// (stream.go): RegionReader reads it from the leader's log in chunks of
// whole batches, holding no lock between chunks (the cleaner may rewrite
// segments meanwhile: offsets are kept, so the next read starts after
// the last batch sent, and a batch the cleaner dropped is simply not
// sent; retention moving the start past the next offset fails the read);
// the follower checks each chunk with RegionCheck (whole batches, CRCs,
// offsets increasing within [start, anchor)) and spools it into a file of
// the log's directory; InstallSnapshotRegionFile renames the fsynced
// spool to RegionStreamFile ("raft-region-stream": raw batches) and
// fsyncs the directory before the commit point, then fills the log from
// it a MiB at a time. Neither side holds the region in memory.
//
// # Invariants and contracts
//
//   - Durability: Append returns once its entries are fsynced
//     (seglog.WaitDurable on the last one), SetConfState once the file
//     is, and SetHardState once a new term or vote is; a Ready's
//     messages may be sent as soon as they return. A commit index that
//     moved alone stays in memory until the next write of the file
//     (Flush, which owners call now and then and before they stop; a
//     term or vote; a conf state; a start move; an install): raft's
//     MustSync rule, since a lagging commit on disk is learned again from
//     the leader, and every write carries the latest commit, so the conf
//     state on disk is never ahead of the commit that applied it. Call
//     Append before SetHardState for the same Ready: the two are separate
//     files, and a commit index on disk must not point past the entries
//     on disk after a crash.
//   - Entries answers the entries Append stored last from memory (the
//     entry cache, cache.go: the batches as written, so equal to what the
//     segments give; cut with a cut tail, dropped below a start move,
//     cleared by an install; at most 32 MiB per storage and 256 MiB per
//     process, released by the owner once no reader needs them). Its
//     entries are shared: callers only read them.
//   - Append stores each entry's batch as it is (seglog.AppendValidated
//     after a CRC check): the log's own write rules (a compacted topic's
//     keys, compression.type, max.message.bytes) are the leader's, applied
//     before it proposes; a follower refusing a committed entry would
//     stop its replica for good.
//   - Append with a first index <= LastIndex cuts the log tail first with
//     seglog.TruncateTo at that entry's offset (durable on return);
//     entries below FirstIndex are skipped; a gap after LastIndex is ErrGap.
//   - Entries(lo, hi, maxSize): at least one entry, then as many as fit in
//     maxSize (proto.Size of each); ErrCompacted below FirstIndex,
//     ErrUnavailable past LastIndex+1. The slice, the entries and their
//     Data are freshly read from the segments (buffers that are never
//     given back to bufpool) and owned by the caller.
//   - Term(FirstIndex-1) is the anchor's term; lower is ErrCompacted,
//     past LastIndex ErrUnavailable.
//   - Snapshot answers what the owner's SnapshotSource supplies (a raft
//     group's state machine snapshot, internal/raftgroup; a partition's
//     own, with its log start offset and producer state, internal/replica,
//     whose metadata is SnapshotMeta's), and
//     raft.ErrSnapshotTemporarilyUnavailable without one, when it fails or
//     when its snapshot is older than FirstIndex-1 (raft panics on any
//     other error, and would loop on such a snapshot).
//   - InstallSnapshot (a follower given a snapshot) discards every entry:
//     the anchor moves to the snapshot's index + 1 at the log end offset,
//     with its term, its conf state and a commit of at least its index,
//     in one write of StateFile (the commit point); then seglog's start
//     moves to the end, which Open finishes if a crash cut in between.
//     The caller makes the snapshot's data durable before. This is
//     raftgroup's, whose offsets mean nothing to its state machine.
//   - InstallSnapshotAt (a partition follower): the log restarts empty at
//     the leader's log start offset instead (seglog.ResetAt, Kafka's
//     truncateFullyAndStartAt), above or below this log's end, so every
//     replica holds the same batches at the same offsets. The new anchor,
//     conf state, commit and a "reset pending" flag are one write of
//     StateFile (the commit point); then the log is reset,
//     Options.AfterReset runs (the partition takes the snapshot's producer
//     state) and the flag is cleared. OpenWith finds the flag after a
//     crash and redoes the reset (idempotent: nothing is appended while it
//     is set) and AfterReset.
//   - The configuration a partition snapshot carries is the one as of its
//     index (FirstIndex-1), never a later one: raft applies the conf-change
//     entries after the snapshot on top of it, and a joint change applied
//     twice panics. The storage keeps the indexes of the conf-change
//     entries in the log (found among the control batches at Open, noted
//     by Append, cut with a tail), and AdvanceStartApplied, the partition's
//     way to move the start, refuses a new first index k past applied+1
//     (ErrNotApplied) or with a conf change in [k, applied]
//     (ErrConfAboveStart), and records the applied conf state with the
//     anchor: so the start never stops between a conf change and the
//     applied index, and retention waits until it can move past one.
//     SnapshotMeta has no snapshot (false) when the anchor's configuration
//     is unknown (the start moved through plain AdvanceStart).
//   - Compact(first) moves FirstIndex to first through AdvanceStart, once
//     the owner's snapshot covers the entries below.
//   - The log start moves only through AdvanceStart (retention and
//     DeleteRecords): above the anchor at a batch boundary, anchor and
//     start together; at or below the anchor (a compacted topic's region)
//     the start alone, at any offset. The new state is written first,
//     then seglog.AdvanceStartOffset; Open finishes a move a crash
//     interrupted. A log whose start moved past the recorded start some
//     other way (seglog.ApplyRetention called directly) fails Open with
//     ErrStartMoved; one that ends before the anchor (entries lost) with
//     ErrLostEntries.
//   - AdvanceAnchorApplied follows AdvanceStartApplied's rule (at most
//     applied+1, no conf change in [new first index, applied], the applied
//     configuration recorded) and is one write of StateFile: a crash
//     leaves the old anchor or the new one, the segments untouched.
//   - InstallSnapshotRegion is InstallSnapshotAt with the leader's region:
//     RegionFile written durably, then StateFile with the reset and region
//     flags (the commit point: anchor, log start, conf state, commit),
//     then the log reset at the region's first batch, the region appended
//     keeping its offsets (seglog.AppendAsFollower), the end moved to the
//     anchor (seglog.SkipTo), the start to the leader's, all fsynced,
//     AfterReset, the flags cleared, RegionFile removed. A crash after
//     the commit point is redone by Open from the reset (idempotent); one
//     before leaves the old log. Never a log with a hole.
//   - InstallSnapshotRegionFile is the same with the region in a spool
//     file: renamed to RegionStreamFile and the directory fsynced before
//     the commit point (StateFile with the reset, region and stream
//     flags), the fill reading it a chunk at a time; the same crash rule.
//   - One mutex serializes every method, segment reads included.
package raftlog
