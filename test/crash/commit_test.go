package crash

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// committer is a consumer group member that commits what it consumed,
// synchronously, after every poll, and records per partition what the
// broker acknowledged. It can be paused between commits, so that a check
// sees no commit in flight.
type committer struct {
	cl          *kgo.Client
	group       string
	topic       string
	pauses      chan chan struct{}
	quit, ended chan struct{}

	mu sync.Mutex
	// acked is the last acknowledged commit of each partition; unknown
	// holds the commits of a partition that failed since (a lost
	// response, a kill): the broker may or may not have stored them.
	acked    map[int32]int64
	unknown  map[int32]map[int64]bool
	commits  int // partition commits acknowledged
	failures int // partition commits that failed (most while the broker was down)
}

func startCommitter(t *testing.T, addr, topic, group string) *committer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond), kgo.MetadataMinAge(50*time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	if err != nil {
		t.Fatal(err)
	}
	c := &committer{cl: cl, group: group, topic: topic, pauses: make(chan chan struct{}), quit: make(chan struct{}),
		ended: make(chan struct{}), acked: map[int32]int64{}, unknown: map[int32]map[int64]bool{}}
	go c.run()
	return c
}

func (c *committer) run() {
	defer close(c.ended)
	ctx := context.Background()
	for {
		select {
		case <-c.quit:
			return
		case resume := <-c.pauses:
			select {
			case <-resume:
			case <-c.quit:
				return
			}
			continue
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		recs := c.cl.PollRecords(pctx, 50).Records()
		cancel()
		if len(recs) == 0 {
			continue
		}
		next := map[int32]kgo.EpochOffset{}
		for _, r := range recs {
			if o := next[r.Partition]; r.Offset+1 > o.Offset {
				next[r.Partition] = kgo.EpochOffset{Epoch: r.LeaderEpoch, Offset: r.Offset + 1}
			}
		}
		ok := map[int32]bool{}
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		c.cl.CommitOffsetsSync(cctx, map[string]map[int32]kgo.EpochOffset{c.topic: next},
			func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
				if err != nil {
					return
				}
				for _, rt := range resp.Topics {
					for _, rp := range rt.Partitions {
						ok[rp.Partition] = rp.ErrorCode == 0
					}
				}
			})
		cancel()
		c.mu.Lock()
		for p, o := range next {
			if ok[p] {
				c.acked[p] = o.Offset
				delete(c.unknown, p)
				c.commits++
				continue
			}
			if c.unknown[p] == nil {
				c.unknown[p] = map[int64]bool{}
			}
			c.unknown[p][o.Offset] = true
			c.failures++
		}
		c.mu.Unlock()
	}
}

// ackedPartitions returns how many partitions have an acknowledged commit.
func (c *committer) ackedPartitions() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.acked)
}

// commitCount returns the partition commits acknowledged so far.
func (c *committer) commitCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits
}

// counts returns the partition commits acknowledged and failed so far.
func (c *committer) counts() (commits, failures int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.commits, c.failures
}

// check pauses the committer (waiting for a commit in flight to end),
// fetches the group's committed offsets through adm and compares each with
// the last acknowledged commit of its partition: they must be equal, or
// the committed one must be a commit that failed since (the broker stored
// it but its answer was lost). It returns how many partitions it checked
// and how many held such a commit.
func (c *committer) check(t *testing.T, adm *kadm.Client) (checked, unacked int) {
	t.Helper()
	resume := make(chan struct{})
	defer close(resume)
	select {
	case c.pauses <- resume:
	case <-time.After(60 * time.Second):
		dumpGoroutines(t)
		t.Fatal("the committer did not pause within 60 s")
	}
	var fetched kadm.OffsetResponses
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		var err error
		fetched, err = adm.FetchOffsets(ctx, c.group)
		cancel()
		if err == nil {
			err = fetched.Error()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			dumpGoroutines(t)
			t.Fatalf("offset fetch: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the broker until it answers
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	parts := map[int32]bool{}
	for p := range c.acked {
		parts[p] = true
	}
	fetched.Each(func(o kadm.OffsetResponse) {
		if o.Topic == c.topic {
			parts[o.Partition] = true
		}
	})
	for _, p := range sortedKeys(parts) {
		want, hasAck := c.acked[p]
		got, ok := fetched.Lookup(c.topic, p)
		switch {
		case !ok && !hasAck:
		case !ok:
			t.Errorf("partition %d: no committed offset; the last acknowledged commit was %d", p, want)
		case got.Err != nil:
			t.Errorf("partition %d: offset fetch: %v", p, got.Err)
		case hasAck && got.At == want:
			checked++
		case c.unknown[p][got.At]:
			checked++
			unacked++
		case got.At < want || !hasAck:
			t.Errorf("partition %d: committed offset %d; the last acknowledged commit was %d (acknowledged: %v), unacknowledged since: %v", p, got.At, want, hasAck, sortedKeys(c.unknown[p]))
		default:
			t.Errorf("partition %d: committed offset %d was never sent; the last acknowledged commit was %d, unacknowledged since: %v", p, got.At, want, sortedKeys(c.unknown[p]))
		}
	}
	return checked, unacked
}

// stop ends the committer and closes its client (it leaves the group).
func (c *committer) stop() {
	close(c.quit)
	<-c.ended
	c.cl.Close()
}

func sortedKeys[K int32 | int64, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// waitUntil polls cond every few milliseconds until it holds, or fails the
// test after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			dumpGoroutines(t)
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond) // polling, with a deadline
	}
}

// A consumer group member commits what it consumes after every poll while
// the broker process is killed with SIGKILL and restarted. After each
// restart, with the member paused, the committed offset of every partition
// is the last commit the broker acknowledged, or a later one whose answer
// the kill swallowed; never an older one. STROM_CRASH_COMMIT_CYCLES sets the
// number of kills (default 8).
func TestKillDuringOffsetCommits(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	cycles := envInt(t, "STROM_CRASH_COMMIT_CYCLES", 8)
	const partitions, topic, group = 4, "commits", "crash-commits"
	dir, addr := t.TempDir(), childbroker.FreeAddr(t)
	b := startBroker(t, dir, addr)
	createTopic(t, addr, topic, partitions)
	ps := startProducers(t, produceConfig{addr: addr, topic: topic, prefix: "c", n: 2, pace: 16, failuresOK: true,
		opts: []kgo.Opt{kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond })}})
	c := startCommitter(t, addr, topic, group)
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(admCl)
	waitUntil(t, 30*time.Second, "a commit of every partition acknowledged", func() bool { return c.ackedPartitions() == partitions })

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 17))
	var checked, unacked int
	for i := 0; i < cycles; i++ {
		time.Sleep(time.Duration(100+rng.IntN(500)) * time.Millisecond) // the kill lands at a random moment
		b.Kill(t)
		b = startBroker(t, dir, addr)
		n, u := c.check(t, adm)
		checked, unacked = checked+n, unacked+u
		if t.Failed() {
			break
		}
	}
	c.stop()
	ps.stop()
	admCl.Close()
	defer b.Stop(t)
	r := ps.verify(t, addr)
	commits, failures := c.counts()
	t.Logf("%d kills: %d partition commits acknowledged, %d failed; %d committed offsets checked after restarts, %d of them a commit whose answer was lost; producers: %v",
		cycles, commits, failures, checked, unacked, r)
}
