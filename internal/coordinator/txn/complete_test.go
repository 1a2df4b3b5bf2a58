package txn

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// heldMarkers is a MarkerWritten that holds the completer back, after
// each local marker is durable and before the completion record, until
// released (or the test ends).
type heldMarkers struct {
	release chan struct{}
	mu      sync.Mutex
	told    []string
}

func newHeldMarkers(t *testing.T) *heldMarkers {
	h := &heldMarkers{release: make(chan struct{})}
	t.Cleanup(h.open)
	return h
}

func (h *heldMarkers) open() {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

func (h *heldMarkers) written(tp TopicPartition, _ int64, commit bool, _ int64) {
	<-h.release
	h.mu.Lock()
	defer h.mu.Unlock()
	kind := "A"
	if commit {
		kind = "C"
	}
	h.told = append(h.told, kind+":"+tp.Topic+"-"+string(rune('0'+tp.Partition)))
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
// is durable, while the completion is held back (after the marker); the id
// is PrepareCommit meanwhile, a retried end is answered at once, a write of
// the ended transaction's producer is not verified, a new transaction's
// add and an InitProducerId wait for the completion and, past
// CompletionWait, are ErrConcurrentTransactions; an add waiting when the
// completion comes goes through. Before, EndTxn waited for the markers and
// the completion.
func TestEndAnsweredOncePrepared(t *testing.T) {
	held := newHeldMarkers(t)
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.MarkerWritten = held.written
		cfg.CompletionWait = 100 * time.Millisecond
	})
	c := e.c
	pid, epoch, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddPartitions(ctx, "t", pid, epoch, []TopicPartition{tp0}); err != nil {
		t.Fatal(err)
	}
	if err := e.produce(0, pid, epoch, 0); err != nil {
		t.Fatal(err)
	}
	if err := answered(t, "EndTxn with the completion held back", func() error { return c.EndTxn(ctx, "t", pid, epoch, true) }); err != nil {
		t.Fatal(err)
	}
	if s := e.state("t"); s != PrepareCommit {
		t.Fatalf("state with the completion held back = %v, want PrepareCommit", s)
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
	// An add waiting when the completion comes goes through.
	c.cfg.CompletionWait = 10 * time.Second // read by settle only, and no request runs now
	added := make(chan error, 1)
	go func() {
		_, err := c.AddPartitions(ctx, "t", pid, epoch, []TopicPartition{tp1})
		added <- err
	}()
	held.open()
	select {
	case err := <-added:
		if err != nil {
			t.Fatalf("add after the completion: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting add was not answered once the completion was written")
	}
	d, _ := c.Describe("t")
	if d.State != Ongoing || len(d.Partitions) != 1 || d.Partitions[0] != tp1 {
		t.Fatalf("after the add: %+v", d)
	}
	if n, m := e.outcome(0); n != 1 || m != "C" {
		t.Fatalf("partition: %d records, markers %q", n, m)
	}
}

// TestEndBumpAnsweredOncePrepared: transactions v2 (KIP-890 part 2) with
// the end answered before its completion: the answer gives the bumped
// epoch, a zombie's late write at the old epoch is refused at once (the
// markers, at the new epoch, are written before the answer), a retry of
// the end gets the same answer, and the next transaction at the new epoch
// runs once the completion is done.
func TestEndBumpAnsweredOncePrepared(t *testing.T) {
	held := newHeldMarkers(t)
	e := newEnvWith(t, memfs.New(), func(cfg *Config) { cfg.MarkerWritten = held.written })
	c := e.c
	pid, e0, err := c.InitProducerID(ctx, "t", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := c.AddPartitionImplicit(ctx, "t", pid, e0, []TopicPartition{tp0, tp1}[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.produce(0, pid, e0, 0); err != nil {
		t.Fatal(err)
	}
	var pid1 int64
	var e1 int16
	if err := answered(t, "EndTxn v5 with the completion held back", func() (err error) {
		pid1, e1, err = c.EndTxnBump(ctx, "t", pid, e0, true)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if pid1 != pid || e1 != e0+1 {
		t.Fatalf("end answered %d/%d, want %d/%d", pid1, e1, pid, e0+1)
	}
	for i := range 2 {
		if err := e.produce(i, pid, e0, 1); err == nil {
			t.Fatalf("a late write at the old epoch to partition %d was accepted after the end was answered", i)
		}
	}
	if p, ep, err := c.EndTxnBump(ctx, "t", pid, e0, true); err != nil || p != pid || ep != e1 {
		t.Fatalf("retried end: %d/%d %v", p, ep, err)
	}
	held.open()
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
		t.Fatalf("partition 0: %d records, markers %q", n, m)
	}
	for i := range 2 {
		if p := e.parts[dataParts[i]]; p.LastStableOffset() != p.HighWatermark() {
			t.Fatalf("partition %d: LSO %d below HW %d", i, p.LastStableOffset(), p.HighWatermark())
		}
	}
}

// TestPowerCutAfterEndAnswered: the broker loses power after EndTxn was
// answered and before the completion record (the completer held back; the
// markers appended, durable or not): the restart finds PrepareCommit and
// writes the markers again, so the transaction is committed on both
// partitions and the last stable offset moves past it.
func TestPowerCutAfterEndAnswered(t *testing.T) {
	fs := memfs.New()
	held := newHeldMarkers(t)
	e := newEnvWith(t, fs, func(cfg *Config) { cfg.MarkerWritten = held.written })
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
	if err := answered(t, "EndTxn with the completion held back", func() error { return e.c.EndTxn(ctx, "t", pid, ep, true) }); err != nil {
		t.Fatal(err)
	}
	image := fs.Crash(memfs.CrashOptions{})
	held.open()
	e.close()
	r := newEnv(t, image)
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
