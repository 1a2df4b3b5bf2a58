// Package raftnet carries raft messages between nodes (issue 17's
// transport on the CONTROLLER listener): plain framing over TCP, messages
// of many raft groups batched into one frame, no gRPC. It imports raft's
// message type and nothing of the broker, which wires it (broker/quorum.go).
//
// # Ids
//
// Peers are named by node id (Kafka's node.id). Raft ids are node.id + 1
// (etcd raft reserves 0), so Send routes a message to node m.To-1; a
// message to raft id 0 or to a node not in Config.Peers is dropped.
//
// # Connections
//
// Each node dials one connection to each peer and writes only on it; it
// reads only on the connections it accepts. So a pair of nodes has two
// connections, one each way (as etcd's rafthttp streams), which needs no
// rule for which side dials. Every message from A to B, of every group,
// travels on A's one connection to B: the order of one sender's messages
// to one peer, and so per group, is kept while the connection lives.
//
// # Frames
//
// All integers are big-endian. Every frame is:
//
//	+----------+----------+------------------------------+
//	| size u32 | crc u32  | body (size-4 bytes)          |
//	+----------+----------+------------------------------+
//	size: bytes after the size field, 5..MaxFrame (checked before the body is allocated)
//	crc:  CRC-32C (Castagnoli) of the body
//
// A connection starts with a handshake, then carries only batches:
//
//	hello body:   | kind=3 u8 | version=2 u8 | node id i32 | incarnation u64 |
//	              | mechanism length u8 | mechanism | cluster id length u16 | cluster id |
//	auth body:    | kind=4 u8 | SASL token (the rest of the body) |
//	verdict body: | kind=5 u8 | code u8 | reason length u16 | reason |
//	batch body:   | kind=2 u8 | count u32 | count × entry |
//	entry:        | group u64 | length u32 | raftpb.Message (proto.Marshal, length bytes) |
//
//	ping body:    | kind=6 u8 |
//	probe body:   | kind=11 u8 | id u64 |   (Probe: asks the peer's process to answer)
//	probe ack:    | kind=12 u8 | id u64 |   (the answer, on the peer's own connection)
//
//	verdict codes: 0 accepted, 1 refused, 2 duplicate node id
//
// A snapshot stream (below) carries, after the handshake:
//
//	header body:  | kind=7 u8 | group u64 | raftpb.Message (a MsgSnap, the rest) |
//	chunk body:   | kind=8 u8 | payload bytes (the rest; up to MaxFrame-5) |
//	end body:     | kind=9 u8 | total payload bytes u64 | CRC-32C of the payload u32 |
//	ack body:     | kind=10 u8 | code u8 | reason length u16 | reason |   (receiver to sender)
//
// A node of an older Strom reads a probe as a bad frame and closes the
// connection: probes are sent only to brokers registered as answering
// them (metadata.BrokerInfo.AnswersProbes; package cluster chooses).
//
// Kind 1 was the hello of Strom before version 2 (node id and cluster id,
// no version, no authentication): it is refused, and the log says a node
// of an older Strom dialled in. A hello of another version is refused too.
//
// # The handshake, and who is authenticated
//
// The dialler authenticates to the acceptor, which is what keeps a
// stranger from injecting raft messages: a node reads raft messages only
// on connections it accepted. In order, each step bounded by HelloTimeout
// (the whole handshake), frames bounded by 64 KiB until it is over:
//
//  1. TLS (Config.ServerTLS / ClientTLS, the CONTROLLER listener's SSL or
//     SASL_SSL): crypto/tls both ways. For SSL the acceptor requires and
//     verifies a client certificate against its truststore (the broker
//     refuses to start a CONTROLLER:SSL listener without
//     ssl.client.auth=required); the dialler verifies the acceptor's
//     certificate against the same truststore and the address it dialled.
//  2. hello: the dialler's node id, its incarnation (random per process
//     start), the SASL mechanism it will use ("" for none), the cluster id.
//  3. SASL (Config.SASL: SASL_PLAINTEXT, SASL_SSL): the dialler's first
//     token follows the hello in an auth frame; acceptor and dialler trade
//     auth frames until the acceptor's exchange is done (SCRAM's last
//     server message lets the dialler check the acceptor's signature: the
//     dialler refuses an acceptor that accepts before proving it knows the
//     credentials). raftnet only carries tokens: the exchanges are the
//     caller's (package auth, wired by the broker).
//  4. the cluster id is compared, then the duplicate check (below), then
//     the acceptor answers a verdict. The dialler starts writing batches
//     only after an accepting verdict.
//
// Any failure closes the connection before a raft message is read from
// it; it is counted (Stats.Refused, and Stats.AuthFailed for TLS and SASL)
// and logged at most once per peer address and claimed node per
// RefusalLogInterval. Until the dialler has authenticated, a refusal's
// reason is "authentication failed" whatever was wrong (an unknown user
// reads like a wrong password); after, it may say why (another cluster).
// The dialler logs a peer's refusal as a warning, rate-limited alike, and
// redials with its back-off.
//
// The decoders cannot panic on any input (FuzzDecode, its corpus in
// testdata/fuzz): a batch's count is checked against the bytes left (12
// per entry at least) before the entries are allocated, every length
// against the bytes left, and that nothing trails. A bad frame or a bad
// message after the handshake closes the connection (Stats.BadFrames,
// logged); the sender redials.
//
// # Snapshot streams (snapshot.go)
//
// A raft snapshot too large for a frame (a compacted partition's region
// below its anchor: package replica) goes by SendSnapshot on a connection
// dialled for it alone, with the batch connection's handshake (TLS, SASL,
// cluster and duplicate checks: only an authenticated peer gets to send
// one), so heartbeats and appends never wait behind it, as etcd's
// rafthttp sends snapshots apart. The sender writes the header (the
// MsgSnap, whose Data is the payload's reference), then the chunks its
// ChunkSource yields, one frame each, then the end (length and CRC of the
// whole payload), and waits SnapshotTimeout for the ack. The acceptor
// knows the connection by its first frame: it asks Config.SnapshotSink
// for a ChunkSink (the MsgSnap must be the connection's node's own:
// From = node+1), writes every chunk to it (each frame within
// SnapshotTimeout, each bounded by MaxFrame before it is read, each with
// its frame CRC), and on the end checks length and CRC, commits the sink,
// delivers the MsgSnap through Deliver, and acks; on any failure it aborts
// the sink, delivers nothing, answers a refusal when it can, and closes.
// Neither side holds more than a frame of the payload, and a node sends
// at most MaxSnapshotStreams (4) at once (the others wait for a slot),
// so a replaced broker's many partitions do not multiply it. A peer of an
// older Strom reads the header as a bad frame and closes: the stream
// fails and raft retries.
//
// # One node id, one process
//
// Two processes with one node id (node.id given to two hosts) would be two
// raft members with one id, which breaks raft's safety (double votes). A
// hello carries the process's incarnation (random per start). An acceptor
// holding a live accepted connection from node N of incarnation A that
// gets a hello from N of incarnation B watches A's connection for
// DuplicateWait (3 PingIntervals, at most half of HelloTimeout: 2.5 s by
// default): if it stays open and reads a frame
// (raft's, or the ping an idle writer sends every PingInterval) at least a
// PingInterval after B's hello (sooner may be bytes a dead process left in
// the socket buffers), that process lives, and B is refused with the duplicate verdict naming A's address; the
// dialler calls OnDuplicate once (the broker stops) and logs an error. If
// A's connection closes (the kernel of a restarted or killed process closes
// it) or stays silent (a power cut left it half-open), A is closed and B
// admitted: a restart is never refused, at worst delayed DuplicateWait.
// A duplicate is refused DuplicateWait after its hello.
// The same incarnation redialling is not a duplicate.
//
// # Goroutines, each with an owner and a stop
//
//   - the accept loop (one per Transport): accepts with a capped back-off
//     on errors and starts a reader per connection; stops when Close
//     closes the listener.
//   - a reader per accepted connection: runs the handshake within
//     HelloTimeout, then reads frames, and calls Deliver for every message in
//     order; stops when the connection fails or Close closes it. Deliver
//     runs on it: while Deliver blocks, that connection reads nothing
//     (which is how a slow peer pushes back on its senders).
//   - a writer per peer: dials with a doubling back-off capped at
//     BackoffMax, runs the handshake (its own read of the verdict), then
//     sends a ping after PingInterval with nothing to send, and takes what is queued (up to one
//     frame) and writes it with a WriteTimeout deadline; on a failed write
//     it counts the frame's messages dropped and redials. Close cancels
//     its context and closes its connection.
//   - a sender per snapshot stream (SendSnapshot): dials, writes the
//     stream, reads the ack, calls done; Close ends it by closing its
//     connection. Its receiver is the accepted connection's reader, which
//     serves the one stream and stops.
//   - a watcher per dialled connection (watchClose): reads it (the peer
//     never writes on it) until it fails, and then tells the writer,
//     which redials at once rather than at its next write. So a peer that
//     restarted sees this node connected again even when no message is
//     due (quiesced groups send none). Ends when its connection closes.
//
// # Liveness
//
// Connected(node) reports whether node has a connection to this one open
// (dialled in, handshake accepted). A live peer keeps one; a killed one loses it
// at once (its kernel closes the socket); a hung one keeps it (the
// metadata quorum's fencing covers that). internal/cluster wakes the
// quiesced raft groups whose leader is on a node not connected.
//
// Probe(node) asks node's process to answer on its own connection to this
// one (probe.go): true within a round trip from a live process; false once
// its connections close, which for a killed process comes a few
// milliseconds after its clients' connections broke (its kernel closes
// the last opened sockets first); a hung one is waited for until the
// caller's deadline. internal/cluster probes the leaders a Metadata answer
// names before it answers.
//
// Close waits for all of them (tests check no goroutine is left).
//
// # Invariants
//
//   - Send never blocks: each peer has a bounded queue (QueueSize); a
//     message that does not fit is dropped and counted. Raft tolerates
//     loss: it retries appends and heartbeats on its own.
//   - A message is delivered at most once; messages lost with a broken
//     connection are not resent by this package.
//   - Messages queued before the peer is reachable wait in the queue (up
//     to QueueSize) and are sent once the writer connects.
package raftnet
