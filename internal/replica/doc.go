// Package replica runs the raft group (go.etcd.io/raft/v3) of one
// replicated partition on this node (issue 18): the partition's segment
// files are the raft log (internal/raftlog over the partition's seglog),
// so the data is on disk once. It imports partition, raftlog and raftgroup
// (for its raft logger), never a socket: the broker routes messages
// between Step and Config.Send (internal/raftnet).
//
// # Why not internal/raftgroup
//
// raftgroup frames each proposal in its own batch (proposer id and
// sequence in the record key) and applies committed entries to a state
// machine: right for metadata, wrong for client data, whose batch must be
// the entry itself (one copy, the bytes a consumer reads). This package is
// a separate runner with another proposal-tracking scheme and reuses
// raftgroup's raft logger only; raftgroup is unchanged but for exporting
// that logger (RaftLogger).
//
// # Proposals
//
// Only the leader takes writes (raft's DisableProposalForwarding: a
// follower answers partition.ErrNotLeader, which clients see as
// NOT_LEADER_OR_FOLLOWER), and only once it has committed an entry in its
// term (its LeaderEpoch is that term; -1 before). While the leadership is
// changing here (a candidate, a leader whose term has no committed entry
// yet, or a leader handing over, whose proposals raft drops),
// WaitLeadershipSettled lets a caller wait for it to settle (the produce
// handler does, up to 1 s) instead of refusing a client a KIP-951 hint
// just sent here. The partition validates
// and checks the idempotent sequences, then Propose hands the batch (a
// copy: raft keeps it until every follower has it) to the goroutine,
// which proposes it. raft clones proposed entries, so a proposal is
// tracked by the index raft gives it: the log's last index after the
// previous Ready plus the proposals raft took since. When the entry is in
// a Ready and appended (fsynced) here, its bytes are compared with the
// proposal's and Propose returns its offsets and term (acks=1 answers
// then); a proposal that raft dropped, or whose index another entry took,
// fails with ErrNotLeader. acks=all waits in partition.WaitCommitted for
// the high watermark to pass the batch while its offset still holds a
// batch of its term (raft's log matching: same index and term, same
// entry), and fails with ErrTruncated when a leader change replaced it.
//
// The proposals of one idempotent producer are serialized (the
// partition's lock for that producer id held from the sequence check to
// the local append), so the check of its next batch sees the previous
// one; other producers' batches are proposed concurrently and the
// goroutine takes up to 512 of them into one Ready: one append, one fsync.
//
// # The Ready loop (one goroutine per replica, owner: Start/Stop)
//
// Ticks come from Config.Tick (tests), the node's Ticker, or a ticker of
// the replica's own; a quiesced replica takes none (Quiescence, below).
//
//  0. A leader whose term and vote are on disk sends the Ready's messages
//     first, so its appends reach the followers while its own fsync runs
//     (raft thesis 10.2.1, allowed by etcd raft's doc): raft counts the
//     leader's copy only after Advance, so a commit still means fsynced
//     on a majority.
//     Then, before anything is appended, the high watermark moves to the
//     Ready's commit index as far as the entries already in this log go
//     (below the Ready's first entry): those are fsynced on a majority,
//     so an acks=all producer whose batch the followers just acknowledged
//     is answered without waiting out the fsync of the next proposals
//     that the same Ready carries. It stops below the first committed
//     entry that does something when applied (a start move, a
//     configuration change; applied at 3), so a caller waiting for such
//     an entry's commit finds it applied.
//  1. A conflicting uncommitted tail (entries at or below the last index)
//     is cut through partition.TruncateTo, which rebuilds the producer
//     state from what remains; then raftlog.AppendChecked writes the
//     entries (fsynced; the CRC of the leader's own proposals, which the
//     partition validated, is not computed again), and
//     partition.Appended records their producers: every replica's
//     producer state is what the batches in its log say.
//  2. The hard state: a new term or vote fsynced, a commit index that
//     moved alone kept in memory by raftlog and written every election
//     timeout, on quiescing, at stop and with any other write of
//     raft-state (raft's MustSync rule; a restart after a crash re-applies
//     the committed entries after the commit on disk, and applying is
//     idempotent); then the messages sent if not sent at 0 (a snapshot
//     among them reported to raft as sent, as raftgroup does: otherwise a
//     MsgSnap lost on the way, or a follower that crashed while
//     installing it, would leave that follower paused for good).
//  3. Committed conf changes applied (raft and raftlog's conf state).
//  4. Advance; the high watermark set to the (whole) commit index translated
//     (the offset after the last committed batch): reads (Fetch,
//     ListOffsets latest) stop there. raftlog's entry cache is released
//     up to the applied index and, on a leader, the match index of every
//     follower it replicates to: the committed entries of the next Readys
//     and the appends to followers come from memory, and an idle group
//     holds none.
//
// A leader's snapshot in a Ready (snapshot.go) is installed before its
// entries: the producer state it carries is put aside durably
// (partition.PrepareReset), raftlog.InstallSnapshotAt commits to the reset
// and restarts the log empty at the snapshot's log start offset, the
// partition takes the state (FinishReset, also run when a restart
// finishes an install a crash cut), and the entries from there follow.
//
// A storage failure stops the goroutine (Err says why); pending proposals
// fail.
//
// # Snapshots and retention
//
// A partition's snapshot is the log start offset X and the idempotent
// producer state as of X (partition.ReplicaSnapshot: each producer's
// epoch and cached batches below X; the follower records the ones from X
// again as it appends them), with raft metadata index FirstIndex-1, the anchor's
// term and the configuration recorded with the anchor. The leader builds
// it when raft asks (a follower behind its FirstIndex), on the goroutine.
//
// Retention (retention.go): the log keeps none of its own (partition's
// replica log config); ApplyRetention, which the cluster calls every
// log.retention.check.interval.ms, asks the partition where the topic's
// retention would move the start (partition.RetentionOffset) and moves it
// on the goroutine with raftlog.AdvanceStartApplied: the anchor first,
// never past the applied index, never to a point with a conf change
// between it and the applied index (the snapshot's configuration must be
// the one as of its index; retention then waits to move past the change,
// so the disk may hold more than retention asks until the segments
// holding the change are due). Each replica decides alone from its own
// segments, as Kafka's replicas do; a follower's start may lag or lead
// the leader's, and only a follower behind the leader's start needs a
// snapshot. DeleteRecords (deleterecords.go) must move the start on every
// replica alike, so it is a raft entry: the leader proposes a control
// batch of type raftlog.ControlStartOffset (the base offset of the batch
// holding the requested offset), every replica applies it at commit with
// AdvanceStartApplied at the entry's own index (the same log, the same
// decision), and the leader answers once it applied it.
//
// # Compaction (compaction.go)
//
// A compacted topic's cleaner removes batches, which must never be raft
// entries. Each replica, alone and on its goroutine, moves raft's anchor
// up without moving its log start (raftlog.AdvanceAnchorApplied): the
// batches below the anchor stay readable but leave raft, and the cleaner
// rewrites only segments below it (CleanBound, the bound package cluster
// gives the directory's cleaner; it moves the anchor when the cleaner
// looks, every log.cleaner.backoff.ms). The anchor goes to the end of the
// last sealed segment at or below the first entry that must stay raft's:
// never past applied+1 (nor, by raftlog's rule, to a point with a conf
// change between it and the applied index: it waits), and on the leader
// never past any member's match index + 1 (voters and learners, down or
// not; a new leader that does not know a follower's progress yet holds
// it), so that a lagging or restarting follower, or a learner copying the
// log, still gets entries, unless the sealed segments between that
// member's entry and the applied one exceed Config.AnchorLagBytes (128
// MiB): one dead or stuck member does not stop cleaning for good, it then
// needs a snapshot. Without Config.SendSnapshot (no streaming) only while
// the region already below the anchor is at most half
// Config.MaxSnapshotRegionBytes, since a larger snapshot could not be
// sent (the member then holds the anchor however far behind it is, and
// the log grows until it returns or is reassigned); with streaming a
// region of any size can be sent, and the rule is off. A follower's
// anchor follows its applied index: after
// a leader change a member behind the new leader's anchor gets a
// snapshot. Replicas clean alone, so their cleaned bytes may differ below
// their anchors (the same keys' latest values; offsets are kept): as on
// Kafka, where every replica runs its own cleaner.
//
// A snapshot (snapshot.go) then carries the region below the anchor too:
// its Data is an envelope (regionSnapshotTag) holding the partition's
// snapshot, the leader's log start and its batches in [log start,
// anchor) as stored (raftlog.Region); when the configuration changed
// since the anchor (a learner added: raft refuses a snapshot whose
// configuration lacks its recipient) it is taken at the applied index
// instead, carrying the log up to it (raftlog.SnapshotMetaApplied). It is
// installed with raftlog.InstallSnapshotRegion (offsets and gaps kept, crash-safe through
// a region file). The region travels inline up to
// Config.MaxSnapshotRegionBytes (8 MiB, within raftnet's 16 MiB frame).
//
// # Streamed snapshots (snapstream.go)
//
// A larger region streams beside its MsgSnap when Config.SendSnapshot is
// set (the broker wires raftnet's snapshot stream): the snapshot's Data is
// then a reference (streamSnapshotTag: the partition snapshot, the log
// start, the anchor, a random snapshot id), and the region's bytes travel
// in chunks (Config.SnapshotChunkBytes, 4 MiB) on a connection of their
// own, read from the leader's log as they are sent
// (raftlog.RegionReader, on the transport's goroutine, no lock held
// between chunks). The follower's transport writes them into a
// SnapshotSink: a spool file "raft-snap-<id>.part" in the partition
// directory, every chunk checked first (raftlog.RegionCheck), fsynced and
// renamed "raft-snap-<id>" once the transport checked the stream's
// length and CRC; only then is the MsgSnap handed to Step. step drops a
// MsgSnap whose complete spool is not there (raft must not accept a
// snapshot the install cannot fill). The install (installStreamed)
// removes every other spool and hands this one to
// raftlog.InstallSnapshotRegionFile (renamed before the commit point,
// the log filled from it a MiB at a time). The spool of a MsgSnap raft
// did not take (an old term, an index the log holds) is removed after
// the Readys that follow its step (dropUnusedSpools), and Start removes
// every spool (a transfer a crash cut, or a snapshot never installed).
// So neither side holds more than a few chunks per stream (the leader's
// log read, its copy, the transport's frame), and a power cut at any
// point leaves the old log or the new one.
//
// Why a reference and a separate stream, not the region in MsgSnap or in
// many raft messages: raft's snapshot flow stays as it is (MsgSnap,
// ReportSnapshot, the follower answering after its install), heartbeats
// and appends never queue behind gigabytes on the batch connection (etcd's
// rafthttp streams snapshots apart for the same reason), and the follower
// steps the MsgSnap only once its bytes are durable, so raft never holds a
// snapshot it cannot install.
//
// Flow on the leader: the MsgSnap of a streamed snapshot is not given to
// Config.Send but to Config.SendSnapshot with a reader of the region, and
// reported to raft when the stream ends (ReportSnapshot: Finish once the
// follower acknowledged, Failure snapshotRetryTicks (1 s) after it failed,
// doubled at each failure in a row up to 32 s, so that a stream that
// keeps failing, a follower's full disk, is not rerun back to back), not
// when it is handed over as
// other snapshots are: the follower stays in StateSnapshot (heartbeats
// only) for the transfer's length instead of being probed and sent
// another snapshot every round trip. At most one stream per follower; a
// new MsgSnap to a follower with one running is dropped (its end reports
// to raft, which sends another if needed). A leader that loses leadership
// cancels its streams (the next chunk fails); the new leader sends its
// own. Two snapshots never mix: each has its own id and spool, and a
// sink refuses an id already received.
//
// Without SendSnapshot a follower that needs more than
// MaxSnapshotRegionBytes stays behind (the leader answers
// raft.ErrSnapshotTemporarilyUnavailable and logs it once a minute) and
// never installs a log with a hole.
//
// compression.type other than producer: the leader's partition
// recompresses a batch before proposing it (partition.Append), and raft's
// storage stores entries as they are, so every replica holds the same
// bytes.
//
// A topic with message.timestamp.type=LogAppendTime is stamped by the
// leader's partition before the proposal; the replicas' logs do not stamp
// (partition.SetReplicator turns it off), so every copy is the same bytes.
//
// # Kafka's view
//
// Leader epoch = the term the leader committed an entry in; high
// watermark = the commit index translated; ISR (on the leader) = the
// voters whose match index reached the leader's last index of a tick
// within Config.LagTime (replica.lag.time.max.ms), the leader itself
// always. OnChange reports the view (leader, epoch, ISR) when it changes.
//
// # Leadership moves
//
// A leader whose node the cluster's liveness view reports down
// (NodesDown) is replaced at once by the live voter of the lowest id,
// through raft's MsgTimeoutNow (leaderdown.go), instead of after an
// election timeout.
//
// Config.Preferred (the topic's first replica): a leader that is not it
// transfers leadership to it once it has caught up and Config.Live says
// its broker is up (not fenced: a broker just restarted is, for a
// moment, and a leader there is listed as none), no sooner than
// balanceDelayTicks after taking over or last trying. TransferLeadership
// serves the broker's hand-over at SIGTERM (internal/cluster).
//
// # Quiescence (quiesce.go, ticker.go)
//
// An idle group stops ticking, as CockroachDB's quiesced ranges: no
// heartbeats, no election timer, no CPU. At a tick, a leader quiesces
// when nothing is pending: no proposal queued or unanswered, no Ready,
// no leadership transfer, commit = applied = last index, every member
// replicating with match = last index (a member Config.Live says is down
// may be behind), a majority recently active (raft's RecentActive), no
// hand-over to the preferred replica due (a preferred replica up by
// Config.Live, or heard from within LagTime without it, blocks
// quiescence until it leads), and an election timeout passed
// since it last woke. It then sends each caught-up member one last
// heartbeat, built here (raft has no quiescence): MsgHeartbeat of its
// term with commit = last index and a marker Context (quiesceCtx), and
// stops calling Tick. A follower that steps that heartbeat from its
// leader in its term quiesces too. Why a marked heartbeat rather than a
// message type of our own: it goes through raft as any heartbeat does, so
// the follower takes the commit index (its high watermark moves) and
// resets its election timer, and the transport needs nothing new. Its
// Context starts with 8 zero bytes because a leader reads a heartbeat
// response's Context as a read-index ack (a uint64, max-merged): zero
// leaves that unchanged.
//
// A quiesced replica wakes (ticks again) on: a proposal; a
// TransferLeadership or Campaign; any message but a quiesce heartbeat or,
// on a leader, a heartbeat response (the answers to its last
// heartbeats); and Unquiesce/NodesDown. Messages drive commits without
// ticks, so a conf change or an append that reaches a quiesced group is
// replicated and wakes every replica it touches. While quiesced, a
// leader's ISR is the members caught up when it quiesced (no lag can
// grow with nothing written).
//
// Liveness: a quiesced follower does not campaign, so a leader that dies
// quiesced must be reported. A leader's replica that stops while its node
// lives on (Stop, a storage failure) sends each member a plain heartbeat
// as it goes (leaving), which wakes them. A node that dies must be
// reported by the caller. The cluster (internal/cluster/liveness.go)
// calls NodesDown for every replica while some node is fenced by the
// metadata quorum or has no raftnet connection to this node; a quiesced
// follower whose leader is down wakes and, after its randomized election
// timeout, campaigns (PreVote, then the vote). A quiesced leader that
// lost a majority wakes too, so CheckQuorum steps it down. A wake that
// was not needed (the leader is alive) costs one PreVote round: the
// leader wakes on the PreVote and ignores it (its lease, CheckQuorum),
// the other follower ignores it too, and the leader's next heartbeat
// makes the candidate a follower again; it quiesces them all again an
// election timeout later. A quiesced leader does not tick, so CheckQuorum
// does not step it down; PreVote keeps a woken follower from disrupting
// a live leader. Both are on (raftConfig).
//
// Ticks: Config.Ticker is one time.Ticker per node ticking the awake
// replicas only; a quiesced replica is off its list (a time.Ticker per
// replica would wake 10,000 goroutines ten times a second). raft draws
// each replica's election timeout at random in [ElectionTicks,
// 2*ElectionTicks), which staggers elections after a broker restart.
//
// # Memory of an idle replica (inbox.go)
//
// A broker may host 10,000 replicas, most of them quiesced, and the
// garbage collector scans whatever they hold: an idle replica holds only
// its state. Its inbox (what Step queues for the goroutine) is a ring that
// grows on demand to inboxMax (4,096) messages and gives its memory back
// when it empties (keeping at most inboxKeep slots), with a one-slot
// channel as the goroutine's wake-up; Step never blocks, and a message
// past the bound is dropped and counted (Status.DroppedMessages; raft
// retries). The goroutine takes messages in their order, alternating
// with proposals, up to drainMax before a Ready, as a select over two
// channels did. Proposals wait in a small channel (proposeSlots): a
// Propose beyond it waits in its send, and the drain takes those too.
// raftlog's entry cache holds nothing once every follower matched
// (releaseCache). TestIdleReplicaHeap measures the heap per quiesced
// replica (1,000 of them): 43 KiB with a 4,096-slot channel as the inbox,
// 8.5 KiB now, plus about 4 KiB of goroutine stack.
//
// # Bootstrap
//
// An empty partition (no entry, no hard state) bootstraps with
// Config.Voters, the topic's replicas, which every replica is given alike
// from the metadata; the conf changes are control batches at the first
// offsets, skipped by clients. The preferred replica of a group it
// bootstrapped campaigns once the bootstrap is applied and every
// bootCampaignEvery ticks while no leader is known, for its first
// bootCampaignTicks ticks (maybeBootCampaign), while the group's other
// new replicas hold their election timers for bootHoldTicks, so the
// group's first leader is the topic's first replica, as in Kafka, even
// when its node creates the group after theirs. A partition that holds data but no raft
// state (an RF=1 partition) cannot become a group in place: Start fails.
// With Config.Join an empty partition does not bootstrap: it waits, with
// no configuration (it never campaigns), until its group's leader adds it
// and sends it the log from the first entry; package cluster sets it for
// every partition a reassignment may have reconfigured, whose first
// entries no longer name the topic's replicas.
//
// # Membership changes (membership.go)
//
// Reconfigure, called on the leader, takes one step towards a target set
// of voters: add each new replica as a learner, then, when every learner's
// match index has reached the commit index, one joint change (explicit
// transition) promoting them and removing the dropped voters, then leave
// the joint configuration, after handing leadership to a new voter when
// the leader is being dropped. One change at a time, each proposed only
// once the previous one is applied here; a conf change takes an index
// like a batch, so the proposals' index tracking counts it. Done is
// reported once the applied configuration is the target with no learner.
// SetPreferred changes Config.Preferred on the goroutine.
//
// A heartbeat whose commit index is past this replica's persisted log
// (Step, lostData) means the replica lost entries it had acknowledged (a
// wiped disk under a node id still in the group); raft would panic on it,
// so it is dropped and logged: the group goes on without this replica
// until a reassignment removes it and adds it back as a new learner.
package replica
