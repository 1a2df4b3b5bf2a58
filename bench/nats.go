package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/stromhq/strom/bench/internal/natsserver"
)

// The NATS peers: one embedded nats-server with JetStream on file storage
// (bench/cmd/natsserver), in two sync modes. NATS has no partitions,
// batches or acks settings; natsSpec says how a produceSpec maps onto it.
var (
	// NatsJS fsyncs on JetStream's default sync_interval (two minutes):
	// acknowledged messages are in the page cache, like Strom's at acks=1.
	NatsJS = natsKind("nats", natsserver.SyncDefault)
	// NatsJSFsync is `sync_interval: always`: every write is fsynced before
	// it is acknowledged, the durability of Strom's acks=all.
	NatsJSFsync = natsKind("nats-fsync", natsserver.SyncAlways)
)

func natsKind(name, sync string) Kind {
	return Kind{Name: name, Protocol: NATS, Ready: natsReady, Args: func(addr, dataDir string) []string {
		_, port, _ := net.SplitHostPort(addr)
		args := []string{"-port", port, "-store-dir", dataDir}
		if sync != natsserver.SyncDefault {
			args = append(args, "-sync", sync)
		}
		return args
	}}
}

// natsReady is ready when a nats.go client connects and JetStream answers
// an account info request: the server serves and JetStream is enabled.
func natsReady(addr string, timeout time.Duration) error {
	nc, err := nats.Connect(natsURL(addr), nats.Name("strombench-probe"), nats.Timeout(timeout), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if _, err := js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("JetStream account info: %w", err)
	}
	return nil
}

func natsURL(addr string) string { return "nats://" + addr }

// natsProgram is the natsserver binary, built from the module on first use
// in the run: nats-server is a large build that scenarios without a NATS
// peer should not wait for.
func (e *Env) natsProgram(ctx context.Context) (Program, error) {
	if e.run.nats.Path == "" {
		if e.cfg.Nats.Path != "" {
			e.run.nats = e.cfg.Nats
		} else {
			path, err := build(ctx, e.cfg.Out, e.cfg.Root, "./bench/cmd/natsserver", filepath.Join(filepath.Dir(e.dir), "bin", "natsserver"))
			if err != nil {
				return Program{}, err
			}
			e.run.nats = Program{Path: path}
		}
	}
	return e.run.nats, nil
}

// natsSpec is a produceSpec as NATS JetStream runs it; natsMapping says
// what cannot be made equal.
type natsSpec struct {
	RecordBytes int // payload size; no headers
	Streams     int // one per partition, subject bench.<i> in stream bench-<i>
	Producers   int // each a connection and a JetStream context of its own
	MaxPending  int // jetstream.WithPublishAsyncMaxPending
	Payload     Payload
}

// natsMapping is how a Kafka produce workload maps onto JetStream, for the
// notes of a report.
const natsMapping = "JetStream has no partitions: each Kafka partition is a stream of its own with one subject (a stream, like a partition, is one ordered log with its own store; the subjects of one stream would share one). " +
	"It has no batches: every message is published and acknowledged on its own, with up to the window unacknowledged per producer, where kgo sends batches of many records in few requests. " +
	"It has no acks setting: what an acknowledgement promises is the server's sync mode, named with each NATS peer. " +
	"The same on both sides: payload size, number of producers (each a connection of its own), and counting only acknowledged messages, payload bytes for MB/s."

func (s produceSpec) nats(maxPending int) natsSpec {
	return natsSpec{RecordBytes: s.RecordBytes, Streams: int(s.Partitions), Producers: s.Producers, MaxPending: maxPending, Payload: s.Payload}
}

// describe is the spec and the client settings, for the notes of a report.
func (s natsSpec) describe() string {
	return fmt.Sprintf("%d-byte payloads of %s (a fresh one per message, from the same pool as the Kafka producers'), no headers, %d file-storage streams of one subject each (R1, limits retention), %d producer(s), each a nats.go connection with jetstream.PublishAsync, WithPublishAsyncMaxPending(%d), publishing to the streams in turn, one message at a time",
		s.RecordBytes, s.Payload, s.Streams, s.Producers, s.MaxPending)
}

func natsSubject(i int) string { return "bench." + strconv.Itoa(i) }

// createStreams makes the spec's streams on srv.
func createStreams(ctx context.Context, srv *Server, spec natsSpec) error {
	nc, err := nats.Connect(natsURL(srv.Addr), nats.Name("strombench-admin"))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for i := range spec.Streams {
		cfg := jetstream.StreamConfig{
			Name:     "bench-" + strconv.Itoa(i),
			Subjects: []string{natsSubject(i)},
			Storage:  jetstream.FileStorage,
			Replicas: 1,
		}
		if _, err := js.CreateStream(ctx, cfg); err != nil {
			return fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// publisher is one producer of a NATS workload, counting what JetStream
// acknowledged.
type publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	values   [][]byte // shared, read only
	nextVal  int
	subjects []string
	next     int          // the subject of the next message, in turn
	acked    atomic.Int64 // messages
	bytes    atomic.Int64
	mu       sync.Mutex
	err      error // the first failed publish
}

func newPublisher(spec natsSpec, addr string, i int) (*publisher, error) {
	vs := values(spec.Payload, spec.RecordBytes)
	p := &publisher{values: vs, nextVal: i * len(vs) / max(1, spec.Producers)}
	for i := range spec.Streams {
		p.subjects = append(p.subjects, natsSubject(i))
	}
	nc, err := nats.Connect(natsURL(addr), nats.Name("strombench"))
	if err != nil {
		return nil, err
	}
	// The handlers run on the connection's ack-processing goroutine; they
	// only count.
	js, err := jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(spec.MaxPending),
		jetstream.WithPublishAsyncAckHandler(func(_ jetstream.JetStream, m *nats.Msg, _ *jetstream.PubAck) {
			p.acked.Add(1)
			p.bytes.Add(int64(len(m.Data)))
		}),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			p.fail(err)
		}),
	)
	if err != nil {
		nc.Close()
		return nil, err
	}
	p.nc, p.js = nc, js
	return p, nil
}

// run publishes until the deadline, then waits for every acknowledgement.
func (p *publisher) run(ctx context.Context, until time.Time) error {
	for i := 0; ; i++ {
		if i%64 == 0 && time.Now().After(until) {
			break
		}
		if err := p.failed(); err != nil {
			return err
		}
		_, err := p.js.PublishAsync(p.subjects[p.next], p.values[p.nextVal])
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			// The window stayed full for nats.go's stall wait: nothing
			// was sent; send it again, as a user would.
			if err := ctx.Err(); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		p.next = (p.next + 1) % len(p.subjects)
		p.nextVal = (p.nextVal + 1) % len(p.values)
	}
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.failed()
}

func (p *publisher) fail(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil {
		p.err = err
	}
}

func (p *publisher) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// reset forgets what has been acknowledged so far (after a warm-up).
func (p *publisher) reset() { p.acked.Store(0); p.bytes.Store(0) }

func (p *publisher) runUntil(ctx context.Context, until time.Time) error { return p.run(ctx, until) }
func (p *publisher) counts() (int64, int64)                              { return p.acked.Load(), p.bytes.Load() }

// natsPublishTimed is produceTimed for a NATS server: it creates the
// streams, has spec.Producers publishers publish for warmup, then for d, and
// reports the second part only, from the first publish to the last
// acknowledgement.
func natsPublishTimed(ctx context.Context, srv *Server, spec natsSpec, warmup, d time.Duration) (throughput, error) {
	if err := createStreams(ctx, srv, spec); err != nil {
		return throughput{}, err
	}
	ps := make([]*publisher, spec.Producers)
	for i := range ps {
		p, err := newPublisher(spec, srv.Addr, i)
		if err != nil {
			return throughput{}, err
		}
		defer p.nc.Close()
		ps[i] = p
	}
	return timedRun(ctx, srv, ps, warmup, d)
}
