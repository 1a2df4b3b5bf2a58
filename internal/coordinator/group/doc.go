// Package group is Strom's group coordinator: consumer-group membership and
// rebalances (Kafka's classic JoinGroup/SyncGroup protocol, and the
// next-generation protocol of KIP-848 with server-side assignment) and
// committed offsets, kept durable in the internal topic __consumer_offsets.
// On a single node this broker coordinates every group; in a cluster the
// coordinator is the leader of __consumer_offsets-0 (Config.FollowLeader,
// follow.go, "Following the leader" below).
//
// The protocol handlers (internal/kafka/handler) translate requests into
// calls on a Coordinator and its domain errors (errors.go) into Kafka error
// codes; this package knows neither kmsg nor kerr.
//
// Files: group.go is what both protocols share (the actor's state, timers,
// lifecycle); classic.go the classic protocol; consumer.go KIP-848's
// heartbeat and reconciliation, assign.go its server-side assignors,
// consumer_records.go how such a group is stored and described;
// offsets.go committed offsets; txn.go the offsets of transactions;
// records.go and store.go the offsets log.
//
// # Concurrency
//
// Each group is an actor (franz-go kfake's habit): its state is read and
// written only by closures run one at a time by its mailbox, so the
// rebalance logic takes no lock. The mailbox starts a goroutine when a
// closure is posted to an idle group and lets it exit when the queue is
// empty, so idle groups cost no goroutine. Timers (sessions, rebalance and
// sync timeouts, the initial delay, pending member ids) post closures too,
// and a stopped timer's closure never runs. The Coordinator's mutex guards
// only the map of groups.
//
// Every request method returns at once with a Call; its answer arrives
// when the group has one: at once for most, when the join phase completes
// for JoinGroup, when the leader's assignment is durable for SyncGroup,
// when the offsets are durable for OffsetCommit. The handlers wait for it
// in Reply.Finish, so a connection's reader is never blocked by a
// rebalance. Nothing in an actor blocks: appends to the offsets log are
// quick, and the fsync is waited for by a worker goroutine that posts the
// result back.
//
// Following a leader, one more goroutine, the leadership watcher, is owned
// by the Coordinator and stopped by Close; it swaps the map of groups
// under the mutex (follow.go).
//
// The Clock is injectable; tests run timeouts and offset retention in fake
// time (testing/synctest) with scripted scenarios (testdata/*.txt, see
// script_test.go).
//
// # The classic group state machine
//
//	               first JoinGroup
//	+-------+  ---------------------->  +--------------------+
//	| Empty |                           | PreparingRebalance | <------------------+
//	+-------+  <----------------------  +--------------------+                    |
//	    |       join phase ends with              |                               |
//	    |       no member left                    | every member rejoined,        | a member joins,
//	    |                                         | or the rebalance timeout      | leaves, times out,
//	    |                                         v                               | does not sync, or
//	    |                               +---------------------+                   | rejoins with new
//	    |                               | CompletingRebalance | ------------------+ metadata (the
//	    |                               +---------------------+                   | leader: always)
//	    |                                         | the leader's SyncGroup        |
//	    |                                         | is durable                    |
//	    |                                         v                               |
//	    |                                     +--------+                          |
//	    |                                     | Stable | -------------------------+
//	    v                                     +--------+
//	+------+
//	| Dead |  DeleteGroups, or expired offsets left it empty with nothing
//	+------+  stored: it leaves the map; a new group of that id starts fresh
//
// Generations: every end of a join phase starts a new generation (also the
// one that ends Empty). Member ids are "<client id>-<UUID>" (static members:
// "<instance id>-<UUID>"); JoinGroup v4+ hands a new dynamic member its id
// with MEMBER_ID_REQUIRED and holds a rebalance for it until it comes back
// or its session timeout passes (KIP-394). The protocol chosen is the one
// every member supports that most members list first. The leader (the
// longest-standing member that rejoined) gets every member's metadata and
// assigns; SyncGroup delivers. A member that does not rejoin within the
// rebalance timeout is dropped (a static one stays until its session
// ends); one that does not sync within it is dropped and the group
// rebalances again. Static members (KIP-345) rejoining with a known
// instance id replace the old member id (FENCED_INSTANCE_ID for it) without
// a rebalance when the protocol choice is unchanged. Cooperative
// rebalancing (KIP-429) needs nothing from the coordinator: members rejoin
// with changed metadata and the group rebalances again.
//
// # The next-generation protocol (KIP-848)
//
// ConsumerGroupHeartbeat groups (type "consumer") are assigned by the
// coordinator ("uniform": even and sticky; "range": per topic ranges).
// The group epoch moves when members or what they subscribe to change (a
// topic created that a regex matches, partitions added); the target
// assignment is recomputed at once, and each member converges on its
// target: first it releases what is no longer its (keeping its epoch until
// it reports so, within its rebalance timeout, or it is removed), then it
// moves to the target epoch and gets the partitions nobody owns; the rest
// follow as their owners release them. So no partition is ever owned by two
// members. A member's state change is persisted (the whole group, record
// version 1) before its heartbeat is answered; after a restart members
// carry on in their epochs. Members commit with OffsetCommit v9+ (their
// epoch as the generation); an older epoch may commit only partitions the
// member still owns (KIP-1251). An empty group can change between the
// classic and the new protocol; one with members cannot.
//
// Who may commit: a member of the current generation (not between its
// JoinGroup and SyncGroup: REBALANCE_IN_PROGRESS), or anyone while the
// group has no members with generation -1 (admin tools, assign()ed
// consumers, OffsetCommit v0) — which creates a group with no protocol
// type if needed.
//
// # The offsets log
//
// __consumer_offsets is an internal topic of one partition, created by the
// cluster at the first group FindCoordinator or (single node) the first write
// (retention.ms=-1: only the coordinator removes data from it). Its
// records are keyed; a null value (tombstone) deletes the key. Strings are uint16-length UTF-8, byte arrays
// int32-length; integers are big-endian. Every value starts with its
// version (0).
//
//	key, committed offset                 key, group metadata
//	+----------+-------+-------+------+   +----------+-------+
//	| type=0   | group | topic | part |   | type=1   | group |
//	| int16    | str   | str   | i32  |   | int16    | str   |
//	+----------+-------+-------+------+   +----------+-------+
//
//	value, committed offset (version 0)
//	+---------+--------+--------------+----------+-------------+-------------+
//	| version | offset | leader epoch | metadata | commit time | expire time |
//	| int16   | int64  | int32        | str      | int64 ms    | int64 ms/-1 |
//	+---------+--------+--------------+----------+-------------+-------------+
//
//	value, group metadata (version 0)
//	+---------+---------------+------------+----------+--------+------------+---------+-----------+
//	| version | protocol type | generation | protocol | leader | state time | members | member... |
//	| int16   | str           | int32      | str      | str    | int64 ms   | int32   |           |
//	+---------+---------------+------------+----------+--------+------------+---------+-----------+
//	member: member id str | instance id str | client id str | client host str |
//	        rebalance timeout int32 ms | session timeout int32 ms |
//	        metadata bytes (for the group's protocol) | assignment bytes
//
//	value, KIP-848 group metadata (version 1)
//	+---------+-------------+--------------+----------+------------+---------+-----------+
//	| version | group epoch | target epoch | assignor | state time | members | member... |
//	| int16=1 | int32       | int32        | str      | int64 ms   | int32   |           |
//	+---------+-------------+--------------+----------+------------+---------+-----------+
//	member: member id | instance id | rack id | client id | client host (str each) |
//	        epoch int32 | previous epoch int32 | rebalance timeout int32 ms |
//	        assignor str | regex str | topics (int32 count, str...) |
//	        assigned, releasing (each: int32 count, (topic str, partition int32)...)
//
// The group record is written when a generation's assignment is complete
// (the leader's SyncGroup), when a group becomes Empty, and when a static
// member is replaced; so a restart brings a group back in its last
// completed generation, Stable with its members and assignments (their
// sessions restart), and consumers carry on without a rebalance.
//
// Durability: every change is appended as one batch, then a worker waits
// for the fsync (group commit, shared with other writers), then the
// change applies in memory and the request is answered. Effects apply in
// the order of the appends, whatever order the fsyncs finish in, and an
// OffsetFetch answers after every commit appended before it: an
// acknowledged commit is on disk and visible, an unacknowledged one is
// never seen.
//
// Transactions (txn.go, Kafka's design): TxnOffsetCommit's offsets are
// written as offset records in a transactional batch of the producer (its
// id and epoch, sequence -1), which the partition verifies with the
// transaction coordinator like any transactional batch. They are pending,
// per producer, in the group (not fetched; OffsetFetch's require_stable
// sees them) until the transaction's marker in this partition is handed
// to TxnMarker once committed: a COMMIT makes the producer's offsets
// written before it committed, unless a commit later in the log holds the
// partition (every committed offset remembers where in the log it was,
// and the later wins), an ABORT drops them. A group with pending offsets
// is never removed as empty, and an offset a transaction holds pending
// never expires. Deleting a group (DeleteGroups, Empty) or an offset
// (OffsetDelete) deletes what transactions hold pending for it too, as
// Kafka does (KAFKA-14505): a tombstone for each such partition, whose
// replay drops the pending offsets of its partition, so the
// transaction's COMMIT commits nothing there, and the cleaner keeps the
// tombstone over the transactional record. Invariant: what the groups
// hold equals what a replay of the log up to the last marker handed over
// gives.
//
// Loading: Open replays the log from its start offset and rebuilds every
// group; undecodable records are skipped with a warning. Transactional
// batches are pending until their producer's next marker in the log
// (applied as above), and stay pending when there is none yet. Listeners start
// after it, so on a single node nothing is ever answered
// COORDINATOR_LOAD_IN_PROGRESS.
//
// # Following the leader (a cluster)
//
// In a cluster __consumer_offsets has offsets.topic.replication.factor
// replicas (a raft group, internal/replica) and the coordinator serves only
// while its broker leads partition 0. Invariants:
//   - groups are loaded in one leader epoch (a raft term in which this
//     leader committed an entry, so the high watermark covers everything an
//     earlier leader committed) by replaying the log to the high watermark,
//     before any request is served (COORDINATOR_LOAD_IN_PROGRESS meanwhile);
//   - no request is handed to a group when the partition's leader epoch is
//     not the one the groups were loaded in (NOT_COORDINATOR, and the
//     watcher is woken), and no append is accepted in another epoch: a
//     broker that lost and won the lead between two checks never answers
//     from what it had before;
//   - a change answers once raft committed it (Partition.WaitCommitted:
//     fsynced on a majority), so what a new leader replays holds every
//     acknowledged commit; a cut or an ended leadership answers
//     NOT_COORDINATOR and the client retries at the new coordinator;
//   - losing the lead drops every group (pending joins and syncs answer
//     NOT_COORDINATOR, waits for commits are cancelled);
//   - a transaction marker handed over while loading is kept and applied
//     once the groups are loaded (it may lie past the replay's end); one
//     handed over while not serving is left to the next load's replay,
//     which sees it (it was committed before).
//
// Compaction: the offsets topic has cleanup.policy=compact, so the log
// cleaner (package storage/cleaner, run by the log directory) keeps the
// latest record of every key and, after delete.retention.ms, drops the
// tombstones of deleted offsets and groups, with Kafka's rules for
// transactions (an aborted transaction's records removed without hiding
// anything, a marker kept while a batch of its transaction is left,
// nothing from an undecided transaction on).
// Replay reads across the offset gaps and empty batches it leaves; the
// coordinator does nothing special.
// A replicated offsets partition is not compacted (the segments are the
// raft log: see partition.replicaLogConfig): it keeps every commit, and
// a new leader replays them all.
//
// Expiry (offsets.retention.minutes, checked every 10 minutes, KIP-211): a
// group with members keeps its offsets, except a Stable consumer group's
// offsets of topics no member subscribes to, which expire that long after
// their commit; an Empty group's offsets expire that long after it became
// Empty; a group without protocol type (commits only) loses each offset
// that long after its commit; an explicit retention (OffsetCommit v2-v4)
// wins. An Empty group left without offsets is deleted (group tombstone).
// Offsets of a deleted topic are removed when the cluster reports the
// deletion, and at every check for topics that no longer exist.
package group
