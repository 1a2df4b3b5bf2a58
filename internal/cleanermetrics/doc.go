// Package cleanermetrics reads the log cleaner's per-partition gauges
// (strom_partition_cleaner_*) out of a Strom broker's /metrics page, in
// the Prometheus text format. The Kafka protocol has no request for the
// cleaner's state (Kafka shows it in JMX), so the two Kafka clients that
// show it, `strom topic cleaner` (internal/cli) and the console's
// compaction view (internal/console), read the broker's metrics through
// this one parser rather than reaching into the broker.
//
// It owns no state and starts no goroutine. It depends on no broker
// package (internal/lint keeps the CLI and the console clear of them).
//
// Invariants: Parse returns one Partition per (topic, partition) that has
// at least one cleaner gauge, sorted by topic then partition; lines of
// other metrics are skipped; a cleaner line whose labels or value cannot
// be read is an error naming the line (a broker and a reader that
// disagree on the format must not show zeros).
package cleanermetrics
