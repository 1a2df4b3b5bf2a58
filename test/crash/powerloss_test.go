package crash

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// memDataDir is where the power-loss test keeps its data, on a MemFS: a
// nested path, so that the broker creates (and must make durable) the
// parents too.
const memDataDir = "/var/lib/strom/data"

// memProps make the in-memory broker roll segments, write checkpoints and
// producer snapshots often (so cuts land in the middle of them), and keep
// its indexes small (every cut copies the whole filesystem).
var memProps = map[string]string{
	"log.segment.bytes":                       "131072",
	"log.index.size.max.bytes":                "16384",
	"log.flush.offset.checkpoint.interval.ms": "100",
}

// startOnMem starts an in-process broker on fs that tells clients to
// connect through advertised. It fails the test if the broker refuses to
// start: recovery must never refuse a filesystem a power loss left.
func startOnMem(t *testing.T, fs vfs.FS, advertised string, label string) *broker.Broker {
	t.Helper()
	b, err := broker.Start(broker.Config{DataDir: memDataDir, FS: fs, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		AdvertisedAddr: advertised, Props: memProps, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("%s: the broker does not start: %v", label, err)
	}
	return b
}

// powerCut says what of the unsynced data survives a cut.
type powerCut int

const (
	keepSynced     powerCut = iota // only what was fsynced
	keepEverything                 // the OS wrote everything back in time
	keepPrefixes                   // a random prefix of each file's unsynced bytes
)

func (c powerCut) String() string {
	return [...]string{"fsynced only", "everything written", "random prefixes"}[c]
}

// options returns the MemFS crash options of the cut, adding the unsynced
// bytes it met and kept to *unsynced and *kept; rng is used with the MemFS
// locked, from this goroutine only.
func (c powerCut) options(rng *rand.Rand, unsynced, kept *int) memfs.CrashOptions {
	return memfs.CrashOptions{KeepUnsyncedPrefix: func(_ string, n int) int {
		k := 0
		switch c {
		case keepEverything:
			k = n
		case keepPrefixes:
			k = rng.IntN(n + 1)
		}
		*unsynced += n
		*kept += k
		return k
	}}
}

// The power goes out at random moments under the real produce and commit
// paths: an in-process broker (listener, handlers, group coordinator,
// cluster) on a memfs.FS, eight idempotent acks=all producers and a
// consumer group member committing, all through a proxy. At a cut the
// proxy stops every response (so a client is told nothing the broker said
// after the cut) and the filesystem a power loss would leave is taken: in
// half the cuts 0-2 ms after the proxy stops, in the other half at the
// instant of a file write, before its fsync, the proxy stopping at that
// same instant. The image holds only fsynced data and durable directory
// entries, plus, in every third cut, all unsynced bytes, and in another
// third a random prefix of each file's. A new broker starts on it, must start, and the
// clients carry on through the proxy. After every cut, every partition
// ends at or past its last acknowledged record and every committed offset
// is the last acknowledged commit (or a later unacknowledged one); at the
// end of a round every acknowledged record is read back once, at its
// offset.
//
// STROM_POWERLOSS_CUTS sets the number of cuts (default 20), made in rounds
// of at most 100 on a fresh filesystem each, so that memory stays bounded
// (every cut copies the whole filesystem); STROM_POWERLOSS_SEED fixes the
// random choices (not the scheduling).
func TestPowerLossAtRandomPoints(t *testing.T) {
	if testing.Short() {
		t.Skip("power cuts take a while")
	}
	cuts := envInt(t, "STROM_POWERLOSS_CUTS", 20)
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("STROM_POWERLOSS_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("STROM_POWERLOSS_SEED=%q", s)
		}
	}
	t.Logf("STROM_POWERLOSS_SEED=%d", seed)
	rng := rand.New(rand.NewPCG(seed, 19))
	const perRound = 100
	var st powerStats
	for done, round := 0, 1; done < cuts && !t.Failed(); round++ {
		n := min(perRound, cuts-done)
		powerRound(t, rng, n, &st)
		done += n
		if cuts > perRound {
			t.Logf("round %d: %d cuts so far, %d records and %d partition commits acknowledged", round, done, st.acked, st.commits)
		}
	}
	t.Logf("%d power cuts (%d %v, %d %v, %d %v; %d at a file write before its fsync; %d with no record or commit acknowledged since the previous one); %d unsynced bytes met, %d kept",
		st.cuts, st.kinds[keepSynced], keepSynced, st.kinds[keepEverything], keepEverything, st.kinds[keepPrefixes], keepPrefixes,
		st.atWrite, st.idle, st.unsynced, st.kept)
	t.Logf("producers: %d records acknowledged, %d stored, %d sends failed; %d stored twice, %d lost, %d moved; %d unacknowledged records survived cuts",
		st.acked, st.stored, st.failed, st.dups, st.lost, st.moved, st.extra)
	t.Logf("committer: %d partition commits acknowledged, %d failed; %d committed offsets checked after cuts, %d of them a commit whose answer was lost",
		st.commits, st.commitFailures, st.checked, st.unacked)
	if st.idle > st.cuts/2 {
		t.Errorf("%d of %d cuts found the clients stalled", st.idle, st.cuts)
	}
}

// powerStats adds up the rounds of TestPowerLossAtRandomPoints.
type powerStats struct {
	readout
	cuts, idle, extra, unsynced, kept int
	atWrite                           int // cuts at a file write
	kinds                             [3]int
	commits, commitFailures           int
	checked, unacked                  int
}

// powerRound makes cuts power cuts under a fresh broker, filesystem and
// clients, verifies everything acknowledged, and adds to st.
func powerRound(t *testing.T, rng *rand.Rand, cuts int, st *powerStats) {
	t.Helper()
	const producers, partitions, topic, group = 8, 4, "power", "power-commits"
	mem := memfs.New()
	proxy := newLossyProxy(t, 0)
	defer proxy.close()
	b := startOnMem(t, mem, proxy.addr(), "first start")
	defer func() {
		if b != nil {
			shutdown(t, b)
		}
	}()
	proxy.start(b.KafkaAddr().String())
	createTopic(t, b.KafkaAddr().String(), topic, partitions)

	// At most 2 records a millisecond each: the MemFS holds everything and
	// every cut copies it. After a cut the clients refresh their metadata
	// at once, not after franz-go's default 5 s: every cut would otherwise
	// stall them.
	ps := startProducers(t, produceConfig{addr: proxy.addr(), topic: topic, prefix: "w", n: producers, pace: 2,
		opts: []kgo.Opt{kgo.MetadataMinAge(50 * time.Millisecond)}})
	c := startCommitter(t, proxy.addr(), topic, group)
	stopped := false
	defer func() { // on a failure too, before the broker stops
		if !stopped {
			c.stop()
			ps.stop()
		}
	}()
	waitUntil(t, 30*time.Second, "a commit of every partition acknowledged", func() bool { return c.ackedPartitions() == partitions })

	lastAcked, lastCommits := 0, 0
	for i := 0; i < cuts; i++ {
		time.Sleep(time.Duration(50+rng.IntN(350)) * time.Millisecond) // the cut lands at a random moment
		kind := powerCut(st.cuts % 3)
		st.kinds[kind]++
		st.cuts++
		opts := kind.options(rng, &st.unsynced, &st.kept)
		var image *memfs.FS
		if rng.IntN(2) == 0 {
			// Half the cuts land right after one of the next 16 file
			// writes, before its fsync, so that they find unsynced bytes:
			// the proxy stops at that instant, with the MemFS locked, so
			// no client hears of a sync the image lacks. rng is not used
			// here until the cut is taken: the options use it on the
			// writer's goroutine.
			fired := make(chan struct{})
			cut := mem.CrashAtWrite(1+rng.IntN(16), opts, func() { proxy.freeze(); close(fired) })
			select {
			case <-fired:
				st.atWrite++
			case <-time.After(100 * time.Millisecond): // no writes: cut now
			}
			image = cut()
		} else {
			// The others: the disk goes up to 2 ms after the network, so
			// writes finish whose answers no client will see (a commit
			// stored but not acknowledged, a batch its producer retries).
			proxy.freeze()
			time.Sleep(time.Duration(rng.IntN(2000)) * time.Microsecond)
			image = mem.Crash(opts)
		}
		ends := ps.ackedEnds() // every acknowledgement a client could have seen
		// A cut that found the clients stalled tests little: count them.
		nAcked, nCommits := ps.ackedCount(), c.commitCount()
		if nAcked == lastAcked || nCommits == lastCommits {
			st.idle++
		}
		lastAcked, lastCommits = nAcked, nCommits
		shutdown(t, b) // the old broker, on the filesystem that lost power
		b, mem = nil, image
		label := fmt.Sprintf("cut %d (%v)", st.cuts, kind)
		b = startOnMem(t, mem, proxy.addr(), label)
		proxy.thaw(b.KafkaAddr().String())
		// Clients find the broker through the proxy: check once it
		// forwards again (end offsets only grow).
		st.extra += checkEnds(t, b.KafkaAddr().String(), topic, ends, label)
		n, u := checkCommits(t, c, b.KafkaAddr().String())
		st.checked, st.unacked = st.checked+n, st.unacked+u
		if t.Failed() {
			break
		}
	}
	c.stop()
	ps.stop()
	stopped = true
	r := ps.verify(t, b.KafkaAddr().String())
	st.acked += r.acked
	st.stored += r.stored
	st.failed += r.failed
	st.dups += r.dups
	st.lost += r.lost
	st.moved += r.moved
	commits, failures := c.counts()
	st.commits += commits
	st.commitFailures += failures
}

// checkEnds checks that every partition of topic ends at or past ends (the
// offset after its last acknowledged record) and returns how many records
// the log holds past them in all (written, never acknowledged, kept).
func checkEnds(t *testing.T, addr, topic string, ends map[int32]int64, label string) (beyond int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	listed, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		dumpGoroutines(t)
		t.Fatalf("%s: list end offsets: %v", label, err)
	}
	for p, want := range ends {
		o, ok := listed.Lookup(topic, p)
		switch {
		case !ok:
			t.Errorf("%s: partition %d missing", label, p)
		case o.Offset < want:
			t.Errorf("%s: partition %d ends at %d, but offset %d was acknowledged", label, p, o.Offset, want-1)
		default:
			beyond += int(o.Offset - want)
		}
	}
	return beyond
}

// checkCommits checks the committer's offsets through a new admin client of
// the broker at addr.
func checkCommits(t *testing.T, c *committer, addr string) (checked, unacked int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	return c.check(t, kadm.NewClient(cl))
}
