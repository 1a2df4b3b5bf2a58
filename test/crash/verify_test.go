package crash

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// valueKey names a produced value "<producer>-<seq>" in 8 bytes: the
// producer's interned number above, its sequence number below. A
// 1,000-kill run holds some 60 million of them twice (acknowledged and
// read back); as strings the checker needed most of the machine's 24 GiB.
type valueKey uint64

// producerNames interns the "<prefix><NN>" part of values.
var producerNames struct {
	sync.Mutex
	ids   map[string]uint32
	names []string
}

// keyOf returns the key of a value written by startProducers; ok is false
// for any other value.
func keyOf(v []byte) (k valueKey, ok bool) {
	cut := bytes.LastIndexByte(v, '-')
	if cut <= 0 {
		return 0, false
	}
	seq, err := strconv.ParseUint(string(v[cut+1:]), 10, 32)
	if err != nil {
		return 0, false
	}
	producerNames.Lock()
	defer producerNames.Unlock()
	id, found := producerNames.ids[string(v[:cut])]
	if !found {
		if producerNames.ids == nil {
			producerNames.ids = map[string]uint32{}
		}
		id = uint32(len(producerNames.names))
		producerNames.names = append(producerNames.names, string(v[:cut]))
		producerNames.ids[string(v[:cut])] = id
	}
	return valueKey(uint64(id)<<32 | seq), true
}

func (k valueKey) producer() uint32 { return uint32(k >> 32) }
func (k valueKey) seq() uint32      { return uint32(k) }

func (k valueKey) String() string {
	producerNames.Lock()
	defer producerNames.Unlock()
	return fmt.Sprintf("%s-%07d", producerNames.names[k.producer()], k.seq())
}

// loc is where a record is stored.
type loc struct {
	partition int32
	offset    int64
}

// createTopic creates topic with the given partitions through addr.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// readBack reads every record of topic from the start (up to the end
// offsets listed first) and returns where each value is stored, and how
// many values were stored more than once (each an error, the first few
// in detail).
func readBack(t *testing.T, addr, topic string) (stored map[valueKey]loc, dups int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	listCtx, cancelList := context.WithTimeout(context.Background(), time.Minute)
	ends, err := kadm.NewClient(cl).ListEndOffsets(listCtx, topic)
	cancelList()
	if err != nil {
		t.Fatal(err)
	}
	var total, read int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	stored = map[valueKey]loc{}
	// A long run stores tens of millions of records and a loaded machine
	// reads them slowly, so the deadline is on progress, not on the total:
	// the read fails when no record arrives for readStall.
	const readStall = time.Minute
	next := map[int32]int64{}
	// Offsets increase with each producer's sequence: within one partition
	// a later sequence number must sit at a higher offset (idempotence
	// keeps order through retries), across every restart.
	type stream struct {
		producer  uint32
		partition int32
	}
	lastSeq := map[stream]uint32{}
	reordered := 0
	for read < total {
		ctx, cancel := context.WithTimeout(context.Background(), readStall)
		fs := cl.PollFetches(ctx)
		stalled := ctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if stalled {
			var progress []string
			ends.Each(func(o kadm.ListedOffset) {
				progress = append(progress, fmt.Sprintf("p%d %d/%d", o.Partition, next[o.Partition], o.Offset))
			})
			t.Fatalf("read %d of %d records, none for %v (%s)", read, total, readStall, strings.Join(progress, ", "))
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("fetch: %v", err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			read++
			next[r.Partition] = r.Offset + 1
			v, ok := keyOf(r.Value)
			if !ok {
				t.Fatalf("partition %d offset %d holds %q, not a value of the test's producers", r.Partition, r.Offset, r.Value)
			}
			if prev, dup := stored[v]; dup {
				if dups++; dups <= 5 {
					t.Errorf("value %s stored twice: partition %d offset %d and partition %d offset %d", v, prev.partition, prev.offset, r.Partition, r.Offset)
				}
			}
			stored[v] = loc{r.Partition, r.Offset}
			s := stream{v.producer(), r.Partition}
			if last, ok := lastSeq[s]; ok && v.seq() < last {
				if reordered++; reordered <= 5 {
					t.Errorf("partition %d offset %d holds %s after sequence %d of the same producer", r.Partition, r.Offset, v, last)
				}
			}
			lastSeq[s] = max(lastSeq[s], v.seq())
		})
	}
	if dups > 0 {
		t.Errorf("%d values stored more than once", dups)
	}
	if reordered > 0 {
		t.Errorf("%d values stored after a later value of their producer", reordered)
	}
	return stored, dups
}

// checkAcked reports every acknowledged value that is not stored where its
// acknowledgement said (the first few of each kind in detail).
func checkAcked(t *testing.T, acked, stored map[valueKey]loc) (lost, moved int) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged")
	}
	for v, at := range acked {
		got, ok := stored[v]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s (partition %d offset %d) is gone", v, at.partition, at.offset)
			}
		case got != at:
			moved++
			if moved <= 5 {
				t.Errorf("acknowledged %s at partition %d offset %d is now at partition %d offset %d", v, at.partition, at.offset, got.partition, got.offset)
			}
		}
	}
	return lost, moved
}

// produceConfig describes a set of producers.
type produceConfig struct {
	addr, topic string
	prefix      string // values are "<prefix><producer>-<seq>"
	n           int    // producers
	pace        int    // records between 1 ms pauses
	// failuresOK counts a failed send instead of failing the test (the
	// broker is being killed).
	failuresOK bool
	opts       []kgo.Opt
}

// producers are idempotent acks=all franz-go clients writing unique values,
// each recording where the broker said it stored every acknowledged one.
// They run until stop.
type producers struct {
	t    *testing.T
	cfg  produceConfig
	quit chan struct{}
	wg   sync.WaitGroup

	mu       sync.Mutex
	acked    map[valueKey]loc // value -> where the broker said it is
	failed   int
	failures map[string]int // error text -> sends that failed with it
}

func startProducers(t *testing.T, cfg produceConfig) *producers {
	t.Helper()
	ps := &producers{t: t, cfg: cfg, quit: make(chan struct{}), acked: map[valueKey]loc{}, failures: map[string]int{}}
	for i := 0; i < cfg.n; i++ {
		opts := append([]kgo.Opt{kgo.SeedBrokers(cfg.addr), kgo.DefaultProduceTopic(cfg.topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
			kgo.ProducerLinger(time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 10 * time.Millisecond })}, cfg.opts...)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			t.Fatal(err)
		}
		ps.wg.Add(1)
		go ps.run(cl, i)
	}
	return ps
}

func (ps *producers) run(cl *kgo.Client, i int) {
	defer ps.wg.Done()
	defer cl.Close()
	ctx := context.Background()
	for seq := 0; ; seq++ {
		select {
		case <-ps.quit:
			fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			if err := cl.Flush(fctx); err != nil && !ps.cfg.failuresOK {
				ps.t.Errorf("flush: %v", err)
			}
			return
		default:
		}
		v := fmt.Sprintf("%s%02d-%07d", ps.cfg.prefix, i, seq)
		// Bounded in flight: Produce waits when the client's buffer is full.
		cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if err != nil {
				ps.failed++
				ps.failures[err.Error()]++
				if !ps.cfg.failuresOK {
					ps.t.Errorf("produce %s: %v", r.Value, err)
				}
				return
			}
			k, ok := keyOf(r.Value)
			if !ok {
				ps.t.Errorf("acknowledged value %q is not one this producer writes", r.Value)
				return
			}
			ps.acked[k] = loc{r.Partition, r.Offset}
		})
		if seq%ps.cfg.pace == ps.cfg.pace-1 {
			time.Sleep(time.Millisecond) // pacing the load, not waiting for state
		}
	}
}

// stop makes every producer flush what it has buffered and waits for them.
func (ps *producers) stop() {
	close(ps.quit)
	ps.wg.Wait()
}

// ackedEnds returns, per partition, the offset after the highest
// acknowledged record so far.
func (ps *producers) ackedEnds() map[int32]int64 {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ends := map[int32]int64{}
	for _, at := range ps.acked {
		ends[at.partition] = max(ends[at.partition], at.offset+1)
	}
	return ends
}

// ackedCount returns how many records were acknowledged so far.
func (ps *producers) ackedCount() int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	return len(ps.acked)
}

// readout is what verify found.
type readout struct {
	acked, stored             int // records acknowledged, distinct values stored
	dups, lost, moved, failed int
}

func (r readout) String() string {
	return fmt.Sprintf("%d records acknowledged, %d stored, %d sends failed; %d stored twice, %d lost, %d moved",
		r.acked, r.stored, r.failed, r.dups, r.lost, r.moved)
}

// verify reads topic back through addr and checks every acknowledged
// record: stored once, where its acknowledgement said.
func (ps *producers) verify(t *testing.T, addr string) readout {
	t.Helper()
	st, dups := readBack(t, addr, ps.cfg.topic)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	r := readout{acked: len(ps.acked), stored: len(st), dups: dups, failed: ps.failed}
	if r.lost, r.moved = checkAcked(t, ps.acked, st); r.lost+r.moved > 0 {
		t.Errorf("%d acknowledged records lost, %d moved", r.lost, r.moved)
	}
	for msg, n := range ps.failures {
		t.Logf("%d sends failed (never acknowledged, so free to be lost): %s", n, msg)
	}
	return r
}

// envInt returns the positive integer in the environment variable name, or
// def when it is unset.
func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

// dumpGoroutines writes every goroutine's stack to a file when something
// the test waits for does not happen, and logs where: a hang in the broker
// is found from its stacks.
func dumpGoroutines(t *testing.T) {
	t.Helper()
	f, err := os.CreateTemp("", "strom-crash-goroutines-*.txt")
	if err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 2); err != nil {
		t.Logf("goroutine dump: %v", err)
		return
	}
	t.Logf("goroutines dumped to %s", f.Name())
}
