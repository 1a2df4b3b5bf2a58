package bench

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// runProduce measures spec against Strom and kfake, Rounds times each, each
// time on a freshly started broker, alternating which goes first so that
// drifting load on the machine favours neither; the median round of each is
// reported. The disk's raw sequential write, measured where Strom keeps its
// data, is the limit Strom's durability puts on it.
func runProduce(ctx context.Context, e *Env, spec produceSpec) error {
	cfg := e.Config()
	e.Notef("Workload: %s.", spec.describe())
	e.Notef("Each measurement: a broker started on an empty data dir, the topic created, %v of warm-up, then %v timed from the first send to the last acknowledgement (after Flush); %d round(s) per broker, alternating which goes first; the median round by MB/s is reported.",
		cfg.Warmup, cfg.Duration, cfg.Rounds)
	e.Notef("Strom answers acks=1 once the batch is written to its log file (in the page cache: it survives a crash of the broker; fsync follows Kafka's flush.ms/flush.messages defaults, off); kfake keeps records in its process's memory only.")

	disk, err := vfs.MeasureSequentialWrite(e.Dir(), cfg.DiskBytes, 1<<20)
	if err != nil {
		return fmt.Errorf("disk: %w", err)
	}
	e.Logf("disk sequential write: %.0f MB/s", disk/MB)

	runs := map[string][]throughput{}
	for round := range cfg.Rounds {
		order := []Kind{Strom, Kfake}
		if round%2 == 1 {
			slices.Reverse(order)
		}
		for _, k := range order {
			t, err := produceOnce(ctx, e, k, spec)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, k.Name, err)
			}
			e.Logf("round %d %s: %.1f MB/s, %.0f records/s, broker CPU %v, client CPU %v",
				round+1, k.Name, t.MBps(), t.RecordsPerSec(), t.Broker, t.ClientCPU)
			runs[k.Name] = append(runs[k.Name], t)
		}
	}
	s, sAll := medianMBps(runs[Strom.Name])
	f, fAll := medianMBps(runs[Kfake.Name])
	e.Figure(Figure{Name: "strom", Value: s.MBps(), Unit: "MB/s", Versus: "kfake", Ratio: s.MBps() / f.MBps(), Goal: AtLeast,
		Note: fmt.Sprintf("%.0f%% of the disk's sequential write; rounds %s", 100*s.MBps()/(disk/MB), sAll)})
	e.Figure(Figure{Name: "strom", Value: s.RecordsPerSec(), Unit: "records/s", Versus: "kfake", Ratio: s.RecordsPerSec() / f.RecordsPerSec(), Goal: AtLeast})
	e.Figure(Figure{Name: "kfake", Value: f.MBps(), Unit: "MB/s", Note: "rounds " + fAll})
	e.Figure(Figure{Name: "kfake", Value: f.RecordsPerSec(), Unit: "records/s"})
	e.Figure(Figure{Name: "disk seq write", Value: disk / MB, Unit: "MB/s",
		Note: fmt.Sprintf("vfs.MeasureSequentialWrite: %s in 1 MiB writes, one fdatasync", FormatSize(cfg.DiskBytes))})
	costFigures(e, "strom", s)
	costFigures(e, "kfake", f)
	return nil
}

// produceOnce runs one timed produce against a new broker of kind k.
func produceOnce(ctx context.Context, e *Env, k Kind, spec produceSpec) (throughput, error) {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+2*time.Minute)
	defer cancel()
	srv, err := e.Start(ctx, k)
	if err != nil {
		return throughput{}, err
	}
	t, err := produceTimed(ctx, srv, "bench-produce", spec, cfg.Warmup, cfg.Duration)
	if err != nil {
		return throughput{}, err
	}
	return t, e.Stop(srv)
}

// costFigures reports what a measurement cost: the broker's and the
// client's CPU time, and the broker's peak resident memory.
func costFigures(e *Env, broker string, t throughput) {
	e.Figure(Figure{Name: broker + " broker CPU", Value: t.Broker.Seconds(), Unit: "s", Note: t.cpuNote(t.Broker)})
	e.Figure(Figure{Name: broker + " client CPU", Value: t.ClientCPU.Seconds(), Unit: "s", Note: t.cpuNote(t.ClientCPU)})
	e.Figure(Figure{Name: broker + " broker peak RSS", Value: float64(t.BrokerPeakRSS) / MiB, Unit: "MiB", Note: "VmHWM since the broker started"})
}

// medianMBps returns the measurement with the median MB/s (the lower of
// the two middle ones for an even count) and every round's MB/s, as text.
func medianMBps(ts []throughput) (throughput, string) {
	all := make([]string, len(ts))
	for i, t := range ts {
		all[i] = fmt.Sprintf("%.1f", t.MBps())
	}
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b throughput) int {
		switch {
		case a.MBps() < b.MBps():
			return -1
		case a.MBps() > b.MBps():
			return 1
		}
		return 0
	})
	return sorted[(len(sorted)-1)/2], strings.Join(all, ", ") + " MB/s"
}
