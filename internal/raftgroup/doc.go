// Package raftgroup runs one raft group (go.etcd.io/raft/v3) on this
// node: the engine under the metadata quorum (group 0, issue 17) and later
// under each replicated partition. It drives a RawNode over the group's
// own segment log (internal/raftlog), applies committed proposals to a
// StateMachine, snapshots and compacts, and hands raft messages to a
// transport through Config.Send / Group.Step. It imports raftlog, storage
// and record, never a socket (the broker wires internal/raftnet to it).
//
// # API
//
// Start opens the group's directory and starts its goroutine; Propose
// replicates a payload and waits for the state machine's result on this
// node; Step takes a message from the transport; Leader, WaitLeader,
// Status and TransferLeadership observe and steer; Stop ends it, and
// Done and Err tell a group that ended by itself (a storage failure, a
// panic).
//
// # Proposals and their framing
//
// A payload travels in one raft entry, which raftlog stores as one record
// batch, so the entry's Data is a v2 record batch (no compression, base
// offset and PartitionLeaderEpoch set by the log) holding one record:
//
//	key   (24 bytes, big-endian): | proposer raft id u64 | incarnation u64 | sequence u64 |
//	value: the payload (empty, never null, for an empty payload)
//	batch timestamp: the proposer's clock at Propose (informational only)
//
// The incarnation is a random number drawn at each Start, so a restarted
// node never takes an entry of its previous life for one of its new
// proposals. A follower's proposal is forwarded to the leader by raft
// itself (MsgProp). The proposer keeps its pending proposals by sequence;
// when it applies an entry whose key is its own (id and incarnation) it
// hands the state machine's result to the waiting Propose. Every
// committed entry goes to the state machine on every node, whoever
// proposed it.
//
// A Propose never hangs:
//   - no leader known, or raft refuses (leadership transfer, too many
//     uncommitted bytes): ErrProposalDropped at once;
//   - the proposer saw its entry appended at index i and another entry is
//     committed at i (a leader change cut it): ErrProposalDropped when i
//     is applied;
//   - forwarded to a leader that this node then sees lost (no leader, or
//     another), without having seen the entry in its own log:
//     ErrLeaderLost when that Ready is applied, the outcome unknown (the
//     old leader may have replicated it) — a killed leader costs its
//     followers' callers an election, not ProposalTimeoutTicks;
//   - not applied within ProposalTimeoutTicks (the forwarded message was
//     lost, the quorum is unreachable): ErrProposalTimeout, the outcome
//     unknown (it may still commit);
//   - this node jumped past the entry by a leader's snapshot:
//     ErrResultLost, the outcome unknown;
//   - the context ends: its error (the outcome unknown); Stop: ErrStopped.
//
// # The goroutine and its stop
//
// One goroutine per group owns the RawNode and everything in loopState.
// It handles any Ready first (a bootstrap's entries are there before any
// input); once the committed entries are applied, a node that is its
// group's only voter campaigns at once instead of waiting an election
// timeout (a single node leads within its Start). Then it selects on: Stop's channel, the tick (a time.Ticker of TickInterval,
// or Config.Tick), the inbox (Step's messages, bounded by InboxSize; Step
// drops and counts what does not fit), proposals, and requests (Status,
// TransferLeadership run as functions on it). After each input it takes
// up to 512 more messages and proposals without blocking, so that many
// share one Ready (one append, one fsync), then handles every Ready in
// etcd raft's order:
//
//  1. a snapshot from the leader: written to SnapshotFile, then
//     raftlog.InstallSnapshot resets the log to start after it;
//  2. the entries appended (raftlog.Append returns once they are
//     fsynced), then the hard state (fsynced) when its term or vote
//     changed: entries first, so that a commit index on disk never points
//     past the entries on disk. A hard state that differs only by its
//     commit index is kept in memory and written before this node answers
//     a proposal of its own (so what it acknowledged it applies again at
//     a restart, before any election), before a compaction, every
//     ElectionTicks ticks and at Stop: that takes the atomic file's two
//     fsyncs off the followers' path of every commit. A commit index on
//     disk that lags is safe (raft learns it again from the leader; Start
//     raises it to the snapshot's index), and is never written lower than
//     what is on disk;
//  3. only then the messages, through Config.Send (a MsgSnap is reported
//     to raft as sent: if it is lost, the follower rejects the next append
//     and raft sends it again);
//  4. the snapshot restored into the state machine, then the committed
//     entries applied (proposals to the state machine, configuration
//     changes to raft and raftlog's conf state);
//  5. Advance; then a snapshot when SnapshotEntries more were applied.
//
// Stop closes the stop channel and waits for the goroutine, which answers
// every pending proposal with ErrStopped and closes the log. A storage
// failure (an append, the hard state, a snapshot install) stops the
// goroutine the same way, with Err and Status.Err saying why: raft cannot
// go on once what it was told is durable may not be.
//
// # Snapshots and compaction
//
// Every SnapshotEntries applied entries the goroutine asks the state
// machine for its Snapshot, writes it with its metadata (index, term,
// conf state) to SnapshotFile (atomicfile: temp, fsync, rename, directory
// fsync), and only then compacts the log below it, keeping KeepEntries
// entries so that a follower a little behind catches up from the log.
// raftlog's Snapshot answers from that file (raftlog.SetSnapshotSource),
// so raft sends it to a follower behind the log's first index. A follower
// that gets one installs it as in step 1 and restores it. The snapshot
// is taken and written on the group's goroutine, which meanwhile neither
// ticks nor sends heartbeats: a state machine whose snapshot takes longer
// than an election timeout costs its node the leadership. A snapshot
// travels whole in one MsgSnap: over internal/raftnet it must fit its
// MaxFrame (16 MiB by default), which bounds the state machine's snapshot
// until snapshots are sent in chunks.
//
// At Start the snapshot file, if any, is reconciled with the log (a crash
// may have cut between them): a snapshot the log does not contain at its
// index with its term is an install that did not finish, redone; a commit
// index below the snapshot's is raised to it (the snapshot holds only
// committed state); a snapshot that ends before the log starts, or a log
// that starts after index 1 without a snapshot, refuses to start
// (ErrSnapshotBehindLog: entries were lost). Then the state machine
// restores the snapshot and raft replays the committed entries after it
// (raft.Config.Applied = the snapshot's index).
//
// # Bootstrap
//
// An empty directory (no entry, no hard state, no snapshot) bootstraps
// with Config.Voters (RawNode.Bootstrap: one conf-change entry per voter,
// committed at term 1); a directory with anything in it ignores Voters,
// and the configuration is what its log and snapshot say. Bootstrap's
// first Ready is the only one that appends entries with no hard state on
// disk yet: a crash between the two leaves the conf-change entries
// without their commit, which Start restores (term 1, commit = the last
// entry), or the group would have no voters. Every node of a group must
// bootstrap with the same voters: raft takes the bootstrap
// entries as committed everywhere, so nodes that bootstrapped different
// sets hold different entries at the same indexes with the same term,
// which raft's log matching never repairs — each side may elect its own
// leader and the group splits silently. raftgroup cannot see another
// node's list, so the broker refuses a mismatch at the configuration level
// (controller.quorum.voters must be the same everywhere) before Start. A
// node whose id is not among the voters starts, never campaigns, and gets
// no messages.
//
// # The group directory
//
//	<Dir>/
//	  00000000000000000000.log ...  the raft log: one entry = one batch
//	  00000000000000000000.index    (internal/raftlog over internal/storage/seglog;
//	  00000000000000000000.timeindex  segments roll at Config.SegmentBytes)
//	  raft-state                    raftlog's hard state, conf state and anchor
//	  snapshot                      the latest snapshot (atomicfile, magic "STSN", version 1):
//
//	| u32 len | raftpb.SnapshotMetadata (protobuf: index, term, conf state) | state machine data |
//
// # Invariants
//
//   - Nothing is sent before what it depends on is durable (step order
//     above); a proposal's result is returned only after the entry is
//     committed (on a majority's disks) and applied here.
//   - The snapshot file is written before the log is compacted or reset
//     below it, so the log's start never passes the snapshot's index + 1.
//   - The state machine's methods run on the group's goroutine only, in
//     index order, each committed entry once per Start (after a restart,
//     entries after the snapshot are applied again to a state restored
//     from it).
//   - The RawNode and loopState are touched only by the goroutine (Start
//     sets them up before it exists).
package raftgroup
