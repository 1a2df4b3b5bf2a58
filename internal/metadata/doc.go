// Package metadata holds the broker's view of its topics (names, ids,
// partition counts, config overrides), the producer id counter, and the
// definitions of every config Strom understands under its Kafka name, with
// Kafka's defaults and the broker-level synonyms (log.retention.ms for
// retention.ms, ...).
//
// Invariants:
//
//   - Every change is durable before it is visible to callers: committed
//     to the metadata quorum's fsynced raft log (replicated mode, every
//     node a broker runs, a single node being a quorum of one voter), or
//     rewritten atomically into __strom_metadata (local mode, see Store);
//     CreateTopics stores a batch of topics in one change, all of them or
//     none.
//
//   - Topic names follow Kafka's rules; partition counts only grow.
//
//   - A change replaces a topic whole, never edits a stored one (copy on
//     write): Topic and TopicByID hand out copies, TopicView and
//     TopicViewByID the stored topic itself (a consistent snapshot the
//     caller must not change), for the lookups of every produce and fetch.
//
//   - A deleted topic leaves a tombstone (name, id) in the same rewrite
//     that removes it: the only record that allows its directories to be
//     deleted. Tombstones are dropped once the directories are gone.
//
//   - Found tells a new data directory (no file yet) from one whose file
//     was lost; CreateStore rebuilds a lost file and never replaces one.
//
//   - Config values stored for a topic were validated against their
//     definition; resolution order is topic override, then the broker's
//     dynamic config (this broker's, then the cluster-wide default), then
//     its static config, then Kafka's default.
//
//   - Dynamic broker configs (set by AlterConfigs on the broker resource)
//     are only the topic configs' broker synonyms, validated like them,
//     and live in the same store file as the topics; every other broker
//     config is static, read once at start.
//
//   - SCRAM credentials and ACL bindings change by records (alter_scram,
//     create_acls, delete_acls) checked item by item when applied, then
//     are published as a new immutable Security snapshot; readers take the
//     snapshot without a lock and never see a change before it is durable.
//     A user's SCRAM changes apply together or not at all. Delegation
//     tokens (tokens.go, delegation_tokens records) join the same
//     snapshot: id, owner, renewers and times, never the HMAC, which each
//     broker derives from the id and delegation.token.secret.key.
//
//   - A partition under reassignment (reassign.go) lists as its replicas
//     the union of its target and of the replicas it had, until its raft
//     group's leader records that the group reached the target
//     (reassign_done, applied only for the target in force): no node
//     drops a copy the group may still count as a voter.
//
//   - A node's view is a prefix of the committed history, and after a
//     restart it may be a short one: the commit index on disk lags the
//     log (raftgroup writes it lazily), so records the node stored are
//     applied only when the leader repeats the commit. What the view
//     shows happened; what it lacks may still have happened. Barrier (a
//     record that changes nothing) ends that doubt: once it is applied
//     here, so is everything committed before it was proposed.
//
// Local mode remains for what reads or writes a stopped node's metadata
// file and for unit tests: package cluster opened without OpenMetadata
// (its tests, and those of the handlers and coordinators), `strom storage
// rebuild-metadata` and `strom storage format --add-scram`, which write a
// file that the next start migrates into the metadata log (Import), and
// that migration itself, which reads the file a single node wrote before
// its metadata was a quorum. No running broker keeps its metadata in the
// file.
package metadata
