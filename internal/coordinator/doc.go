// Package coordinator is the parent of Strom's coordinators: the parts of
// the broker that own state shared by many clients and answer for it.
//
//   - group/  consumer groups: membership, rebalances (the classic
//     JoinGroup/SyncGroup protocol) and committed offsets, persisted in the
//     internal topic __consumer_offsets.
//   - txn/    (later) producer ids and transactions.
//
// A coordinator sits between the protocol handlers (internal/kafka/handler),
// which translate requests into its calls and its domain errors into Kafka
// error codes, and the partitions it writes to (internal/partition), which
// the broker hands it (group.Topics). It never imports kerr, the storage
// packages or the cluster state, and never touches a socket.
package coordinator
