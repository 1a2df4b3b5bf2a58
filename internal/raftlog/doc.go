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
// fsync, rename, directory fsync; version 2) holds raft's HardState and
// ConfState (protobuf), and the anchor: the raft index and the offset of the
// log's first batch, and the term of the entry before it (raft's
// Term(FirstIndex-1)); then a flags byte (1: a snapshot install's log reset
// is pending) and the configuration as of the anchor (protobuf; length
// 0xffffffff when unknown):
//
//	| u32 len | HardState | u32 len | ConfState |
//	| u64 anchor index | i64 anchor offset | u64 anchor prev term |
//	| u8 flags | u32 len | anchor ConfState |
//
// Version 1 (read still) ends after the prev term. The first Open writes
// the file, with the anchor at index 1 and the log start offset, so that a
// start moved later around this package is caught.
//
// # Invariants and contracts
//
//   - Durability: Append returns once its entries are fsynced
//     (seglog.WaitDurable on the last one), and SetHardState/SetConfState
//     once the file is; a Ready's messages may be sent as soon as they
//     return. There is no separate Sync. Call Append before SetHardState
//     for the same Ready: the two are separate files, and a commit index
//     on disk must not point past the entries on disk after a crash.
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
//     DeleteRecords, at a batch boundary): the new anchor is written first,
//     then seglog.AdvanceStartOffset; Open finishes a move a crash
//     interrupted. A log whose start moved past the anchor some other way
//     (seglog.ApplyRetention called directly) fails Open with ErrStartMoved;
//     one that ends before the anchor (entries lost) with ErrLostEntries.
//   - One mutex serializes every method, segment reads included.
package raftlog
