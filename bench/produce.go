package bench

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// producePlan is a produce scenario: one workload, run on Strom and on
// each peer, and what Strom's figures are judged against.
type producePlan struct {
	Spec produceSpec // Kafka brokers run it as is, NATS ones as Spec.nats
	// Headline is the unit whose figure carries the goals: "MB/s" or
	// "records/s". The figure in the other unit is shown against the same
	// peers, as context.
	Headline string
	Peers    []peerGoal
	Limits   []limitGoal
	// Durability says, for the notes, when each broker acknowledges.
	Durability string
	// Metered runs Strom with its HTTP listener (StromMetered) and reports
	// its allocations per MB from /metrics.
	Metered bool
}

// peerGoal is a peer broker and the ratio Strom's headline must reach
// against it.
type peerGoal struct {
	Kind   Kind
	Goal   Goal
	Target float64
}

// limitGoal is a limit that Strom's figure in Unit is divided by: Limit
// returns its value in that unit and the name it is reported under,
// measuring it (once per run) if needed.
type limitGoal struct {
	Unit   string
	Limit  func(ctx context.Context, e *Env) (value float64, versus string, err error)
	Goal   Goal
	Target float64
}

// Limits as limitGoal.Limit, in the units of produce figures.
func seqWriteMBps(_ context.Context, e *Env) (float64, string, error) {
	bps, err := e.seqWriteLimit()
	return bps / MB, fmt.Sprintf("disk seq write %s MB/s", formatValue(bps/MB)), err
}

func groupSyncMBps(_ context.Context, e *Env) (float64, string, error) {
	s, err := e.groupSyncLimit()
	return s.BytesPerSec() / MB, fmt.Sprintf("group fsync %s MB/s", formatValue(s.BytesPerSec()/MB)), err
}

func parallelSyncMBps(_ context.Context, e *Env) (float64, string, error) {
	p, err := e.parallelSyncLimit()
	return p.BytesPerSec() / MB, fmt.Sprintf("parallel group fsync %s MB/s", formatValue(p.BytesPerSec()/MB)), err
}

func loopbackMBps(ctx context.Context, e *Env) (float64, string, error) {
	bps, err := e.loopbackLimit(ctx)
	return bps / MB, fmt.Sprintf("loopback TCP %s MB/s", formatValue(bps/MB)), err
}

// statedLimit is a limit the issue states rather than one measured.
func statedLimit(v float64, versus string) func(context.Context, *Env) (float64, string, error) {
	return func(context.Context, *Env) (float64, string, error) { return v, versus, nil }
}

// runProduce measures the plan's workload on Strom and on each peer, Rounds
// times each, each time on a freshly started broker, rotating which goes
// first so that drifting load on the machine favours none; the median round
// of each is reported. The limits are taken before any broker runs.
func runProduce(ctx context.Context, e *Env, plan producePlan) error {
	cfg := e.Config()
	e.Notef("Workload (Kafka): %s.", plan.Spec.describe())
	for _, p := range plan.Peers {
		if p.Kind.Protocol == NATS {
			e.Notef("Workload (NATS JetStream): %s. Mapping: %s", plan.Spec.nats(cfg.NatsPending).describe(), natsMapping)
			break
		}
	}
	e.Notef("Each measurement: a broker started on an empty data dir, the topic (or streams) created, %v of warm-up, then %v timed from the first send to the last acknowledgement; %d round(s) per broker, rotating which goes first; the median round by %s is reported. Only acknowledged records count.",
		cfg.Warmup, cfg.Duration, cfg.Rounds, plan.Headline)
	if plan.Durability != "" {
		e.Notef("%s", plan.Durability)
	}

	type limit struct {
		limitGoal
		value  float64
		versus string
	}
	limits := make([]limit, len(plan.Limits))
	for i, l := range plan.Limits {
		v, versus, err := l.Limit(ctx, e)
		if err != nil {
			return err
		}
		limits[i] = limit{l, v, versus}
	}

	kinds := []Kind{Strom}
	if plan.Metered {
		kinds[0] = StromMetered
		e.Notef("Strom runs with its HTTP listener on (for /metrics: allocation counters read at the start and end of the timed window); the console it also serves is not opened.")
	}
	for _, p := range plan.Peers {
		kinds = append(kinds, p.Kind)
	}
	runs := map[string][]throughput{}
	for round := range cfg.Rounds {
		for i := range kinds {
			k := kinds[(round+i)%len(kinds)]
			t, err := produceOnce(ctx, e, k, plan.Spec)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, k.Name, err)
			}
			e.Logf("round %d %s: %.1f MB/s, %.0f records/s, broker CPU %v, client CPU %v",
				round+1, k.Name, t.MBps(), t.RecordsPerSec(), t.Broker, t.ClientCPU)
			runs[k.Name] = append(runs[k.Name], t)
		}
	}

	med := map[string]throughput{}
	all := map[string]string{}
	for _, k := range kinds {
		med[k.Name], all[k.Name] = median(runs[k.Name], plan.Headline)
	}
	s := med[Strom.Name]
	for _, unit := range []string{"MB/s", "records/s"} {
		value := func(t throughput) float64 { return t.in(unit) }
		headline := unit == plan.Headline
		f := Figure{Name: "strom", Value: value(s), Unit: unit}
		if headline {
			f.Note = "rounds " + all[Strom.Name]
		}
		for _, p := range plan.Peers {
			c := Comparison{Versus: p.Kind.Name, Ratio: value(s) / value(med[p.Kind.Name])}
			if headline {
				c.Goal, c.Target = p.Goal, p.Target
			}
			f.Also = append(f.Also, c)
		}
		for _, l := range limits {
			if l.Unit == unit {
				f.Also = append(f.Also, Comparison{Versus: l.versus, Ratio: value(s) / l.value, Goal: l.Goal, Target: l.Target})
			}
		}
		e.Figure(firstComparison(f))
	}
	for _, p := range plan.Peers {
		t := med[p.Kind.Name]
		for _, unit := range []string{"MB/s", "records/s"} {
			f := Figure{Name: p.Kind.Name, Value: t.in(unit), Unit: unit}
			if unit == plan.Headline {
				// Beside the figure: kfake keeps every record in its heap,
				// so its figure drifts with the length of the run.
				f.Note = fmt.Sprintf("rounds %s; peak RSS %.0f MiB after %v", all[p.Kind.Name], float64(t.BrokerPeakRSS)/MiB, cfg.Warmup+cfg.Duration)
			}
			e.Figure(f)
		}
	}
	for _, k := range kinds {
		costFigures(e, k.Name, med[k.Name])
	}
	return nil
}

// firstComparison moves the first of f.Also into f's own Versus, Ratio,
// Goal and Target.
func firstComparison(f Figure) Figure {
	if len(f.Also) == 0 {
		return f
	}
	c := f.Also[0]
	f.Versus, f.Ratio, f.Goal, f.Target = c.Versus, c.Ratio, c.Goal, c.Target
	f.Also = f.Also[1:]
	return f
}

// produceOnce runs one timed produce against a new broker of kind k, with
// the client of its protocol.
func produceOnce(ctx context.Context, e *Env, k Kind, spec produceSpec) (throughput, error) {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+2*time.Minute)
	defer cancel()
	srv, err := e.Start(ctx, k)
	if err != nil {
		return throughput{}, err
	}
	var t throughput
	switch k.Protocol {
	case Kafka:
		t, err = produceTimed(ctx, srv, "bench-produce", spec, cfg.Warmup, cfg.Duration)
	case NATS:
		t, err = natsPublishTimed(ctx, srv, spec.nats(cfg.NatsPending), cfg.Warmup, cfg.Duration)
	default:
		err = fmt.Errorf("no produce workload for protocol %d", k.Protocol)
	}
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
	if t.AllocsKnown && t.Bytes > 0 {
		mb := float64(t.Bytes) / MB
		e.Figure(Figure{Name: broker + " broker allocs", Value: t.BrokerAllocs.Objects / mb, Unit: "allocs/MB",
			Note: fmt.Sprintf("%.0f heap objects, %s allocated (%.2f bytes per byte moved) over the window, from the broker's /metrics (go_memstats_mallocs_total, go_memstats_alloc_bytes_total)",
				t.BrokerAllocs.Objects, FormatSize(int64(t.BrokerAllocs.Bytes)), t.BrokerAllocs.Bytes/float64(t.Bytes))})
	}
}

// median returns the measurement with the median figure in unit (the
// lower of the two middle ones for an even count) and every round's figure,
// as text.
func median(ts []throughput, unit string) (throughput, string) {
	all := make([]string, len(ts))
	for i, t := range ts {
		all[i] = formatValue(t.in(unit))
	}
	sorted := slices.Clone(ts)
	slices.SortFunc(sorted, func(a, b throughput) int { return cmp.Compare(a.in(unit), b.in(unit)) })
	return sorted[(len(sorted)-1)/2], strings.Join(all, ", ") + " " + unit
}
