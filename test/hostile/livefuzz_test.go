package hostile

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/testutil"
)

const (
	fuzzers         = 4
	defaultFuzzTime = 12 * time.Second
	normalRecords   = 3000
	// The fuzz broker's limits: small enough that the fuzzers' large
	// frames meet the request budget, and that the heap cap below means
	// something.
	fuzzMaxRequest = 8 << 20
	fuzzBudget     = 16 << 20
	// heapCap bounds HeapInuse during the run. What the broker may hold
	// of requests is the budget plus one frame past it (24 MiB), which the
	// garbage collector lets reach about twice that before collecting;
	// the rest (runs peak at 24-32 MiB in all) is the broker's own state,
	// the two clients and the test.
	heapCap = 96 << 20
)

// TestLiveSocketFuzz sends mutated and random request frames on fresh
// connections from several goroutines, against a broker that a franz-go
// client uses at the same time: it produces normalRecords records with
// acks=all and reads them back. The broker must not crash or panic, the
// client must get every record exactly once and in order, and the heap must
// stay under heapCap. STROM_LIVE_FUZZ_DURATION sets how long the fuzzers
// send (default 12s).
func TestLiveSocketFuzz(t *testing.T) {
	duration := defaultFuzzTime
	if s := os.Getenv("STROM_LIVE_FUZZ_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			t.Fatalf("STROM_LIVE_FUZZ_DURATION=%q", s)
		}
		duration = d
	}
	// kmsg v1.15.0 spends up to a minute of CPU on a forged tagged-field
	// count in a flexible-version body. With such a kmsg the mutator tames
	// those counts (and only those); with a kmsg that stops early it does
	// not, so flexible versions are fuzzed in full. STROM_LIVE_FUZZ_FLEXIBLE
	// forces either way.
	tame := !kmsgBoundsTagCounts()
	switch os.Getenv("STROM_LIVE_FUZZ_FLEXIBLE") {
	case "1":
		tame = false
	case "0":
		tame = true
	}

	logs := &testutil.SyncBuffer{}
	b, err := broker.Start(broker.Config{
		DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		Props: map[string]string{
			"socket.request.max.bytes": fmt.Sprint(fuzzMaxRequest),
			"queued.max.request.bytes": fmt.Sprint(fuzzBudget),
			// Mutated partition counts hit the limit at once; the
			// default (4,000) would let them spend seconds and
			// thousands of descriptors creating partitions first.
			"max.broker.partitions": "200",
		},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := b.KafkaAddr().String()
	stopped := false
	defer func() {
		if !stopped {
			b.Shutdown(context.Background())
		}
		if t.Failed() {
			t.Logf("broker log (warn and above):\n%.20000s", logs.String())
		}
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(normalTopic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(2*time.Millisecond),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{normalTopic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, normalTopic); err != nil {
		t.Fatal(err)
	}
	versions, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	seeds := seedFrames(versions.ApiKeys)

	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapInuse

	// The fuzzers and the heap sampler run until stop is closed.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent, conns atomic.Int64
	for i := range fuzzers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seed := uint64(time.Now().UnixNano())
			m := &mutator{rng: rand.New(rand.NewPCG(seed, uint64(i))), seeds: seeds, tame: tame}
			for {
				select {
				case <-stop:
					return
				default:
				}
				n, err := fuzzOnce(addr, m)
				if err != nil {
					t.Errorf("fuzzer %d (seed %d): %v", i, seed, err)
					return
				}
				sent.Add(int64(n))
				conns.Add(1)
			}
		}()
	}
	var peakHeap atomic.Uint64
	var overCap atomic.Value // goroutine stacks when the heap first passed the cap
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peakHeap.Load() {
				peakHeap.Store(ms.HeapInuse)
			}
			if ms.HeapInuse > heapCap && overCap.Load() == nil {
				buf := make([]byte, 1<<20)
				overCap.Store(string(buf[:runtime.Stack(buf, true)]))
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	stopOnce := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopOnce()

	// The normal client: records spread over the fuzzing time, then read
	// back while the fuzzers go on.
	start := time.Now()
	var failed atomic.Int64
	for i := range normalRecords {
		cl.Produce(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("normal-%07d", i))}, func(r *kgo.Record, err error) {
			if err != nil && failed.Add(1) <= 5 {
				t.Errorf("produce %s: %v", r.Value, err)
			}
		})
		if i%100 == 99 {
			// Pace the records over about two thirds of the run.
			time.Sleep(time.Until(start.Add(duration * 2 / 3 * time.Duration(i+1) / normalRecords)))
		}
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	next := 0
	for next < normalRecords {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", next, normalRecords)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprintf("normal-%07d", next); string(r.Value) != want || r.Offset != int64(next) {
				t.Fatalf("record at offset %d is %q, want %q at offset %d (lost, doubled or out of order)", r.Offset, r.Value, want, next)
			}
			next++
		})
	}
	if rest := time.Until(start.Add(duration)); rest > 0 {
		time.Sleep(rest) // the fuzzers' time that is left
	}
	stopOnce()
	elapsed := time.Since(start)

	st := b.KafkaStats()
	stopped = true
	sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer scancel()
	// A shutdown that takes long means some request is still being
	// worked on: its stack says which.
	slow := time.AfterFunc(10*time.Second, func() {
		buf := make([]byte, 1<<20)
		t.Logf("shutdown still running after 10s; goroutines:\n%.60000s", buf[:runtime.Stack(buf, true)])
	})
	if err := b.Shutdown(sctx); err != nil {
		t.Errorf("broker shutdown: %v", err)
	}
	slow.Stop()
	peak := peakHeap.Load()
	t.Logf("%v: %d connections, %.1f MiB sent by %d fuzzers (flexible versions %s); broker: %d protocol errors, %d requests, %d panics, %d budget waits; %d records produced and read back; heap in use peaked at %.0f MiB (%.0f MiB before, cap %d MiB)",
		elapsed.Round(time.Millisecond), conns.Load(), float64(sent.Load())/(1<<20), fuzzers, map[bool]string{true: "tamed", false: "mutated in full"}[tame],
		st.ProtocolErrors, total(st.Requests), st.Panics, st.RequestBudgetWaits, next, float64(peak)/(1<<20), float64(baseHeap)/(1<<20), heapCap>>20)
	if st.Panics != 0 || strings.Contains(logs.String(), "panic") {
		t.Errorf("%d panics recovered in handlers: each is a broken invariant", st.Panics)
	}
	if peak > heapCap {
		stacks, _ := overCap.Load().(string)
		t.Errorf("heap in use peaked at %.0f MiB, cap %d MiB; goroutines when it passed the cap:\n%.60000s", float64(peak)/(1<<20), heapCap>>20, stacks)
	}
}

// fuzzOnce sends one mutated stream on a new connection, in one or more
// writes, often reads whatever comes back for a moment, and leaves, usually
// with a reset. It returns the bytes sent; an error only when the broker cannot be
// reached.
func fuzzOnce(addr string, m *mutator) (int, error) {
	var c net.Conn
	var err error
	for try := 0; ; try++ {
		if c, err = net.DialTimeout("tcp", addr, 5*time.Second); err == nil {
			break
		}
		if try == 20 {
			return 0, fmt.Errorf("dial: %w", err)
		}
		time.Sleep(50 * time.Millisecond) // out of ports or a full backlog: back off
	}
	defer func() {
		if m.rng.IntN(4) != 0 {
			c.(*net.TCPConn).SetLinger(0) // a reset: no TIME_WAIT, and abrupt
		}
		c.Close()
	}()
	b := m.stream()
	// Long enough for most answers (and for the broker to close on a bad
	// frame), short enough not to wait out long polls.
	c.SetDeadline(time.Now().Add(time.Duration(1+m.rng.IntN(20)) * time.Millisecond))
	sent := 0
	for sent < len(b) {
		n := len(b) - sent
		if m.rng.IntN(2) == 0 {
			n = 1 + m.rng.IntN(n)
		}
		w, err := c.Write(b[sent : sent+n])
		sent += w
		if err != nil {
			return sent, nil // closed by the broker, or our deadline: both fine
		}
	}
	if m.rng.IntN(3) != 0 {
		io.Copy(io.Discard, c)
	}
	return sent, nil
}

func total(m map[int16]uint64) (n uint64) {
	for _, v := range m {
		n += v
	}
	return n
}
