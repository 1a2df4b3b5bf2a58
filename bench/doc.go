// Package bench is Strom's benchmark harness: named scenarios, each of
// which runs brokers as processes of their own, drives them with the client
// of their protocol (franz-go, nats.go) configured the way a user configures
// it, and reports every figure beside what it should be judged against: a
// peer measured in the same run (kfake, NATS JetStream), a physical limit
// measured in the same run (the disk's sequential write, group fsync on
// one file and on eight at once as Strom writes them, append+fsync
// latency, loopback TCP) or a stated limit (30 MiB of idle
// RSS). A headline figure carries a comparison with its limit and with each
// peer, each with its own target.
// cmd/strombench is the command line (`make bench`); results/ keeps one
// markdown file per day, a section per recorded run.
//
// Processes. Strom is built from this tree and run as `strom serve`, kfake
// as cmd/kfakeserver, nats-server (JetStream, file storage) as
// cmd/natsserver, each on a free 127.0.0.1 port with a data directory of its
// own, so the client's CPU and the broker's are apart as in real use and both
// can be read from /proc (utime+stime, VmRSS). The client runs in the
// harness's own process. A Server is ready when its Kind's probe succeeds
// (a Kafka broker: an ApiVersions and a Metadata request answered on a fresh
// connection; NATS: a nats.go connection and a JetStream AccountInfo); the
// time from exec to then is its start-up time. produce-1k-sasl-ssl runs
// Strom from a server.properties of its own (a PLAINTEXT and a SASL_SSL
// listener, a certificate made with crypto/x509) on a data directory it
// formatted first with `strom storage format --add-scram` (Env.startOn),
// so the broker is set up the way an operator sets one up.
//
// Limits. The physical limits are measured once per run, where the brokers
// keep their data, by the limits scenario (first in the table) or else by
// the first scenario that needs one, and kept in the run's state
// (runState) for the scenarios after it.
//
// Data that outlives a broker. Env.Stop removes a broker's data dir;
// Env.StopKeepingData keeps it and Env.Restart execs the same program on it
// again. A large filled log (filledLog: 1 KiB records in 100 partitions) is
// written once per run and size, in the run's directory, and shared by the
// scenarios that need one (restart-100-partitions, backlog-rss); its
// manifest exists only while no broker runs on it and its data is
// complete.
//
// Latency. latency-* pace a producer at a fixed rate (the records due,
// every millisecond) with each record's scheduled send time (record i at
// i/rate on the harness's monotonic clock) in its value, so that a pacer or
// client falling behind shows as latency, and a consumer that was waiting
// for them; Strom and kfake run Rounds times each, rotating which goes
// first, and quantiles (p50, p99, p99.9) are by nearest rank over every
// record of every round sent after the warm-up.
//
// Clusters. cluster-* start three `strom serve` nodes as one cluster on
// loopback (startCluster3: fixed controller listeners, a new Kafka
// listener at every start); a node is killed with SIGKILL and started
// again on its data. The replication scenarios (cluster_repl.go) read a
// topic's leaders and ISRs from Metadata, polled every 100 ms, and drive
// it with paced acks=all producers whose records carry their producer,
// sequence number and scheduled send time, so that a failover figure is
// checked by reading every acknowledged record back, and produce latency
// during a follower's catch-up is set against the same producer's before.
//
// Payloads. Every produced record has a value of its own, from a pool of
// poolValues values generated once per run (payload.go): pseudo-random
// bytes, or JSON sensor reports that compress like telemetry; a producer
// may compress its batches (Codec). StromMetered runs Strom with its HTTP
// listener so that a scenario reads its allocation counters from /metrics.
//
// Growing. A scenario is an entry in the scenarios table (scenario.go)
// whose Run, in a file of its own, reports Figures through its Env;
// workloads (produceSpec and its natsSpec, consumeAll, loopbackCopy) and
// brokers (Env.Start of a Kind) are shared, so a new produce scenario is
// mostly a producePlan (a spec, its peers and limits with their targets),
// and a new peer a new Kind (arguments, Protocol, Ready), its Program in
// Config, and a client for its protocol.
//
// Concurrency: a run executes its scenarios one after another, never two
// brokers under load at once; Env is not safe for concurrent use.
package bench
