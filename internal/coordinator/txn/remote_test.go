package txn

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// fakeSender records the markers handed to other brokers and fails while
// down is set.
type fakeSender struct {
	mu    sync.Mutex
	down  bool
	calls []string
}

func (f *fakeSender) WriteMarkers(_ context.Context, pid int64, epoch int16, commit bool, _ int32, parts []TopicPartition) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("broker unreachable")
	}
	for _, tp := range parts {
		kind := "A"
		if commit {
			kind = "C"
		}
		f.calls = append(f.calls, kind+":"+tp.Topic)
	}
	return nil
}

func (f *fakeSender) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	f.mu.Unlock()
}

func (f *fakeSender) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// A partition led by another broker (topic "r" here) joins a transaction
// and gets its marker through the MarkerSender; the transaction completes
// only once the sender acknowledged it, and a failed send is retried.
func TestRemoteMarkers(t *testing.T) {
	ctx := context.Background()
	sender := &fakeSender{down: true}
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.Exists = func(topic string, index int32) bool { return (topic == "d" || topic == "r") && index < 2 }
		cfg.Markers = sender
	})
	pid, epoch, err := e.c.InitProducerID(ctx, "t1", time.Minute, -1, -1)
	if err != nil {
		t.Fatal(err)
	}
	errs, err := e.c.AddPartitions(ctx, "t1", pid, epoch, []TopicPartition{tp0, {"r", 0}})
	if err != nil || errs[0] != nil || errs[1] != nil {
		t.Fatalf("add: %v %v", errs, err)
	}
	if err := e.produce(0, pid, epoch, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.c.EndTxn(ctx, "t1", pid, epoch, true); err != nil {
		t.Fatal(err)
	}
	e.completed("t1") // failed: the other broker is down
	if s := e.state("t1"); s != PrepareCommit {
		t.Fatalf("state with the other broker down = %v, want PrepareCommit", s)
	}
	sender.setDown(false)
	e.c.CheckTimeouts()
	if s := e.state("t1"); s != CompleteCommit {
		t.Fatalf("state after the retry = %v, want CompleteCommit", s)
	}
	if got := sender.sent(); len(got) != 1 || got[0] != "C:r" {
		t.Fatalf("sent %v, want one commit marker to r", got)
	}
	// The retry writes the local marker again (harmless: a second marker
	// ends nothing).
	if recs, markers := e.outcome(0); recs != 1 || strings.Trim(markers, "C") != "" || markers == "" {
		t.Fatalf("local partition: %d records, markers %q", recs, markers)
	}
}

// A broker that is not the coordinator refuses the coordinator's requests
// with ErrNotCoordinator (clients look the coordinator up again).
func TestNotCoordinator(t *testing.T) {
	ctx := context.Background()
	e := newEnvWith(t, memfs.New(), func(cfg *Config) {
		cfg.Coordinates = func() error { return ErrNotCoordinator }
	})
	if _, _, err := e.c.InitProducerID(ctx, "t1", time.Minute, -1, -1); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("InitProducerID: %v, want ErrNotCoordinator", err)
	}
	if err := e.c.EndTxn(ctx, "t1", 1, 0, true); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("EndTxn: %v, want ErrNotCoordinator", err)
	}
	if errs := e.c.VerifyPartitions("t1", 1, 0, []TopicPartition{tp0}); !errors.Is(errs[0], ErrNotCoordinator) {
		t.Fatalf("VerifyPartitions: %v, want ErrNotCoordinator", errs)
	}
	// EndTxn v5 (transactions v2) too: on main it answered
	// ErrUnknownTxnID (INVALID_PRODUCER_ID_MAPPING, fatal to a v2 client)
	// at a broker that had dropped the log (its leadership lost a moment).
	if _, _, err := e.c.EndTxnBump(ctx, "t1", 1, 0, true); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("EndTxnBump: %v, want ErrNotCoordinator", err)
	}
	if err := e.c.AddPartitionImplicit(ctx, "t1", 1, 0, tp0); !errors.Is(err, ErrNotCoordinator) {
		t.Fatalf("AddPartitionImplicit: %v, want ErrNotCoordinator", err)
	}
}

// state is id's current state.
func (e *env) state(id string) State {
	e.c.mu.Lock()
	defer e.c.mu.Unlock()
	return e.c.txns[id].cur.State
}
