// Package txn is Strom's transaction coordinator: producer ids and epochs
// of transactional producers, their transactions across partitions
// (consumer groups' offsets partitions among them), and the markers that
// end them, kept durable in
// the internal topic __transaction_state. On a single node this broker
// coordinates every transactional id; in a cluster the broker that leads
// __transaction_state-0 does (Config.Coordinates), and the others'
// coordinators refuse with ErrNotCoordinator. There the log is a raft
// group of transaction.state.log.replication.factor replicas (one, placed
// with __consumer_offsets-0, when the offsets topic has one), and the
// coordinator follows its leader (Config.FollowLeader, follow.go): it
// loads the log when its broker takes the lead and drops it when it
// loses it.
//
// Partitions other brokers lead get their markers through a MarkerSender
// the broker provides (WriteTxnMarkers to their leaders): this package
// opens no socket and speaks no protocol. A transaction completes only
// when every marker, local and remote, is acknowledged durable; until
// then it stays Prepare* and the loop retries the completion.
//
// Consumer-group offsets (Kafka's design): AddOffsets adds the group's
// partition of the offsets topic (Config.OffsetsPartition) to the
// transaction as an ordinary partition; the group coordinator writes the
// offsets there in the producer's transaction (TxnOffsetCommit, verified
// by that partition through Verify), and the end's marker there commits
// or drops them. A marker written in process is told to
// Config.MarkerWritten once committed (the group coordinator's TxnMarker);
// WriteTxnMarkers does the same on other brokers. VerifyGroup also tells
// whether the group itself was added, for a TxnOffsetCommit at this
// broker. Legacy: records written before this hold a transaction's offsets
// themselves (the offsets field below); a commit of such a transaction
// still applies them through Config.CommitOffsets, and nothing writes them
// any more.
//
// The protocol handlers (internal/kafka/handler) translate
// InitProducerId, AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit,
// EndTxn, DescribeTransactions and ListTransactions into calls on a
// Coordinator and its domain errors (errors.go) into Kafka codes; this
// package knows neither kmsg nor kerr. Partitions ask Verify before a
// producer's first transactional write (KIP-890 part 1).
//
// # Concurrency
//
// Each transactional id has an op lock that serializes its operations:
// a request holds it across its log append and the fsync wait, so the
// steps of one transaction never interleave and no state machine code
// needs another lock. The end of a transaction is the exception
// (complete.go): EndTxn answers once the prepare record is durable and
// every marker written (local ones appended, other brokers' sent and
// acknowledged); a completer goroutine, owned by the
// Coordinator (stopped by Close, which waits for it), waits for the
// markers without the op lock and takes it only to append the completion
// record. Meanwhile the id is Prepare* and every request that would start
// its next transaction (or re-initialize it) waits for the completer
// (settle: the op lock is released while waiting, and the producer's id
// and epoch are checked again after), up to Config.CompletionWait, then
// gets ErrConcurrentTransactions; except after an end that bumped the
// epoch with every marker in a log of this broker that is not replicated
// (a single node, transactions v2): then the next transaction begins at
// once and its records carry the ended one's markers (record.Prev) until
// they are durable, so they need no fsync of their own (complete.go says
// why that is safe). Several completers of one id may then run; each
// clears t.completing only if it is still its own. (A mailbox actor as in
// package group would give the same order; requests here always wait for
// an fsync before answering and never need timers of their own, so a
// lock held by the waiting handler goroutine is the smaller mechanism.)
// The state itself (cur) is replaced only by the op holder, under the
// coordinator's mutex, so Verify, Describe and List read it under that
// mutex alone: a partition may call Verify while holding its own lock even
// while the op holder is writing a marker to it (which takes that lock).
// Lock order: a txn's op, then a partition's lock, then the coordinator's
// mutex; the coordinator's mutex is never held across I/O.
//
// One goroutine, owned by the Coordinator and stopped by Close, checks
// every CheckInterval for transactions past their timeout and for
// completions that failed (no completer running), and finishes them.
//
// # The state machine
//
//	        InitProducerId                 AddPartitionsToTxn /
//	+-------+  (epoch+1) +---------+       AddOffsetsToTxn      +---------+
//	| Empty | ---------> |  Empty  | -------------------------> | Ongoing |
//	+-------+            +---------+                            +---------+
//	                       ^     ^                     EndTxn     |     | EndTxn(abort), timeout
//	                       |     |                    (commit)    |     | or a new InitProducerId
//	                       |     |                                v     v  (epoch+1: fenced)
//	                       |     |                 +---------------+   +--------------+
//	                       |     |                 | PrepareCommit |   | PrepareAbort |
//	                       |     |                 +---------------+   +--------------+
//	                       |     |   markers               |                   | markers
//	                       |     |                         v                   v
//	                       |     |                +----------------+   +---------------+
//	                       |     +--------------- | CompleteCommit |   | CompleteAbort |
//	                       +--------------------- +----------------+   +---------------+
//	                         (InitProducerId or the next AddPartitions: a new transaction)
//
// Every transition is one record, appended and fsynced before it takes
// effect in memory and before the request is answered, except the last:
// once Prepare* is durable the outcome is decided; the markers (a COMMIT
// or ABORT control batch with the producer's epoch, through
// partition.AppendMarker, and the other brokers' through the
// MarkerSender) are written to every partition of the transaction and
// EndTxn is answered; the local markers' fsyncs (the partitions in
// parallel), a legacy record's offsets (applied through the group
// coordinator) and Complete*, appended without waiting for its fsync, are
// left to the completer: until it is durable a
// restart finds Prepare* and completes again, and every later record of
// the id is behind it (the id's next transaction starts only after the
// completion, or, overlapped, carries the markers in its own records
// until they are durable, and no Complete* is written for them). A transaction costs its producer two fsyncs of the log in
// series besides its data: the partitions added, and the prepare; with
// the overlap above, its markers cost no fsync of their own. A restart
// that finds a record carrying a previous end's markers (Prev) repairs
// them first (partition.RepairMarker: only where the producer's open
// transaction is older than the markers' epoch), then completes. A
// crash at any step leaves Prepare* in the log; Open finishes it before
// the listeners start (markers and offsets may then be written twice,
// which changes nothing: a second marker ends no transaction, the same
// offsets are committed again). An Ongoing transaction found at start
// goes on, and is aborted at its timeout if its producer is gone.
//
// Transactions v2 (KIP-890 part 2, tv2.go): Produce v12+ and
// TxnOffsetCommit v5+ add their partition or group themselves
// (AddPartitionImplicit, AddOffsets from the handler), and EndTxnBump (EndTxn
// v5+) ends the transaction at the next epoch, so every transaction has an
// epoch of its own and a late write of an ended one is fenced. In a
// cluster a partition leader or group coordinator on another broker adds
// through AddPartitions (AddPartitionsToTxn v5 from that broker, as Kafka
// 4.0's brokers send it), and Verify under the partition's lock stays the
// guard; EndTxnBump, as every operation, answers ErrNotCoordinator (never
// ErrUnknownTxnID) where the log is not loaded.
//
// Fencing: InitProducerId on an id bumps its epoch (an Ongoing
// transaction is first aborted with markers at the new epoch, so the
// partitions refuse the old instance's late batches). Requests at an older
// epoch get ErrProducerFenced; at the epoch a timeout abort bumped away,
// ErrInvalidProducerEpoch (KAFKA-20785). An epoch about to overflow moves
// the id to a new producer id at epoch 0 (KAFKA-18660).
//
// # The transaction log
//
// __transaction_state is an internal topic of one partition, created at
// the first InitProducerId with a transactional id (retention.ms=-1).
// Keys and values are big-endian; strings are uint16-length UTF-8.
//
//	key
//	+----------+----------------+
//	| type=0   | transactional  |
//	| int16    | id str         |
//	+----------+----------------+
//
//	value (version 0)
//	+---------+-------------+-------+------------+-------+----------+-----------+
//	| version | producer id | epoch | timeout ms | state | start ms | update ms |
//	| int16   | int64       | int16 | int32      | int8  | int64    | int64     |
//	+---------+-------------+-------+------------+-------+----------+-----------+
//	| partitions: int32 count, (topic str, partition int32)...                  |
//	| groups: int32 count, group str...                                         |
//	| offsets (legacy, written empty now): int32 count, (group str, topic str,  |
//	|          partition int32, offset int64, leader epoch int32, metadata str)...|
//	+---------------------------------------------------------------------------+
//	| version 1 only: the previous end's markers not yet known durable (Prev)   |
//	| producer id int64 | markers' epoch int16 | commit int8 (0/1) |            |
//	| partitions: int32 count, (topic str, partition int32)...                  |
//	+---------------------------------------------------------------------------+
//
// Version 1 is written only for a record that carries Prev; every other
// record stays version 0.
//
// The latest record of a key is its state. Loading replays the log from
// its start; undecodable records are skipped with a warning. The log grows
// by about three records per transaction; snapshot compaction
// (compact.go, as the group coordinator's) rewrites the live records at
// the head of a new segment and moves the log start past the rest once
// the log passes Config.CompactBytes with at most half of it live. The
// timeout loop's goroutine runs it.
package txn
