package bench

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// loopbackTries is how many loopback copies are timed; the fastest counts.
const loopbackTries = 3

// runConsumeCatchup fills 8 partitions of a Strom topic with Size bytes of
// 1 KiB records, then times one consumer reading all of it from the start:
// the catch-up read of a consumer that was away, served from the page cache
// since the data was just written. The peer is a plain TCP copy of the same
// byte count over loopback, the most any broker could deliver here, run
// after Strom has stopped.
func runConsumeCatchup(ctx context.Context, e *Env) error {
	cfg := e.Config()
	spec := produceSpec{RecordBytes: 1024, Partitions: 8, Acks: kgo.LeaderAck(), Producers: 1}
	records := cfg.Size / int64(spec.RecordBytes)
	e.Notef("Fill: %d records (%s) written with the produce-1k-acks1 producer (%s).", records, FormatSize(records*int64(spec.RecordBytes)), spec.describe())
	e.Notef("Read: one kgo client, ConsumeTopics + ConsumeResetOffset(AtStart), no group, kgo's default fetch sizes (50 MiB per request, 1 MiB per partition; one fetch in flight per broker); timed from client creation to the last record; MB/s counts record values.")
	e.Notef("Loopback: one goroutine writes the same byte count through a 127.0.0.1 TCP connection in 1 MiB writes, another reads it in 1 MiB reads, both in the harness process; timed from dial to EOF; the fastest of %d tries, after Strom has stopped.", loopbackTries)

	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(cfg.Size/MiB)*time.Second)
	defer cancel()
	srv, err := e.Start(ctx, Strom)
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
	if err := e.Stop(srv); err != nil {
		return err
	}
	// The loopback copy is the ceiling: the fastest of a few tries, so that
	// a moment of other load on the machine does not lower it.
	var raw throughput
	for range loopbackTries {
		t, err := loopbackCopy(ctx, read.Bytes)
		if err != nil {
			return err
		}
		if raw.Elapsed == 0 || t.Elapsed < raw.Elapsed {
			raw = t
		}
	}
	e.Figure(Figure{Name: "strom", Value: read.MBps(), Unit: "MB/s", Versus: "loopback TCP", Ratio: read.MBps() / raw.MBps(),
		Note: fmt.Sprintf("%s in %v", FormatSize(read.Bytes), read.Elapsed.Round(time.Millisecond))})
	e.Figure(Figure{Name: "strom", Value: read.RecordsPerSec(), Unit: "records/s"})
	e.Figure(Figure{Name: "loopback TCP", Value: raw.MBps(), Unit: "MB/s",
		Note: fmt.Sprintf("%s in %v, fastest of %d", FormatSize(raw.Bytes), raw.Elapsed.Round(time.Millisecond), loopbackTries)})
	costFigures(e, "strom", read)
	return nil
}
