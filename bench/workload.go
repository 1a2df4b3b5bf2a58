package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// produceSpec is one producer workload. Every broker is driven with the
// same spec, so the same client options.
type produceSpec struct {
	RecordBytes int   // value size; records have no key
	Partitions  int32 // of the topic the workload creates
	Acks        kgo.Acks
	Producers   int // each a client of its own, producing from its own goroutine
	// DefaultLinger leaves kgo's linger at its default (10ms), as a user
	// who sets only acks has it; otherwise produceLinger.
	DefaultLinger bool
	// Payload is what the values hold, each record's its own; Codec the
	// batch compression ("" is none).
	Payload Payload
	Codec   Codec
}

// Producer settings a user tuning franz-go for throughput would choose.
const (
	produceLinger        = 5 * time.Millisecond
	produceBatchMaxBytes = 1 << 20
	// produceBufferBytes bounds what one client holds unacknowledged:
	// MaxBufferedRecords is this divided by the record size.
	produceBufferBytes = 64 << 20
)

// describe is the spec and the client settings, for the notes of a report.
func (s produceSpec) describe() string {
	acks := "all"
	switch s.Acks {
	case kgo.LeaderAck():
		acks = "1"
	case kgo.NoAck():
		acks = "0"
	}
	idem := "idempotent (up to 5 produce requests in flight per broker)"
	if s.Acks != kgo.AllISRAcks() {
		idem = "DisableIdempotentWrite with the default of 1 produce request in flight per broker"
	}
	linger := fmt.Sprintf("ProducerLinger(%v)", produceLinger)
	if s.DefaultLinger {
		linger = "default linger (10ms)"
	}
	codec := "no compression"
	if s.Codec != "" && s.Codec != NoCodec {
		codec = string(s.Codec) + " compression"
	}
	return fmt.Sprintf("%d-byte values of %s (a fresh one per record, from a pool of %d generated once per run), no key, %d partitions, acks=%s, %d producer(s); kgo: %s, ProducerBatchMaxBytes(%s), MaxBufferedRecords(%d), %s, %s, default partitioner",
		s.RecordBytes, s.Payload, poolValues, s.Partitions, acks, s.Producers, linger, FormatSize(produceBatchMaxBytes), s.maxBuffered(), codec, idem)
}

func (s produceSpec) maxBuffered() int { return max(1, produceBufferBytes/s.RecordBytes) }

// clientOpts are the producer's options against addr.
func (s produceSpec) clientOpts(addr, topic string) ([]kgo.Opt, error) {
	codec, err := s.Codec.kgo()
	if err != nil {
		return nil, err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("strombench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(produceBatchMaxBytes),
		kgo.MaxBufferedRecords(s.maxBuffered()),
		kgo.ProducerBatchCompression(codec),
		kgo.RequiredAcks(s.Acks),
	}
	if !s.DefaultLinger {
		opts = append(opts, kgo.ProducerLinger(produceLinger))
	}
	if s.Acks != kgo.AllISRAcks() {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	return opts, nil
}

// throughput is what a timed workload moved and what it cost.
type throughput struct {
	Records, Bytes    int64
	Elapsed           time.Duration // first send (or fetch) to last acknowledgement (or record)
	ClientCPU, Broker time.Duration // CPU time of the harness process and of the broker
	BrokerPeakRSS     int64         // VmHWM of the broker at the end: its peak since it started
	// BrokerAllocs is what the broker's Go runtime allocated over Elapsed,
	// when AllocsKnown (a broker with metrics: StromMetered).
	BrokerAllocs goAllocs
	AllocsKnown  bool
}

func (t throughput) MBps() float64          { return float64(t.Bytes) / MB / t.Elapsed.Seconds() }
func (t throughput) RecordsPerSec() float64 { return float64(t.Records) / t.Elapsed.Seconds() }

// in is the throughput in unit, "MB/s" or "records/s".
func (t throughput) in(unit string) float64 {
	if unit == "records/s" {
		return t.RecordsPerSec()
	}
	return t.MBps()
}

// cpuNote describes a CPU time: as cores used over the measurement and as
// CPU per megabyte moved.
func (t throughput) cpuNote(cpu time.Duration) string {
	return fmt.Sprintf("%.2f cores, %.2f ms CPU per MB", cpu.Seconds()/t.Elapsed.Seconds(), float64(cpu.Microseconds())/1e3/(float64(t.Bytes)/MB))
}

// createTopic creates topic with the given partitions, one replica.
func createTopic(ctx context.Context, addr, topic string, partitions int32) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID("strombench-admin"))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}

// producer is one client of a produce workload, counting what the broker
// acknowledged.
type producer struct {
	cl     *kgo.Client
	values [][]byte     // shared with the run's other producers, read only
	next   int          // the index in values of the next record's value
	acked  atomic.Int64 // records
	bytes  atomic.Int64
	mu     sync.Mutex
	err    error // the first failed record
	done   func(*kgo.Record, error)
}

// newProducer is the i-th producer of a workload: it starts at its own
// place in the value pool, so that producers do not send the same values
// at the same time. conn are options of its connections to a listener
// that is not PLAINTEXT (TLS, SASL).
func newProducer(spec produceSpec, addr, topic string, i int, conn ...kgo.Opt) (*producer, error) {
	opts, err := spec.clientOpts(addr, topic)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(append(opts, conn...)...)
	if err != nil {
		return nil, err
	}
	vs := values(spec.Payload, spec.RecordBytes)
	p := &producer{cl: cl, values: vs, next: i * len(vs) / max(1, spec.Producers)}
	p.done = func(r *kgo.Record, err error) {
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
			return
		}
		p.acked.Add(1)
		p.bytes.Add(int64(len(r.Value)))
	}
	return p, nil
}

// run sends records until the deadline or n records (n < 0: no limit),
// then waits for every acknowledgement.
func (p *producer) run(ctx context.Context, until time.Time, n int64) error {
	for i := int64(0); n < 0 || i < n; i++ {
		if n < 0 && i%64 == 0 && time.Now().After(until) {
			break
		}
		if err := p.failed(); err != nil {
			break
		}
		// The values are shared: kgo never modifies them.
		v := p.values[p.next]
		p.next = (p.next + 1) % len(p.values)
		p.cl.Produce(ctx, &kgo.Record{Value: v}, p.done)
	}
	if err := p.cl.Flush(ctx); err != nil {
		return err
	}
	return p.failed()
}

func (p *producer) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// reset forgets what has been acknowledged so far (after a warm-up).
func (p *producer) reset() { p.acked.Store(0); p.bytes.Store(0) }

// produceTimed creates a topic on srv and has spec.Producers clients send
// to it for warmup, then for d; it reports the second part only, from the
// first send to the last acknowledgement.
func produceTimed(ctx context.Context, srv *Server, topic string, spec produceSpec, warmup, d time.Duration) (throughput, error) {
	return produceTimedVia(ctx, srv, srv.Addr, topic, spec, warmup, d)
}

// produceTimedVia is produceTimed with the producers connected to addr,
// a listener of srv, with the connection options conn (TLS, SASL); the
// topic is created through srv.Addr.
func produceTimedVia(ctx context.Context, srv *Server, addr, topic string, spec produceSpec, warmup, d time.Duration, conn ...kgo.Opt) (throughput, error) {
	if err := createTopic(ctx, srv.Addr, topic, spec.Partitions); err != nil {
		return throughput{}, err
	}
	ps := make([]*producer, spec.Producers)
	for i := range ps {
		p, err := newProducer(spec, addr, topic, i, conn...)
		if err != nil {
			return throughput{}, err
		}
		defer p.cl.Close()
		ps[i] = p
	}
	return timedRun(ctx, srv, ps, warmup, d)
}

// timedClient is one load generator of a timed run: a Kafka producer or a
// NATS publisher.
type timedClient interface {
	runUntil(ctx context.Context, until time.Time) error
	reset()
	counts() (records, bytes int64)
}

func (p *producer) runUntil(ctx context.Context, until time.Time) error { return p.run(ctx, until, -1) }
func (p *producer) counts() (int64, int64)                              { return p.acked.Load(), p.bytes.Load() }

// timedRun runs every client for warmup, forgets what they did, then runs
// them again for d while the CPU of the harness and of srv is metered, and
// reports that second part.
func timedRun[C timedClient](ctx context.Context, srv *Server, cs []C, warmup, d time.Duration) (throughput, error) {
	each := func(until time.Time) error {
		errs := make([]error, len(cs))
		var wg sync.WaitGroup
		for i, c := range cs {
			wg.Go(func() { errs[i] = c.runUntil(ctx, until) })
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	if err := each(time.Now().Add(warmup)); err != nil {
		return throughput{}, fmt.Errorf("warm-up: %w", err)
	}
	for _, c := range cs {
		c.reset()
	}
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, err
	}
	if err := each(time.Now().Add(d)); err != nil {
		return throughput{}, err
	}
	var t throughput
	if t.Elapsed, t.ClientCPU, t.Broker, err = m.stop(); err != nil {
		return throughput{}, err
	}
	t.BrokerAllocs, t.AllocsKnown = m.brokerAllocs()
	if _, t.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return throughput{}, err
	}
	for _, c := range cs {
		records, bytes := c.counts()
		t.Records += records
		t.Bytes += bytes
	}
	return t, nil
}

// fill creates a topic on srv and writes n records to it with one
// producer of spec, returning once all are acknowledged.
func fill(ctx context.Context, srv *Server, topic string, spec produceSpec, n int64) (throughput, error) {
	if err := createTopic(ctx, srv.Addr, topic, spec.Partitions); err != nil {
		return throughput{}, err
	}
	p, err := newProducer(spec, srv.Addr, topic, 0)
	if err != nil {
		return throughput{}, err
	}
	defer p.cl.Close()
	start := time.Now()
	if err := p.run(ctx, time.Time{}, n); err != nil {
		return throughput{}, err
	}
	if got := p.acked.Load(); got != n {
		return throughput{}, fmt.Errorf("%d of %d records acknowledged", got, n)
	}
	return throughput{Records: n, Bytes: p.bytes.Load(), Elapsed: time.Since(start)}, nil
}

// consumeStall is how long a consumer may go without a record before the
// workload is declared stuck.
const consumeStall = 30 * time.Second

// consumeAll reads records records of topic on srv from the start of every
// partition, without a group, and reports from client creation to the last
// record.
func consumeAll(ctx context.Context, srv *Server, topic string, records int64) (throughput, error) {
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(srv.Addr),
		kgo.ClientID("strombench"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	var t throughput
	for t.Records < records {
		pctx, cancel := context.WithTimeout(ctx, consumeStall)
		fs := cl.PollFetches(pctx)
		stalled := pctx.Err() != nil
		cancel()
		if err := ctx.Err(); err != nil {
			return throughput{}, err
		}
		if stalled {
			return throughput{}, fmt.Errorf("no record for %v after %d of %d", consumeStall, t.Records, records)
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
		})
		if ferr != nil {
			return throughput{}, ferr
		}
		fs.EachRecord(func(r *kgo.Record) {
			t.Records++
			t.Bytes += int64(len(r.Key) + len(r.Value))
		})
	}
	if t.Elapsed, t.ClientCPU, t.Broker, err = m.stop(); err != nil {
		return throughput{}, err
	}
	t.BrokerAllocs, t.AllocsKnown = m.brokerAllocs()
	if _, t.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return throughput{}, err
	}
	if t.Records != records {
		return throughput{}, fmt.Errorf("read %d records, %d were written", t.Records, records)
	}
	return t, nil
}

// copyChunk is the write and read size of the loopback copy.
const copyChunk = 1 << 20

// loopbackCopy sends n bytes from one goroutine to another through a TCP
// connection on 127.0.0.1, in copyChunk writes and reads, and reports the
// time from dial to the last byte read: what the kernel's loopback alone
// allows, the ceiling of any broker's catch-up read on this machine.
func loopbackCopy(ctx context.Context, n int64) (throughput, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return throughput{}, err
	}
	defer ln.Close()
	werr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			werr <- err
			return
		}
		defer c.Close()
		buf := pseudoRandom(copyChunk, 2)
		for left := n; left > 0; {
			k, err := c.Write(buf[:min(left, int64(len(buf)))])
			if err != nil {
				werr <- err
				return
			}
			left -= int64(k)
		}
		werr <- nil
	}()
	start := time.Now()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return throughput{}, err
	}
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	buf := make([]byte, copyChunk)
	var got int64
	for {
		k, err := c.Read(buf)
		got += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return throughput{}, err
		}
	}
	t := throughput{Bytes: got, Elapsed: time.Since(start)}
	if err := <-werr; err != nil {
		return throughput{}, fmt.Errorf("loopback writer: %w", err)
	}
	if got != n {
		return throughput{}, fmt.Errorf("loopback: read %d of %d bytes", got, n)
	}
	return t, nil
}

// pseudoRandom returns n deterministic bytes that no codec can compress,
// different for each seed.
func pseudoRandom(n int, seed uint64) []byte {
	b := make([]byte, n)
	x := 0x2545F4914F6CDD1D * (seed | 1)
	for i := range b {
		// xorshift64*
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		b[i] = byte((x * 0x2545F4914F6CDD1D) >> 56)
	}
	return b
}
