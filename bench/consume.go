package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// runConsumeCatchup fills 8 partitions of a Strom topic with Size bytes of
// 1 KiB records, then times one consumer reading all of it from the start:
// the catch-up read of a consumer that was away, served from the page cache
// since the data was just written. The peer is a plain TCP copy of the same
// byte count over loopback, the most any broker could deliver here: the
// run's loopback limit, measured by the limits scenario or, without it,
// after Strom has stopped.
func runConsumeCatchup(ctx context.Context, e *Env) error {
	cfg := e.Config()
	spec := produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 1}
	records := cfg.Size / int64(spec.RecordBytes)
	e.Notef("Fill: %d records (%s) written by one producer configured as in produce-1k-acks1 (%s).", records, FormatSize(records*int64(spec.RecordBytes)), spec.describe())
	e.Notef("Read: one kgo client, ConsumeTopics + ConsumeResetOffset(AtStart), no group, kgo's default fetch sizes (50 MiB per request, 1 MiB per partition; one fetch in flight per broker); timed from client creation to the last record; MB/s counts record values.")
	e.Notef("Strom runs with its HTTP listener on, for its allocation counters (/metrics); the console is not opened.")
	e.Notef("Raw fetch: the same data read again by Fetch requests (v12) of the same sizes, one at a time, on a TCP connection of its own, each response read into one reused buffer (as the loopback copy reads), parsing only batch headers (no record decoding): the broker's side of the read without kgo's per-record and per-response costs; MB/s counts batch bytes (records plus batch and record headers).")
	e.Notef("Loopback: one goroutine writes the same byte count (-size) through a 127.0.0.1 TCP connection in 1 MiB writes, another reads it in 1 MiB reads, both in the harness process; timed from dial to EOF; the fastest of %d tries; measured once per run, by the limits scenario or else after Strom has stopped.", loopbackTries)

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(cfg.Size/MiB)*time.Second)
	defer cancel()
	// With metrics: allocations per MB read, beside CPU per MB (issue 22).
	srv, err := e.Start(ctx, StromMetered)
	if err != nil {
		return err
	}
	filled, err := fill(ctx, srv, "bench-catchup", spec, records)
	if err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	e.Logf("filled %s in %v (%.1f MB/s)", FormatSize(filled.Bytes), filled.Elapsed.Round(time.Millisecond), filled.MBps())
	read, err := consumeAll(ctx, srv, "bench-catchup", records)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	end, err := endOffsets(ctx, srv.Addr, "bench-catchup")
	if err != nil {
		return err
	}
	rawRead, err := rawFetchAll(ctx, srv, "bench-catchup", int32(spec.Partitions), end)
	if err != nil {
		return err
	}
	if err := e.Stop(srv); err != nil {
		return err
	}
	raw, versus, err := loopbackMBps(ctx, e)
	if err != nil {
		return err
	}
	e.Figure(Figure{Name: "strom", Value: read.MBps(), Unit: "MB/s", Versus: versus, Ratio: read.MBps() / raw, Goal: AtLeast, Target: 0.4,
		Note: fmt.Sprintf("%s in %v", FormatSize(read.Bytes), read.Elapsed.Round(time.Millisecond))})
	e.Figure(Figure{Name: "strom", Value: read.RecordsPerSec(), Unit: "records/s"})
	costFigures(e, "strom", read)
	e.Figure(Figure{Name: "strom raw fetch", Value: rawRead.MBps(), Unit: "MB/s", Versus: versus, Ratio: rawRead.MBps() / raw,
		Note: fmt.Sprintf("%.0f MB of batches in %v, Fetch requests one at a time, batch headers only: what the broker serves when the client decodes nothing", float64(rawRead.Bytes)/MB, rawRead.Elapsed.Round(time.Millisecond))})
	costFigures(e, "strom raw fetch", rawRead)
	return nil
}
