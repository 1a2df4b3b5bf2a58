package txn

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// heldSender holds back the markers of partitions other brokers lead
// until released (or its context ends).
type heldSender struct {
	release chan struct{}
	mu      sync.Mutex
	calls   []string
}

func newHeldSender() *heldSender { return &heldSender{release: make(chan struct{})} }

func (h *heldSender) WriteMarkers(ctx context.Context, _ int64, epoch int16, commit bool, _ int32, parts []TopicPartition) error {
	select {
	case <-h.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, tp := range parts {
		kind := "A"
		if commit {
			kind = "C"
		}
		h.calls = append(h.calls, kind+":"+tp.Topic)
	}
	return nil
}

func (h *heldSender) sent() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.calls...)
}

// answered runs f and fails the test unless it returns within 5 s.
func answered(t *testing.T, what string, f func() error) error {
	t.Helper()
	ch := make(chan error, 1)
	go func() { ch <- f() }()
	select {
	case err := <-ch:
		return err
	case <-time.After(5 * time.Second):
		t.Fatalf("%s not answered in 5 s", what)
		return nil
	}
}

// TestEndAnsweredOncePrepared: EndTxn is answered once the prepare record
// is durable, while a marker (of a partition another broker leads) is
// still held back; meanwhile the id is PrepareCommit, a new transaction's
// add and an InitProducerId wait for the completion and, past
// CompletionWait, are ErrConcurrentTransactions; once the marker is
// written the waiting add goes through. Before, EndTxn waited for every
// marker.
func TestEndAnsweredOncePrepared(t *testing.T) {
	sender := newHeldSender()
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.Exists = func(topic string, index int32) bool { return (topic == "d" || topic == "r") && index < 2 }
		cfg.Markers = sender
		cfg.CompletionWait = 100 * time.Millisecond
	})
	c := e.c
	pid, epoch, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPartitions(ctx, "t", pid, epoch, []TopicPartition{tp0, {"r", 0}}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, epoch, 0); err != nil {
		t.Fatal(err)
	}
	if err := answered(t, "EndTxn with a marker held back", func() error { return c.EndTxn(ctx, "t", pid, epoch, true) }); err != nil {
		t.Fatal(err)
	}
	if s := e.state("t"); s != PrepareCommit {
		t.Fatalf("state with a marker held back = %v, want PrepareCommit", s)
	}
	// A retried end is answered at once: the outcome is decided.
	if err := answered(t, "a retried EndTxn", func() error { return c.EndTxn(ctx, "t", pid, epoch, true) }); err != nil {
		t.Fatalf("retried commit: %v", err)
	}
	if err := c.Verify(pid, epoch, "d", 0); !errors.Is(err, ErrNotInTxn) {
		t.Fatalf("verify while completing: %v, want ErrNotInTxn", err)
	}
	start := time.Now()
	if _, err := c.AddPartitions(ctx, "t", pid, epoch, []TopicPartition{tp1}); !errors.Is(err, ErrConcurrentTransactions) {
		t.Fatalf("a new transaction's add while completing: %v, want ErrConcurrentTransactions", err)
	}
	if waited := time.Since(start); waited < 100*time.Millisecond {
		t.Fatalf("the add was refused after %v, before CompletionWait", waited)
	}
	if _, _, err := c.InitProducerID(ctx, "t", time.Minute, pid, epoch); !errors.Is(err, ErrConcurrentTransactions) {
		t.Fatalf("InitProducerId while completing: %v, want ErrConcurrentTransactions", err)
	}
	// An add waiting when the marker lands goes through.
	c.cfg.CompletionWait = 10 * time.Second // read by settle only, and no request runs now
	added := make(chan error, 1)
	go func() {
		_, err := c.AddPartitions(ctx, "t", pid, epoch, []TopicPartition{tp1})
		added <- err
	}()
	close(sender.release)
	select {
	case err := <-added:
		if err != nil {
			t.Fatalf("add after the marker: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting add was not answered once the marker was written")
	}
	d, _ := c.Describe("t")
	if d.State != Ongoing || len(d.Partitions) != 1 || d.Partitions[0] != tp1 {
		t.Fatalf("after the add: %+v", d)
	}
	if got := sender.sent(); len(got) != 1 || got[0] != "C:r" {
		t.Fatalf("sent %v, want one commit marker to r", got)
	}
	if n, m := e.outcome(0); n != 1 || m != "C" {
		t.Fatalf("local partition: %d records, markers %q", n, m)
	}
}

// TestEndBumpAnsweredOncePrepared: transactions v2 (KIP-890 part 2) with
// the end answered before its markers are all written: the answer gives
// the bumped epoch, a zombie's late write at the old epoch is refused by a
// local partition at once (its marker, at the new epoch, is appended
// before the answer), and the next transaction at the new epoch runs once
// the completion is done.
func TestEndBumpAnsweredOncePrepared(t *testing.T) {
	sender := newHeldSender()
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.Exists = func(topic string, index int32) bool { return (topic == "d" || topic == "r") && index < 2 }
		cfg.Markers = sender
	})
	c := e.c
	pid, e0, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitionImplicit(ctx, "t", pid, e0, tp0); err != nil {
		t.Fatal(err)
	}
	if err := c.AddPartitionImplicit(ctx, "t", pid, e0, TopicPartition{"r", 0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, e0, 0); err != nil {
		t.Fatal(err)
	}
	var pid1 int64
	var e1 int16
	if err := answered(t, "EndTxn v5 with a marker held back", func() (err error) {
		pid1, e1, err = c.EndTxnBump(ctx, "t", pid, e0, true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid || e1 != e0+1 {
		t.Fatalf("end answered %d/%d, want %d/%d", pid1, e1, pid, e0+1)
	}
	if err := e.produce(0, pid, e0, 1); err == nil {
		t.Fatal("a late write at the old epoch was accepted after the end was answered")
	}
	// The retry of that end gets the same answer, completing or not.
	if p, ep, err := c.EndTxnBump(ctx, "t", pid, e0, true); err != nil || p != pid || ep != e1 {
		t.Fatalf("retried end: %d/%d %v", p, ep, err)
	}
	close(sender.release)
	if err := c.AddPartitionImplicit(ctx, "t", pid, e1, tp0); err != nil {
		t.Fatalf("next transaction's add: %v", err)
	}
	if err := e.produce(0, pid, e1, 0); err != nil {
		t.Fatalf("next transaction's write: %v", err)
	}
	if _, e2, err := c.EndTxnBump(ctx, "t", pid, e1, false); err != nil || e2 != e1+1 {
		t.Fatalf("second end: %d %v", e2, err)
	}
	e.completed("t")
	if n, m := e.outcome(0); n != 2 || m != "CA" {
		t.Fatalf("partition: %d records, markers %q", n, m)
	}
	if p := e.parts["d-0"]; p.LastStableOffset() != p.HighWatermark() {
		t.Fatalf("LSO %d below HW %d", p.LastStableOffset(), p.HighWatermark())
	}
}

// TestPowerCutAfterEndAnswered: the broker loses power after EndTxn was
// answered and before the markers were written (one partition's marker
// held back, the other's not yet fsynced): the restart finds
// PrepareCommit and writes the markers, so the transaction is committed
// on both partitions and the last stable offset moves past it.
func TestPowerCutAfterEndAnswered(t *testing.T) {
	fs := memfs.New()
	sender := newHeldSender()
	e := newEnvWith(t, fs, func(cfg *Config) {
		local := cfg.Partition
		cfg.Partition = func(topic string, index int32) (*partition.Partition, bool) {
			if topic == "d" && index == 1 {
				return nil, false // led by "another broker" until the restart
			}
			return local(topic, index)
		}
		cfg.Exists = func(topic string, index int32) bool { return topic == "d" && index < 2 }
		cfg.Markers = sender
	})
	pid, ep, err := e.c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.c.AddPartitions(ctx, "t", pid, ep, []TopicPartition{tp0, tp1}); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := e.produce(i, pid, ep, 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := answered(t, "EndTxn with a marker held back", func() error { return e.c.EndTxn(ctx, "t", pid, ep, true) }); err != nil {
		t.Fatal(err)
	}
	image := fs.Crash(memfs.CrashOptions{})
	e.close()
	r := newEnv(t, image) // both partitions local now
	for i := range 2 {
		n, m := r.outcome(i)
		if n != 1 || m == "" || strings.Trim(m, "C") != "" {
			t.Fatalf("partition %d after the restart: %d records, markers %q", i, n, m)
		}
		if p := r.parts[dataParts[i]]; p.LastStableOffset() != p.HighWatermark() {
			t.Fatalf("partition %d: LSO %d stuck below HW %d", i, p.LastStableOffset(), p.HighWatermark())
		}
	}
	if d, _ := r.c.Describe("t"); d.State != CompleteCommit {
		t.Fatalf("after the restart: %+v", d)
	}
}
