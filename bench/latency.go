package bench

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// latencySpec is a paced workload: records sent at a steady rate, each
// carrying its send time, read back by a consumer that was waiting for
// them. Unlike produceSpec it never pushes as hard as it can: latency under
// a rate the broker can sustain is what it measures.
type latencySpec struct {
	Rate        int // records per second
	RecordBytes int // value size, at least 8: the send time
	Partitions  int32
	Acks        kgo.Acks
	// Create makes the topic; nil: createTopic on the broker measured
	// (the broker's default replication factor).
	Create func(ctx context.Context, topic string, partitions int32) error
}

// latencyTick is how often the pacer sends: every tick, the records due
// since the last one, so a 20,000 records/s rate goes out as groups of 20
// every millisecond, not as bursts.
const latencyTick = time.Millisecond

func (s latencySpec) describe() string {
	acks, idem := "1", "DisableIdempotentWrite (1 produce request in flight per broker)"
	if s.Acks == kgo.AllISRAcks() {
		acks, idem = "all", "idempotent (up to 5 produce requests in flight per broker)"
	}
	return fmt.Sprintf("%d records/s of %d-byte values, no key, %d partitions, acks=%s, sent by a pacer every %v (the records due since the last tick); "+
		"producer: kgo ProducerLinger(0), no compression, %s, default partitioner and buffer; "+
		"consumer: a kgo client created before the producer, ConsumeTopics + ConsumeResetOffset(AtStart), no group, default fetch settings",
		s.Rate, s.RecordBytes, s.Partitions, acks, latencyTick, idem)
}

// producerOpts is a producer a user tuning franz-go for latency would
// configure: no linger, so a batch goes out as soon as the connection is
// free; what arrives while a request is in flight is batched behind it.
func (s latencySpec) producerOpts(addr, topic string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("strombench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(0),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RequiredAcks(s.Acks),
	}
	if s.Acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts
}

// latencies is a sorted sample of durations.
type latencies []time.Duration

func sortLatencies(ds []time.Duration) latencies {
	slices.Sort(ds)
	return latencies(ds)
}

// q is the q-quantile by nearest rank: the smallest sample with at least
// q of all samples at or below it.
func (l latencies) q(q float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	i := int(q*float64(len(l))+0.999999999) - 1
	return l[min(max(i, 0), len(l)-1)]
}

func (l latencies) max() time.Duration {
	if len(l) == 0 {
		return 0
	}
	return l[len(l)-1]
}

// summary is the usual quantiles, in ms, for a note.
func (l latencies) summary() string {
	return fmt.Sprintf("p50 %.2f, p99 %.2f, p99.9 %.2f, max %.2f ms of %d", ms(l.q(0.5)), ms(l.q(0.99)), ms(l.q(0.999)), ms(l.max()), len(l))
}

// latencyResult is one broker's measurement.
type latencyResult struct {
	E2E     latencies // send to the consumer's PollFetches returning the record
	Produce latencies // send to the produce promise
	// Sent is the records sent in the measured window; MaxGroup the most
	// sent in one tick, which is more than Rate*latencyTick only when the
	// pacer fell behind (a blocked Produce, a starved harness).
	Sent     int64
	MaxGroup int64
	Window   time.Duration
	Cost     throughput // CPU and memory over the window and the tail after it
	// Stall describes the slowest acknowledged record when it took more
	// than stallAt, with the producer's log lines around it: where a
	// round's p99 went, for the run's log.
	Stall string
}

// stallAt is the produce latency from which a round's slowest record is
// described in the log.
const stallAt = 500 * time.Millisecond

// clientLog keeps a kgo client's log lines, each with its time since the
// round's base, up to a bound: debug level without the per-request lines
// and the produce answers that carry no error.
type clientLog struct {
	base  time.Time
	mu    sync.Mutex
	lines []loggedLine
}

type loggedLine struct {
	at   time.Duration
	line string
}

func (l *clientLog) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l *clientLog) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	if strings.HasPrefix(msg, "wrote ") || strings.HasPrefix(msg, "read ") {
		return // every request
	}
	if msg == "produced" && !slices.ContainsFunc(keyvals, func(v any) bool {
		s, ok := v.(string)
		return ok && strings.Contains(s, "retrying@")
	}) {
		return // a produce answered without an error: not formatted
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", level, msg)
	for i := 0; i+1 < len(keyvals); i += 2 {
		fmt.Fprintf(&b, " %v=%v", keyvals[i], keyvals[i+1])
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.lines) < 10000 {
		l.lines = append(l.lines, loggedLine{at: time.Since(l.base), line: b.String()})
	}
}

// between is the lines logged from from to to.
func (l *clientLog) between(from, to time.Duration) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, x := range l.lines {
		if x.at >= from && x.at <= to {
			out = append(out, fmt.Sprintf("%.3fs %s", x.at.Seconds(), x.line))
		}
	}
	return out
}

func (r latencyResult) rate() float64 { return float64(r.Sent) / r.Window.Seconds() }

// measureLatency creates topic on srv, starts a consumer on it, then sends
// at spec.Rate for warmup+d. Records sent during the warm-up are read but
// not counted; the rest are, once acknowledged (produce latency) and once
// read (end-to-end latency). Send and receive times are read from this
// process's monotonic clock.
func measureLatency(ctx context.Context, srv *Server, topic string, spec latencySpec, warmup, d time.Duration) (latencyResult, error) {
	if spec.RecordBytes < 8 {
		return latencyResult{}, fmt.Errorf("records of %d bytes cannot carry a send time", spec.RecordBytes)
	}
	create := spec.Create
	if create == nil {
		create = func(ctx context.Context, topic string, partitions int32) error {
			return createTopic(ctx, srv.Addr, topic, partitions)
		}
	}
	if err := create(ctx, topic, spec.Partitions); err != nil {
		return latencyResult{}, err
	}
	// Times are durations since base, set once both clients exist: the
	// pacer's schedule starts there, and so do the warm-up and window.
	var base time.Time
	from, to := warmup, warmup+d
	counted := func(sent time.Duration) bool { return sent >= from && sent < to }
	sentAt := func(v []byte) time.Duration { return time.Duration(binary.BigEndian.Uint64(v)) }
	expect := int(float64(spec.Rate)*d.Seconds()) + 1

	cons, err := kgo.NewClient(
		kgo.SeedBrokers(srv.Addr),
		kgo.ClientID("strombench"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return latencyResult{}, err
	}
	defer cons.Close()
	plog := &clientLog{base: time.Now()}
	prod, err := kgo.NewClient(append(spec.producerOpts(srv.Addr, topic), kgo.WithLogger(plog))...)
	if err != nil {
		return latencyResult{}, err
	}
	defer prod.Close()

	// want is the number of records the consumer must read before it
	// stops, -1 while the producer is still sending.
	var want atomic.Int64
	want.Store(-1)
	e2e := make([]time.Duration, 0, expect)
	cctx, cancel := context.WithCancel(ctx)
	var got int64
	consumed := make(chan error, 1)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	base = time.Now()
	plog.mu.Lock()
	plog.base = base
	plog.mu.Unlock()
	wg.Go(func() {
		consumed <- func() error {
			for {
				if w := want.Load(); w >= 0 && got >= w {
					return nil
				}
				// A short wait, so that a consumer which already has every
				// record sees want when the producer sets it.
				pctx, pcancel := context.WithTimeout(cctx, 50*time.Millisecond)
				fs := cons.PollFetches(pctx)
				pcancel()
				now := time.Since(base)
				if err := cctx.Err(); err != nil {
					return err
				}
				var ferr error
				fs.EachError(func(t string, p int32, err error) {
					if !errors.Is(err, context.DeadlineExceeded) {
						ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", t, p, err))
					}
				})
				if ferr != nil {
					return ferr
				}
				fs.EachRecord(func(r *kgo.Record) {
					got++
					if sent := sentAt(r.Value); counted(sent) {
						e2e = append(e2e, now-sent)
					}
				})
			}
		}()
	})

	var (
		mu      sync.Mutex
		produce = make([]time.Duration, 0, expect)
		perr    error
		// the slowest counted record, and per partition the records
		// slower than stallAt
		slowest     time.Duration
		slowSent    time.Duration
		slowPart    int32
		slowPerPart = map[int32]int{}
	)
	promise := func(r *kgo.Record, err error) {
		acked := time.Since(base)
		mu.Lock()
		defer mu.Unlock()
		switch sent := sentAt(r.Value); {
		case err != nil:
			perr = cmp.Or(perr, err)
		case counted(sent):
			d := acked - sent
			produce = append(produce, d)
			if d > stallAt {
				slowPerPart[r.Partition]++
			}
			if d > slowest {
				slowest, slowSent, slowPart = d, sent, r.Partition
			}
		}
	}
	res := latencyResult{Window: d}
	var meter *cpuMeter
	tick := time.NewTicker(latencyTick)
	defer tick.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return latencyResult{}, ctx.Err()
		case <-tick.C:
		}
		now := time.Since(base)
		if now >= to {
			break
		}
		if meter == nil && now >= from {
			if meter, err = startCPU(srv); err != nil {
				return latencyResult{}, err
			}
		}
		due := int64(now) * int64(spec.Rate) / int64(time.Second)
		if now >= from {
			res.MaxGroup = max(res.MaxGroup, due-sent)
		}
		for ; sent < due; sent++ {
			v := make([]byte, spec.RecordBytes)
			// Stamped with its scheduled time, not when it is handed to
			// the client: a pacer or client that falls behind shows as
			// latency (no coordinated omission).
			at := time.Duration(sent) * time.Second / time.Duration(spec.Rate)
			binary.BigEndian.PutUint64(v, uint64(at))
			if counted(at) {
				res.Sent++
			}
			prod.Produce(ctx, &kgo.Record{Value: v}, promise)
		}
	}
	if err := prod.Flush(ctx); err != nil {
		return latencyResult{}, err
	}
	mu.Lock()
	err = perr
	mu.Unlock()
	if err != nil {
		return latencyResult{}, fmt.Errorf("produce: %w", err)
	}
	want.Store(sent)
	select {
	case err = <-consumed:
	case <-time.After(consumeStall):
		cancel()
		<-consumed
		err = fmt.Errorf("consumer: %d of %d records after %v", got, sent, consumeStall)
	}
	if err != nil {
		return latencyResult{}, err
	}
	if meter == nil {
		return latencyResult{}, errors.New("the measured window never began")
	}
	c := &res.Cost
	if c.Elapsed, c.ClientCPU, c.Broker, err = meter.stop(); err != nil {
		return latencyResult{}, err
	}
	if _, c.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return latencyResult{}, err
	}
	c.Records, c.Bytes = res.Sent, res.Sent*int64(spec.RecordBytes)
	res.E2E, res.Produce = sortLatencies(e2e), sortLatencies(produce)
	if slowest > stallAt {
		parts := slices.Sorted(maps.Keys(slowPerPart))
		var per []string
		for _, p := range parts {
			per = append(per, fmt.Sprintf("%d: %d", p, slowPerPart[p]))
		}
		lines := plog.between(0, slowSent+slowest+time.Second)
		res.Stall = fmt.Sprintf("slowest record: partition %d, scheduled at %.3fs, acknowledged after %.0f ms; records over %v per partition {%s}; the producer's log from its start to 1 s after (%d lines):\n%s",
			slowPart, slowSent.Seconds(), ms(slowest), stallAt, strings.Join(per, ", "), len(lines), strings.Join(lines, "\n"))
	}
	if int64(len(res.E2E)) < res.Sent || int64(len(res.Produce)) != res.Sent {
		return latencyResult{}, fmt.Errorf("%d records sent in the window, %d acknowledged, %d read", res.Sent, len(res.Produce), len(res.E2E))
	}
	return res, nil
}

// latencyLimits are what a scenario's p99s are judged against.
type latencyLimits struct {
	E2E, Produce time.Duration
	Basis        string // where the limits come from, for the note
}

// runLatency measures spec against Strom and kfake, Rounds times each,
// each time on a newly started broker, rotating which goes first (issue
// 24: once, Strom first, favoured whichever the machine's load favoured);
// quantiles are over the records of every round together, and each
// round's p99 is listed beside them.
func runLatency(ctx context.Context, e *Env, spec latencySpec, lim latencyLimits) error {
	cfg := e.Config()
	e.Notef("Workload: %s.", spec.describe())
	e.Notef("Each broker: started on an empty data dir, the topic created, the consumer started, then %v of warm-up and %v measured; %d round(s) per broker, rotating which goes first; a record counts when it was scheduled in the measured window. "+
		"Each record carries its scheduled send time (record i of the pacer at i/rate), so a pacer or client falling behind counts as latency. "+
		"End-to-end is the scheduled time to the return of the consumer's PollFetches holding it; produce is the scheduled time to its promise. Both clocks are the harness's, monotonic. Quantiles by nearest rank over every counted record of every round.",
		cfg.Warmup, cfg.Duration, cfg.Rounds)
	e.Notef("Limits: %s.", lim.Basis)
	kinds := []Kind{Strom, Kfake}
	res := map[string]latencyResult{}
	rounds := map[string][]string{}
	costs := map[string][]throughput{}
	for round := range cfg.Rounds {
		for i := range kinds {
			k := kinds[(round+i)%len(kinds)]
			r, err := latencyOnce(ctx, e, k, spec)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, k.Name, err)
			}
			e.Logf("round %d %s: e2e %s; produce %s; %.0f records/s", round+1, k.Name, r.E2E.summary(), r.Produce.summary(), r.rate())
			if r.Stall != "" {
				e.Logf("round %d %s: %s", round+1, k.Name, r.Stall)
			}
			rounds[k.Name] = append(rounds[k.Name], fmt.Sprintf("%.2f/%.2f", ms(r.E2E.q(0.99)), ms(r.Produce.q(0.99))))
			costs[k.Name] = append(costs[k.Name], r.Cost)
			res[k.Name] = res[k.Name].merge(r)
		}
	}
	s, f := res[Strom.Name], res[Kfake.Name]
	perRound := func(k string) string {
		return "p99 e2e/produce per round " + strings.Join(rounds[k], ", ") + " ms"
	}
	limit := func(d time.Duration) string { return fmt.Sprintf("limit %.2f ms", ms(d)) }
	e.Figure(Figure{Name: "strom e2e p50", Value: ms(s.E2E.q(0.5)), Unit: "ms", Note: fmt.Sprintf("kfake %.2f", ms(f.E2E.q(0.5)))})
	e.Figure(Figure{Name: "strom e2e p99", Value: ms(s.E2E.q(0.99)), Unit: "ms", Versus: limit(lim.E2E), Ratio: float64(s.E2E.q(0.99)) / float64(lim.E2E), Goal: AtMost,
		Note: fmt.Sprintf("kfake %.2f; %d records; %s", ms(f.E2E.q(0.99)), len(s.E2E), perRound(Strom.Name))})
	e.Figure(Figure{Name: "strom e2e p99.9", Value: ms(s.E2E.q(0.999)), Unit: "ms", Note: fmt.Sprintf("max %.2f; kfake %.2f, max %.2f", ms(s.E2E.max()), ms(f.E2E.q(0.999)), ms(f.E2E.max()))})
	e.Figure(Figure{Name: "strom produce p50", Value: ms(s.Produce.q(0.5)), Unit: "ms", Note: fmt.Sprintf("kfake %.2f", ms(f.Produce.q(0.5)))})
	e.Figure(Figure{Name: "strom produce p99", Value: ms(s.Produce.q(0.99)), Unit: "ms", Versus: limit(lim.Produce), Ratio: float64(s.Produce.q(0.99)) / float64(lim.Produce), Goal: AtMost,
		Note: fmt.Sprintf("kfake p99 %.2f", ms(f.Produce.q(0.99)))})
	e.Figure(Figure{Name: "strom produce p99.9", Value: ms(s.Produce.q(0.999)), Unit: "ms", Note: fmt.Sprintf("max %.2f; kfake %.2f, max %.2f", ms(s.Produce.max()), ms(f.Produce.q(0.999)), ms(f.Produce.max()))})
	e.Figure(Figure{Name: "kfake e2e p99", Value: ms(f.E2E.q(0.99)), Unit: "ms", Note: f.E2E.summary() + "; " + perRound(Kfake.Name)})
	e.Figure(Figure{Name: "kfake produce p99", Value: ms(f.Produce.q(0.99)), Unit: "ms", Note: f.Produce.summary()})
	for _, k := range []string{Strom.Name, Kfake.Name} {
		r := res[k]
		note := fmt.Sprintf("at most %d records due in one %v tick", r.MaxGroup, latencyTick)
		if lag := time.Duration(r.MaxGroup) * time.Second / time.Duration(spec.Rate); lag > 10*latencyTick {
			note += fmt.Sprintf(": the pacer fell %v behind (Produce blocked on kgo's full buffer, or the harness starved); the records due meanwhile were sent late, and since each carries its scheduled time that wait is in the quantiles", lag.Round(time.Millisecond))
		}
		e.Figure(Figure{Name: k + " rate", Value: r.rate(), Unit: "records/s", Versus: "rate asked", Ratio: r.rate() / float64(spec.Rate), Note: note})
	}
	sc, _ := median(costs[Strom.Name], "MB/s")
	fc, _ := median(costs[Kfake.Name], "MB/s")
	costFigures(e, "strom", sc)
	costFigures(e, "kfake", fc)
	return nil
}

// merge is r and o as one sample: every record of both.
func (r latencyResult) merge(o latencyResult) latencyResult {
	return latencyResult{
		E2E:      sortLatencies(append(slices.Clone(r.E2E), o.E2E...)),
		Produce:  sortLatencies(append(slices.Clone(r.Produce), o.Produce...)),
		Sent:     r.Sent + o.Sent,
		MaxGroup: max(r.MaxGroup, o.MaxGroup),
		Window:   r.Window + o.Window,
	}
}

// latencyOnce runs the latency workload against a new broker of kind k.
func latencyOnce(ctx context.Context, e *Env, k Kind, spec latencySpec) (latencyResult, error) {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+2*time.Minute)
	defer cancel()
	srv, err := e.Start(ctx, k)
	if err != nil {
		return latencyResult{}, err
	}
	r, err := measureLatency(ctx, srv, "bench-latency", spec, cfg.Warmup, cfg.Duration)
	if err != nil {
		return latencyResult{}, err
	}
	return r, e.Stop(srv)
}
