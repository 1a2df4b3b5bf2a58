// Package diskbench measures the disk itself, for benchmarks.
//
// MeasureSequentialWrite, MeasureAppendSync and MeasureAppendSyncs (each
// durable append timed, for percentiles, and the bandwidth of a log that syncs
// every so many bytes) measure the disk itself, with the same calls vfs.Default
// makes, so storage benchmarks can report their figures against the physical
// limits measured in the same run (see also the BenchmarkRaw* benchmarks,
// which honour $STROM_BENCH_DIR).
package diskbench
