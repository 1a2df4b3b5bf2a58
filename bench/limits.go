package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/diskbench"
)

// runState is what the scenarios of one run share: the physical limits,
// each measured once, and the programs built on first use.
type runState struct {
	limits runLimits
	nats   Program // natsserver, once built or taken from Config
}

// runLimits are the physical limits of this machine in this run, measured
// where the brokers keep their data, that figures are reported as fractions
// of. Zero: not measured yet.
type runLimits struct {
	seqWrite  float64 // bytes/s: DiskBytes in 1 MiB writes, one fdatasync
	groupSync diskbench.AppendSyncs
	syncLat   diskbench.AppendSyncs
	loopback  float64 // bytes/s: Size through a 127.0.0.1 TCP connection
	parallel  parallelSync
}

// parallelSyncFiles is the files of the parallel group fsync limit: the
// partitions of the acks=all produce scenario.
const parallelSyncFiles = 8

const (
	// loopbackTries is how many loopback copies are timed; the fastest
	// counts.
	loopbackTries = 3

	// groupSyncBytes is the append between two fdatasyncs of the group
	// fsync limit: a log whose group commit gathers this much per sync.
	groupSyncBytes = 64 * KiB
	// syncLatencyBytes is the append of the sync latency limit: a small
	// acks=all batch that waits for its own fdatasync.
	syncLatencyBytes = 4 * KiB
)

// runLimitsScenario measures every limit, reports each as a figure, and
// keeps them for the scenarios that follow in the run; it is first in the
// table. It measures again when run after a scenario that already needed
// a limit: a limit is only comparable with figures taken near it in time.
func runLimitsScenario(ctx context.Context, e *Env) error {
	e.Notef("Measured in the run's directory, on the file system of the brokers' data, with the calls Strom's storage makes (write, fdatasync); the later scenarios of the run divide their figures by these. A scenario run without this one measures the limits it needs itself, once per run, and reports them among its own figures.")
	if err := e.measureSeqWrite(); err != nil {
		return err
	}
	if err := e.measureGroupSync(); err != nil {
		return err
	}
	if err := e.measureSyncLatency(); err != nil {
		return err
	}
	if err := e.measureParallelSync(); err != nil {
		return err
	}
	return e.measureLoopback(ctx)
}

// parallelSyncLimit is the acks=all ceiling measured as Strom writes:
// parallelSyncFiles files at once, 1 MiB appends, group fsync per file.
func (e *Env) parallelSyncLimit() (parallelSync, error) {
	if e.run.limits.parallel.Elapsed == 0 {
		if err := e.measureParallelSync(); err != nil {
			return parallelSync{}, err
		}
	}
	return e.run.limits.parallel, nil
}

func (e *Env) measureParallelSync() error {
	p, err := measureParallelSync(e.Dir(), parallelSyncFiles, produceBatchMaxBytes, e.cfg.DiskBytes)
	if err != nil {
		return fmt.Errorf("parallel group fsync: %w", err)
	}
	e.run.limits.parallel = p
	e.Figure(Figure{Name: "parallel group fsync", Value: p.BytesPerSec() / MB, Unit: "MB/s",
		Note: fmt.Sprintf("%s over %d files at once, each appended in %s writes back to back while a syncer per file fdatasyncs what was appended during its previous sync (%d syncs, %.1f MiB per sync on average); bytes count once synced: the ceiling of acks=all on %d partitions",
			FormatSize(p.Bytes), p.Files, FormatSize(int64(p.Batch)), p.Syncs, float64(p.Bytes)/float64(max(1, p.Syncs))/MiB, p.Files)})
	return nil
}

// seqWriteLimit is the disk's sequential write bandwidth in bytes/s, with
// one fdatasync at the end: the ceiling of a log that does not fsync as it
// acknowledges (acks=1).
func (e *Env) seqWriteLimit() (float64, error) {
	if e.run.limits.seqWrite == 0 {
		if err := e.measureSeqWrite(); err != nil {
			return 0, err
		}
	}
	return e.run.limits.seqWrite, nil
}

// groupSyncLimit is appends of groupSyncBytes each followed by fdatasync:
// the ceiling of a log that makes every acknowledged write durable first
// (acks=all) and shares each fsync among that many bytes.
func (e *Env) groupSyncLimit() (diskbench.AppendSyncs, error) {
	if e.run.limits.groupSync.Times == nil {
		if err := e.measureGroupSync(); err != nil {
			return diskbench.AppendSyncs{}, err
		}
	}
	return e.run.limits.groupSync, nil
}

// syncLatencyLimit is appends of syncLatencyBytes each followed by
// fdatasync, timed one by one: the floor of an acks=all produce's latency.
func (e *Env) syncLatencyLimit() (diskbench.AppendSyncs, error) {
	if e.run.limits.syncLat.Times == nil {
		if err := e.measureSyncLatency(); err != nil {
			return diskbench.AppendSyncs{}, err
		}
	}
	return e.run.limits.syncLat, nil
}

// loopbackLimit is the bandwidth of one TCP connection on 127.0.0.1 in
// bytes/s: what any broker's clients here can send or receive.
func (e *Env) loopbackLimit(ctx context.Context) (float64, error) {
	if e.run.limits.loopback == 0 {
		if err := e.measureLoopback(ctx); err != nil {
			return 0, err
		}
	}
	return e.run.limits.loopback, nil
}

func (e *Env) measureSeqWrite() error {
	n := e.cfg.DiskBytes
	bps, err := diskbench.MeasureSequentialWrite(e.Dir(), n, 1<<20)
	if err != nil {
		return fmt.Errorf("disk sequential write: %w", err)
	}
	e.run.limits.seqWrite = bps
	e.Figure(Figure{Name: "disk seq write", Value: bps / MB, Unit: "MB/s",
		Note: fmt.Sprintf("diskbench.MeasureSequentialWrite: %s in 1 MiB writes, one fdatasync", FormatSize(n))})
	return nil
}

func (e *Env) measureGroupSync() error {
	s, err := diskbench.MeasureAppendSyncs(e.Dir(), e.cfg.Syncs, groupSyncBytes)
	if err != nil {
		return fmt.Errorf("group fsync: %w", err)
	}
	e.run.limits.groupSync = s
	e.Figure(Figure{Name: "group fsync", Value: s.BytesPerSec() / MB, Unit: "MB/s",
		Note: fmt.Sprintf("diskbench.MeasureAppendSyncs: %d appends of %s, each followed by fdatasync; %.0f syncs/s, p50 %s, p99 %s",
			len(s.Times), FormatSize(groupSyncBytes), s.PerSec(), fmtMs(s.Percentile(0.5)), fmtMs(s.Percentile(0.99)))})
	return nil
}

func (e *Env) measureSyncLatency() error {
	s, err := diskbench.MeasureAppendSyncs(e.Dir(), e.cfg.Syncs, syncLatencyBytes)
	if err != nil {
		return fmt.Errorf("sync latency: %w", err)
	}
	e.run.limits.syncLat = s
	note := fmt.Sprintf("diskbench.MeasureAppendSyncs: %d appends of %s, each followed by fdatasync, each timed; mean %s, max %s",
		len(s.Times), FormatSize(syncLatencyBytes), fmtMs(s.Mean()), fmtMs(s.Times[len(s.Times)-1]))
	e.Figure(Figure{Name: "4KiB append+sync p50", Value: ms(s.Percentile(0.5)), Unit: "ms", Note: note})
	e.Figure(Figure{Name: "4KiB append+sync p99", Value: ms(s.Percentile(0.99)), Unit: "ms"})
	return nil
}

func (e *Env) measureLoopback(ctx context.Context) error {
	// The fastest of a few tries, so that a moment of other load on the
	// machine does not lower the ceiling.
	var best throughput
	for range loopbackTries {
		t, err := loopbackCopy(ctx, e.cfg.Size)
		if err != nil {
			return fmt.Errorf("loopback: %w", err)
		}
		if best.Elapsed == 0 || t.Elapsed < best.Elapsed {
			best = t
		}
	}
	e.run.limits.loopback = float64(best.Bytes) / best.Elapsed.Seconds()
	e.Figure(Figure{Name: "loopback TCP", Value: best.MBps(), Unit: "MB/s",
		Note: fmt.Sprintf("%s through one 127.0.0.1 connection in 1 MiB writes and reads, fastest of %d", FormatSize(best.Bytes), loopbackTries)})
	return nil
}

// fmtMs is a duration in milliseconds, three significant figures.
func fmtMs(d time.Duration) string { return formatValue(ms(d)) + " ms" }
