package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// groupConsumer is one franz-go member of a group that commits what it
// polled after every poll (synchronously), and remembers what it read.
type groupConsumer struct {
	t    *testing.T
	cl   *kgo.Client
	seen map[string]bool // values read (at least once)
	next map[int32]int64 // per partition: the offset after the last record read
	frst map[int32]int64 // per partition: the first offset read
	errs int             // commits that failed (retried by the next one)
}

func newGroupConsumer(t *testing.T, seeds []string, topic, group string) *groupConsumer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics(topic), kgo.ConsumerGroup(group),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxBytes(16<<10),
		kgo.FetchMaxPartitionBytes(4<<10), kgo.RetryTimeout(90*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return &groupConsumer{t: t, cl: cl, seen: map[string]bool{}, next: map[int32]int64{}, frst: map[int32]int64{}}
}

// consume polls and commits until until() holds or d passes.
func (g *groupConsumer) consume(d time.Duration, until func() bool) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for !until() {
		fs := g.cl.PollFetches(ctx)
		if ctx.Err() != nil {
			g.t.Fatalf("consumed %d records, not done within %v", len(g.seen), d)
		}
		fs.EachRecord(func(r *kgo.Record) {
			g.seen[string(r.Value)] = true
			if _, ok := g.frst[r.Partition]; !ok {
				g.frst[r.Partition] = r.Offset
			}
			g.next[r.Partition] = r.Offset + 1
		})
		cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
		if err := g.cl.CommitUncommittedOffsets(cctx); err != nil {
			g.errs++
			g.t.Logf("commit (retried with the next): %v", err)
		}
		ccancel()
	}
}

// commitAll commits what was read, retrying until it succeeds (a
// coordinator failover), within d.
func (g *groupConsumer) commitAll(d time.Duration) {
	g.t.Helper()
	waitFor(g.t, d, "the final commit", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return g.cl.CommitUncommittedOffsets(ctx)
	})
}

// committedOffsets is the group's committed offsets of topic, by partition.
func committedOffsets(adm *kadm.Client, group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	offs, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		return nil, err
	}
	if err := offs.Error(); err != nil {
		return nil, err
	}
	out := map[int32]int64{}
	for p, o := range offs[topic] {
		out[p] = o.At
	}
	return out, nil
}

// TestGroupOffsetsSurviveCoordinatorKill is issue 18's "a group resumes
// from its committed offsets with none lost": on 3 brokers the offsets
// topic has 3 replicas; a franz-go member commits after every poll; the
// broker that leads __consumer_offsets-0 (the group's coordinator) is
// killed with SIGKILL mid-way. The member finds the new coordinator and
// goes on committing; no committed offset goes backwards; what the member
// last committed is what a new member of the group resumes from, exactly;
// every record is read at least once.
func TestGroupOffsetsSurviveCoordinatorKill(t *testing.T) {
	const (
		topic      = "work"
		group      = "workers"
		partitions = 3
		total      = 4500
	)
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	adm := c.admin(c.nodes[0].kafka)
	ctx := context.Background()
	if r, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create %s: %v %v", topic, err, r.Err)
	}
	c.waitLed(c.nodes[0].kafka, topic, partitions)
	// Small produces make small batches, so that commits fall inside a
	// partition rather than at its end.
	pcl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < total; i += 30 {
		recs := make([]*kgo.Record, 0, 30)
		for k := i; k < i+30 && k < total; k++ {
			recs = append(recs, &kgo.Record{Value: []byte("v-" + strconv.Itoa(k))})
		}
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := pcl.ProduceSync(pctx, recs...).FirstErr()
		cancel()
		if err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	pcl.Close()
	ends := map[int32]int64{} // each partition's end offset
	lo, err := adm.ListEndOffsets(ctx, topic)
	if err != nil || lo.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, lo.Error())
	}
	lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
	if len(ends) != partitions {
		t.Fatalf("end offsets %v", ends)
	}

	// The first FindCoordinator creates the offsets topic: 3 replicas.
	var coord int32
	waitFor(t, 30*time.Second, "a coordinator for the group", func() error {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		r := adm.FindGroupCoordinators(cctx, group)[group]
		if r.Err != nil {
			return r.Err
		}
		coord = r.NodeID
		return nil
	})
	td := c.waitLed(c.nodes[0].kafka, "__consumer_offsets", 1)
	if reps := td.Partitions[0].Replicas; len(reps) != 3 {
		t.Fatalf("__consumer_offsets-0 has replicas %v, want 3", reps)
	}
	c.waitLeader(adm, "__consumer_offsets", 3, -1)

	a := newGroupConsumer(t, c.seeds(), topic, group)
	defer a.cl.Close()
	a.consume(60*time.Second, func() bool { return len(a.seen) >= total/6 })
	a.commitAll(30 * time.Second)
	before, err := committedOffsets(adm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p, n := range a.next {
		if before[p] != n {
			t.Fatalf("partition %d: committed %d, the member had read up to %d", p, before[p], n)
		}
	}

	// Kill the coordinator: the leader of __consumer_offsets-0.
	md, err := adm.Metadata(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	lead := md.Topics["__consumer_offsets"].Partitions[0].Leader
	if lead != coord {
		t.Logf("coordinator %d, offsets leader %d (moved since FindCoordinator)", coord, lead)
	}
	victim := c.nodes[lead-1]
	victim.proc.Kill(t)
	killed := time.Now()
	var survivors []string
	for _, nd := range c.nodes {
		if nd != victim {
			survivors = append(survivors, nd.kafka)
		}
	}
	sadm := c.admin(survivors[0])
	// The new coordinator serves the group's offsets, all of them. A fresh
	// client each time, as an admin tool run again: one client keeps the
	// coordinator it found and, when that one is dead, redials it for a
	// long time (FindCoordinator may name the dead leader until its
	// successor's leadership reaches the metadata or it is fenced).
	served := waitFor(t, 60*time.Second, "the group's offsets at the new coordinator", func() error {
		cl, err := kgo.NewClient(kgo.SeedBrokers(survivors...))
		if err != nil {
			return err
		}
		defer cl.Close()
		got, err := committedOffsets(kadm.NewClient(cl), group, topic)
		if err != nil {
			return err
		}
		for p, o := range before {
			if got[p] != o {
				return fmt.Errorf("partition %d: %d committed, %d before the kill", p, got[p], o)
			}
		}
		return nil
	})
	t.Logf("kill -9 of coordinator %d to its offsets served by the new one: %v", lead, served.Round(time.Millisecond))

	// The member goes on, through the new coordinator.
	a.consume(90*time.Second, func() bool { return len(a.seen) >= total/2 })
	a.commitAll(60 * time.Second)
	t.Logf("kill -9 of coordinator %d to the member's next successful commit after half: %v (%d commits failed meanwhile)",
		lead, time.Since(killed).Round(time.Millisecond), a.errs)
	after, err := committedOffsets(sadm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if after[p] < before[p] {
			t.Fatalf("partition %d: committed offset went back from %d to %d", p, before[p], after[p])
		}
		if after[p] != a.next[p] {
			t.Fatalf("partition %d: committed %d after the failover, the member had read up to %d", p, after[p], a.next[p])
		}
	}
	t.Logf("ends %v, committed before the kill %v, after %v, member read to %v", ends, before, after, a.next)
	a.cl.Close() // leaves the group

	// A new member resumes from the committed offsets, exactly.
	b := newGroupConsumer(t, survivors, topic, group)
	defer b.cl.Close()
	b.consume(90*time.Second, func() bool {
		for p := range int32(partitions) {
			if after[p] < ends[p] && b.next[p] < ends[p] {
				return false
			}
		}
		return true
	})
	b.commitAll(30 * time.Second)
	t.Logf("the new member started at %v", b.frst)
	if len(b.frst) == 0 {
		t.Fatal("the new member had nothing left to read: the test resumed nothing")
	}
	for p, first := range b.frst {
		// A partition the group never committed starts at its first
		// record; every record read at least once, below, covers it.
		if committed, ok := after[p]; ok && first != committed {
			t.Fatalf("partition %d: the new member started at %d, the group had committed %d", p, first, committed)
		}
	}
	var missing []string
	for i := range total {
		v := "v-" + strconv.Itoa(i)
		if !a.seen[v] && !b.seen[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		t.Fatalf("%d records never read: %s", len(missing), strings.Join(missing[:min(10, len(missing))], ", "))
	}
	final, err := committedOffsets(sadm, group, topic)
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(partitions) {
		if final[p] != ends[p] {
			t.Fatalf("partition %d: final committed offset %d, want its end, %d", p, final[p], ends[p])
		}
	}
}
