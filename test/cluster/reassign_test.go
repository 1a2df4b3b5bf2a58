package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/cmd/strom/servecmd"
	"github.com/stromhq/strom/internal/cli"
)

// runStrom runs the strom CLI in process and returns its output.
func runStrom(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), args, &out, &errOut, servecmd.Commands()...); code != 0 {
		return out.String(), fmt.Errorf("strom %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
	}
	return out.String(), nil
}

// partition0 is partition 0 of topic as the metadata shows it.
func partition0(adm *kadm.Client, topic string) (kadm.PartitionDetail, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	md, err := adm.Metadata(ctx, topic)
	if err != nil {
		return kadm.PartitionDetail{}, err
	}
	p, ok := md.Topics[topic].Partitions[0]
	if !ok {
		return kadm.PartitionDetail{}, errors.New("no partition 0")
	}
	return p, p.Err
}

// directPartition0 is partition 0 of topic as the broker behind b
// answers Metadata now.
func directPartition0(ctx context.Context, b *kgo.Broker, topic string) (kmsg.MetadataResponseTopicPartition, error) {
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := b.Request(rctx, req)
	if err != nil {
		return kmsg.MetadataResponseTopicPartition{}, err
	}
	md := resp.(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 || len(md.Topics[0].Partitions) != 1 {
		return kmsg.MetadataResponseTopicPartition{}, fmt.Errorf("metadata %+v", md.Topics)
	}
	p := md.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return p, err
	}
	return p, nil
}

// TestReassignUnderLoad is issues 17/18's membership change: 4 brokers, an
// RF=3 partition written by idempotent acks=all producers all along, is
// reassigned (`strom topic reassign`, Kafka's JSON) to a set that takes in
// the 4th broker and drops one old replica. The reassignment completes
// (ListPartitionReassignments empty, the metadata's replicas the target),
// the dropped broker deletes its copy, every acknowledged record is read
// once from the new replicas with the dropped broker killed; then a change
// of the preferred replica and `strom topic elect-leaders` move the
// leader to it (auto.leader.rebalance.enable=false, so nothing else does).
func TestReassignUnderLoad(t *testing.T) {
	c := startCluster(t, 4, "auto.leader.rebalance.enable=false")
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3, 4})
	ctx := context.Background()
	adm := c.admin(c.nodes[0].kafka)
	const topic = "moving"
	if r, err := adm.CreateTopic(ctx, 1, 3, nil, topic); err != nil || r.Err != nil {
		t.Fatalf("create rf 3: %v %v", err, r.Err)
	}
	c.waitLeader(adm, topic, 3, -1)
	p, err := partition0(adm, topic)
	if err != nil {
		t.Fatal(err)
	}
	orig := p.Replicas
	var added int32
	for _, nd := range c.nodes {
		if !slices.Contains(orig, nd.id) {
			added = nd.id
		}
	}
	removed := orig[0]
	target := []int32{added, orig[1], orig[2]}
	t.Logf("replicas %v: moving to %v (adding %d, removing %d)", orig, target, added, removed)
	// The tools talk to a broker that stays up throughout: the removed
	// one is killed below, and it is broker 1 when the topic was placed
	// there first.
	via := c.nodes[orig[1]-1].kafka

	got := &acked{vals: map[int][]string{}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for prod := range 2 {
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.DefaultProduceTopic(topic),
			kgo.RequiredAcks(kgo.AllISRAcks()), kgo.MaxBufferedRecords(50), kgo.ProducerLinger(0),
			kgo.RetryTimeout(2*time.Minute), kgo.MetadataMinAge(250*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					cl.Flush(context.Background())
					return
				default:
				}
				v := fmt.Sprintf("%d-%07d", prod, seq)
				cl.Produce(context.Background(), &kgo.Record{Value: []byte(v)}, func(_ *kgo.Record, err error) {
					if err == nil {
						got.add(prod, v)
					}
				})
			}
		}()
	}
	// The new replica has a log to copy while the producers go on.
	waitFor(t, 60*time.Second, "10,000 acknowledgements", func() error {
		got.mu.Lock()
		defer got.mu.Unlock()
		if got.count < 10000 {
			return fmt.Errorf("%d so far", got.count)
		}
		return nil
	})

	plan := map[string]any{"version": 1, "partitions": []map[string]any{{"topic": topic, "partition": 0, "replicas": target}}}
	b, _ := json.Marshal(plan)
	file := filepath.Join(t.TempDir(), "move.json")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	broker := c.nodes[int(added)-1].kafka // a broker that holds no replica yet
	started := time.Now()
	out, err := runStrom(t, "topic", "reassign", file, "--brokers", broker)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", out)
	// Right after the command the metadata holds the union of old and
	// new replicas, listed as a reassignment in progress (unless the new
	// replica caught up already). Asked of one broker directly: kadm sends
	// these to the controller it learned from a metadata refresh, which
	// it may wait for.
	direct := c.direct(via)
	list := func() *kmsg.ListPartitionReassignmentsResponse {
		t.Helper()
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		resp, err := direct.Request(rctx, kmsg.NewPtrListPartitionReassignmentsRequest())
		if err != nil {
			t.Fatal(err)
		}
		return resp.(*kmsg.ListPartitionReassignmentsResponse)
	}
	if l := list(); len(l.Topics) > 0 {
		r := l.Topics[0].Partitions[0]
		if !slices.Equal(r.AddingReplicas, []int32{added}) || !slices.Equal(r.RemovingReplicas, []int32{removed}) || len(r.Replicas) != 4 {
			t.Errorf("in progress: %+v", r)
		}
		t.Logf("in progress: replicas %v, adding %v, removing %v", r.Replicas, r.AddingReplicas, r.RemovingReplicas)
	}
	waitFor(t, 2*time.Minute, "the reassignment to complete", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(p.Replicas, target) {
			return fmt.Errorf("replicas %v", p.Replicas)
		}
		return nil
	})
	if l := list(); len(l.Topics) != 0 {
		t.Fatalf("listed after the end: %+v", l.Topics)
	}
	took := time.Since(started)
	out, err = runStrom(t, "topic", "reassign", "--verify", file, "--brokers", via)
	if err != nil || !strings.Contains(out, "is completed") {
		t.Fatalf("verify: %v\n%s", err, out)
	}
	got.mu.Lock()
	n := got.count
	got.mu.Unlock()
	t.Logf("reassignment completed in %v under load (from the command's start to the metadata naming the target), %d records acknowledged so far", took, n)
	// The dropped broker deletes its copy.
	gone := filepath.Join(c.nodes[removed-1].dir, topic+"-0")
	waitFor(t, 30*time.Second, "the removed replica's directory to go", func() error {
		if _, err := os.Stat(gone); err == nil {
			return fmt.Errorf("%s still there", gone)
		}
		return nil
	})
	after := time.Now()
	waitFor(t, 30*time.Second, "acknowledgements after the change", func() error {
		if !got.since(after.Add(time.Second)) {
			return errors.New("none since")
		}
		return nil
	})

	// A new preferred replica (the same set, another order) and
	// ElectLeaders moves the leader to it.
	// Asked of one broker directly: a kadm client may answer from
	// metadata it cached (franz-go's MetadataMinAge).
	var lead int32
	waitFor(t, 30*time.Second, "a leader among the new replicas with a full ISR", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Contains(target, p.Leader) || len(p.ISR) != 3 {
			return fmt.Errorf("leader %d, ISR %v", p.Leader, p.ISR)
		}
		lead = p.Leader
		return nil
	})
	var pref int32
	for _, id := range target {
		if id != lead {
			pref = id
			break
		}
	}
	order := append([]int32{pref}, slices.DeleteFunc(slices.Clone(target), func(id int32) bool { return id == pref })...)
	plan["partitions"] = []map[string]any{{"topic": topic, "partition": 0, "replicas": order}}
	b, _ = json.Marshal(plan)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runStrom(t, "topic", "reassign", file, "--brokers", via); err != nil {
		t.Fatalf("reorder: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the new order in the metadata", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(p.Replicas, order) {
			return fmt.Errorf("replicas %v", p.Replicas)
		}
		if p.Leader == pref {
			return fmt.Errorf("broker %d leads already: nothing to elect", pref)
		}
		return nil
	})
	elected := time.Now()
	out, err = runStrom(t, "topic", "elect-leaders", "--topic", topic, "--partition", "0", "--brokers", c.nodes[int(removed)-1].kafka)
	if err != nil || !strings.Contains(out, "Successfully completed leader election (PREFERRED) for partitions "+topic+"-0") {
		t.Fatalf("elect-leaders: %v\n%s", err, out)
	}
	answered := time.Since(elected)
	// The answering broker saw the new leader in its metadata; the others
	// apply the same record a moment later.
	waitFor(t, 10*time.Second, "every broker to name the preferred leader", func() error {
		for _, id := range target {
			p, err := partition0(c.admin(c.nodes[id-1].kafka), topic)
			if err != nil {
				return err
			}
			if p.Leader != pref {
				return fmt.Errorf("broker %d names leader %d", id, p.Leader)
			}
		}
		return nil
	})
	t.Logf("ElectLeaders: broker %d leads instead of %d, answered in %v", pref, lead, answered)
	out, err = runStrom(t, "topic", "elect-leaders", "--topic", topic, "--brokers", via)
	if err != nil || !strings.Contains(out, "Valid replica already elected for partitions "+topic+"-0") {
		t.Fatalf("elect-leaders again: %v\n%s", err, out)
	}

	// Raising the replication factor is a reassignment with more
	// replicas: the dropped broker comes back, empty (its directory was
	// deleted), joins the group and catches up under load; then it is
	// dropped again.
	reassignTo := func(replicas []int32) time.Duration {
		t.Helper()
		plan["partitions"] = []map[string]any{{"topic": topic, "partition": 0, "replicas": replicas}}
		b, _ := json.Marshal(plan)
		if err := os.WriteFile(file, b, 0o644); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if out, err := runStrom(t, "topic", "reassign", file, "--brokers", via); err != nil {
			t.Fatalf("reassign to %v: %v\n%s", replicas, err, out)
		}
		waitFor(t, 2*time.Minute, fmt.Sprintf("replicas %v", replicas), func() error {
			p, err := directPartition0(ctx, direct, topic)
			if err != nil {
				return err
			}
			if !slices.Equal(p.Replicas, replicas) || len(p.ISR) != len(replicas) {
				return fmt.Errorf("replicas %v, ISR %v", p.Replicas, p.ISR)
			}
			return nil
		})
		return time.Since(start)
	}
	four := append(slices.Clone(order), removed)
	took4 := reassignTo(four)
	took3 := reassignTo(order)
	waitFor(t, 30*time.Second, "the dropped replica's directory to go again", func() error {
		if _, err := os.Stat(gone); err == nil {
			return fmt.Errorf("%s still there", gone)
		}
		return nil
	})
	t.Logf("replication factor 3 -> 4 (broker %d back, empty) in %v, 4 -> 3 in %v (to the replicas and a full ISR in one broker's Metadata)", removed, took4, took3)

	// Cancel: the dropped broker killed, a reassignment adding it again
	// cannot finish (its learner never catches up, so the voters never
	// switch); --cancel takes the partition back to its replicas.
	c.nodes[removed-1].proc.Kill(t)
	plan["partitions"] = []map[string]any{{"topic": topic, "partition": 0, "replicas": four}}
	b, _ = json.Marshal(plan)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runStrom(t, "topic", "reassign", file, "--brokers", via); err != nil {
		t.Fatalf("reassign to a dead broker: %v\n%s", err, out)
	}
	if out, err := runStrom(t, "topic", "reassign", "--verify", file, "--brokers", via); err != nil || !strings.Contains(out, "still in progress") {
		t.Fatalf("verify while stuck: %v\n%s", err, out)
	}
	out, err = runStrom(t, "topic", "reassign", "--cancel", file, "--brokers", via)
	if err != nil || !strings.Contains(out, "cancelled the reassignment of "+topic+"-0") {
		t.Fatalf("cancel: %v\n%s", err, out)
	}
	waitFor(t, 30*time.Second, "the cancel to end", func() error {
		p, err := directPartition0(ctx, direct, topic)
		if err != nil {
			return err
		}
		if !slices.Equal(p.Replicas, order) {
			return fmt.Errorf("replicas %v", p.Replicas)
		}
		if l := list(); len(l.Topics) != 0 {
			return fmt.Errorf("still listed: %+v", l.Topics)
		}
		return nil
	})
	if out, err := runStrom(t, "topic", "reassign", "--cancel", file, "--brokers", via); err == nil || !strings.Contains(err.Error(), "no reassignment in progress") {
		t.Fatalf("a second cancel: %v\n%s", err, out)
	}

	close(stop)
	wg.Wait()

	// With the removed broker killed, every acknowledged record is read
	// back once, in each producer's order, from the new replicas.
	var seeds []string
	for _, id := range target {
		seeds = append(seeds, c.nodes[id-1].kafka)
	}
	sadm := c.admin(seeds[0])
	ends, err := sadm.ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		t.Fatalf("end offsets: %v %v", err, ends.Error())
	}
	end, _ := ends.Lookup(topic, 0)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	at := map[string]int64{}
	deadline := time.Now().Add(2 * time.Minute)
	for next, idle := int64(0), 0; next < end.Offset && idle < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("read up to %d of %d", next, end.Offset)
		}
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if fs.NumRecords() == 0 {
			idle++
		}
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			if prev, ok := at[v]; ok {
				t.Errorf("%s at offsets %d and %d", v, prev, r.Offset)
			}
			at[v] = r.Offset
			next = r.Offset + 1
		})
	}
	total := 0
	got.mu.Lock()
	for prod, vals := range got.vals {
		prev := int64(-1)
		for _, v := range vals {
			off, ok := at[v]
			if !ok {
				t.Errorf("producer %d: acknowledged %s was lost", prod, v)
				continue
			}
			if off <= prev {
				t.Errorf("producer %d: %s at %d after an earlier record at %d", prod, v, off, prev)
			}
			prev = off
		}
		total += len(vals)
	}
	got.mu.Unlock()
	t.Logf("%d records acknowledged, %d read from brokers %v, high watermark %d", total, len(at), target, end.Offset)

	// The preferred replica down: ElectLeaders cannot make it leader.
	c.start(c.nodes[removed-1])
	c.waitBrokers(seeds[0], []int32{1, 2, 3, 4})
	c.nodes[pref-1].proc.Kill(t)
	var alive string
	for _, id := range order {
		if id != pref {
			alive = c.nodes[id-1].kafka
			break
		}
	}
	c.waitLeader(c.admin(alive), topic, 2, pref)
	out, err = runStrom(t, "topic", "elect-leaders", "--topic", topic, "--brokers", alive)
	if err == nil || !strings.Contains(err.Error(), "PREFERRED_LEADER_NOT_AVAILABLE") {
		t.Fatalf("elect-leaders with the preferred replica down: %v\n%s", err, out)
	}
	t.Logf("with broker %d down: %v", pref, err)
}
