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
// The first frame on a connection is a hello, then only batches:
//
//	hello body: | kind=1 u8 | node id i32 | cluster id length u16 | cluster id |
//	batch body: | kind=2 u8 | count u32 | count × entry |
//	entry:      | group u64 | length u32 | raftpb.Message (proto.Marshal, length bytes) |
//
// The decoder cannot panic on any input (FuzzDecode): it checks the count
// against the bytes left (12 per entry at least) before allocating the
// entries, every length against the bytes left, and that nothing trails.
// A bad frame, a bad message or a hello naming another cluster id closes
// the connection (counted in Stats, logged); the sender redials.
//
// # Goroutines, each with an owner and a stop
//
//   - the accept loop (one per Transport): accepts with a capped back-off
//     on errors and starts a reader per connection; stops when Close
//     closes the listener.
//   - a reader per accepted connection: reads the hello within
//     HelloTimeout, then frames, and calls Deliver for every message in
//     order; stops when the connection fails or Close closes it. Deliver
//     runs on it: while Deliver blocks, that connection reads nothing
//     (which is how a slow peer pushes back on its senders).
//   - a writer per peer: dials with a doubling back-off capped at
//     BackoffMax, writes the hello, then takes what is queued (up to one
//     frame) and writes it with a WriteTimeout deadline; on a failed write
//     it counts the frame's messages dropped and redials. Close cancels
//     its context and closes its connection.
//   - a watcher per dialled connection (watchClose): reads it (the peer
//     never writes on it) until it fails, and then tells the writer,
//     which redials at once rather than at its next write. So a peer that
//     restarted sees this node connected again even when no message is
//     due (quiesced groups send none). Ends when its connection closes.
//
// # Liveness
//
// Connected(node) reports whether node has a connection to this one open
// (dialled in, hello read). A live peer keeps one; a killed one loses it
// at once (its kernel closes the socket); a hung one keeps it (the
// metadata quorum's fencing covers that). internal/cluster wakes the
// quiesced raft groups whose leader is on a node not connected.
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
