// Package metadata holds the broker's view of its topics (names, ids,
// partition counts, config overrides), the producer id counter, and the
// definitions of every config Strom understands under its Kafka name, with
// Kafka's defaults and the broker-level synonyms (log.retention.ms for
// retention.ms, ...).
//
// Invariants:
//   - Every change is persisted (atomic rewrite of __strom_metadata, see
//     Store) before it is visible to callers; CreateTopics stores a batch
//     of topics with one rewrite, all of them or none.
//   - Topic names follow Kafka's rules; partition counts only grow.
//   - Config values stored for a topic were validated against their
//     definition; resolution order is topic override, then the broker's
//     static config, then Kafka's default.
//
// Later, in a replicated cluster, this state moves into a Raft log; the
// Store's methods are the operations that log will carry.
package metadata
