// Package coordinator is the parent of Strom's coordinators: the parts of
// the broker that own state shared by many clients and answer for it.
//
//   - group/  consumer groups: membership, rebalances (the classic
//     JoinGroup/SyncGroup protocol) and committed offsets, persisted in the
//     internal topic __consumer_offsets.
//   - txn/    transactions: producer ids and epochs of transactional ids,
//     the transaction state machine persisted in the internal topic
//     __transaction_state, the markers that end a transaction, and the
//     offsets a transaction commits (applied through group/).
//
// A coordinator sits between the protocol handlers (internal/kafka/handler),
// which translate requests into its calls and its domain errors into Kafka
// error codes, and the partitions it writes to (internal/partition), which
// the broker hands it (group.Topics). It never imports kerr, the storage
// packages or the cluster state, and never touches a socket.
package coordinator
