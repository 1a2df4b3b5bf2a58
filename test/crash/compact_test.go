package crash

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// TestKillDuringCompaction kills the broker process with SIGKILL while an
// idempotent acks=all producer updates 40 keys of a compacted topic with 4
// KiB segments and the cleaner (every 10 ms, any dirty ratio) rewrites and
// swaps segments all the time, so kills land inside cleaning passes and
// swaps. After each restart the partition is read from the start: offsets
// increase, every key's last value is at least as new as its last
// acknowledged update (never older: a swap cut short must not lose or roll
// back a key's latest value), and the log did get compacted.
func TestKillDuringCompaction(t *testing.T) {
	if testing.Short() {
		t.Skip("crash cycles take a while")
	}
	cycles := envInt(t, "STROM_CRASH_COMPACT_CYCLES", 8)
	const topic, keys = "latest", 40
	dir, addr := t.TempDir(), childbroker.FreeAddr(t)
	start := func() *childbroker.Proc {
		return childbroker.Start(t, childEnv, []string{addr}, "--data-dir", dir, "--kafka-addr", addr, "--advertised-addr", addr,
			"--http-addr", "-", "--log-level", "warn", "--set", "log.cleaner.backoff.ms=10")
	}
	b := start()
	adm, closeAdm := admin(t, addr)
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("4096"),
		"min.cleanable.dirty.ratio": kadm.StringPtr("0.01")}
	if _, err := adm.CreateTopic(context.Background(), 1, 1, cfg, topic); err != nil {
		t.Fatal(err)
	}
	closeAdm()

	var mu sync.Mutex
	acked := map[string]int{} // key -> newest acknowledged sequence
	ackedTotal := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.RequiredAcks(kgo.AllISRAcks()),
			kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }), kgo.RecordDeliveryTimeout(5*time.Second))
		if err != nil {
			t.Error(err)
			return
		}
		defer cl.Close()
		for seq := 0; ; seq++ {
			select {
			case <-stop:
				return
			default:
			}
			key := fmt.Sprint("k", seq%keys)
			r := &kgo.Record{Key: []byte(key), Value: []byte(fmt.Sprintf("%s-%d-%s", key, seq, strings.Repeat("x", 40)))}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := cl.ProduceSync(ctx, r).FirstErr()
			cancel()
			if err == nil {
				mu.Lock()
				acked[key] = seq // one producer, one partition: ack order is offset order
				ackedTotal++
				mu.Unlock()
			}
		}
	}()

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9))
	var read, total int
	for c := 0; c < cycles; c++ {
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond) // the kill lands at a random moment
		b.Kill(t)
		mu.Lock()
		snapshot := make(map[string]int, len(acked))
		for k, v := range acked {
			snapshot[k] = v
		}
		mu.Unlock()
		b = start()
		read, total = checkCompacted(t, addr, topic, snapshot)
	}
	close(stop)
	<-done
	b.Stop(t)
	mu.Lock()
	defer mu.Unlock()
	if read >= total {
		t.Fatalf("the log was never compacted: %d records read of %d offsets", read, total)
	}
	t.Logf("%d kills: %d updates acknowledged; last read: %d records left of %d offsets", cycles, ackedTotal, read, total)
}

func admin(t *testing.T, addr string) (*kadm.Client, func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	return kadm.NewClient(cl), cl.Close
}

// checkCompacted reads partition 0 of topic up to its end and checks it
// against the acknowledged updates; it returns the records read and the
// end offset.
func checkCompacted(t *testing.T, addr, topic string, acked map[string]int) (int, int) {
	t.Helper()
	adm, closeAdm := admin(t, addr)
	defer closeAdm()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var end int64
	for end == 0 {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err != nil && ctx.Err() != nil {
			t.Fatalf("end offsets after restart: %v", err)
		}
		if o, ok := ends.Lookup(topic, 0); ok && o.Err == nil {
			end = max(o.Offset, 1)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	last := map[string]int{}
	prev, n := int64(-1), 0
	for prev < end-1 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records up to %d of %d after restart: %v", n, prev, end, ctx.Err())
		}
		for _, fe := range fs.Errors() {
			t.Fatalf("fetch after restart: %v", fe.Err)
		}
		for _, r := range fs.Records() {
			if r.Offset <= prev {
				t.Fatalf("offset %d after %d", r.Offset, prev)
			}
			prev = r.Offset
			n++
			parts := strings.SplitN(string(r.Value), "-", 3)
			seq, err := strconv.Atoi(parts[1])
			if len(parts) != 3 || err != nil || parts[0] != string(r.Key) {
				t.Fatalf("offset %d holds %q=%q", r.Offset, r.Key, r.Value)
			}
			last[string(r.Key)] = seq
		}
	}
	for k, seq := range acked {
		if got, ok := last[k]; !ok || got < seq {
			t.Fatalf("key %s: last value has sequence %d (present %v), acknowledged %d", k, got, ok, seq)
		}
	}
	return n, int(end)
}
