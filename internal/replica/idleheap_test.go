package replica

import (
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// idleHeapPerReplica starts groups raft groups of three replicas each on
// three in-memory "nodes" (a shared Ticker), waits until every replica is
// quiesced, and returns the heap the replicas hold, per replica: the heap
// in use with the replicas running minus the heap with only their
// partitions open, after a GC each time. logger is every replica's
// Config.Logger (a real handler: slog.With pre-formats per replica).
func idleHeapPerReplica(t testing.TB, groups int, logger *slog.Logger) float64 {
	t.Helper()
	type key struct{ group, id uint64 }
	var mu sync.Mutex
	reps := map[key]*Replica{}
	sender := func(group uint64) func([]*raftpb.Message) {
		return func(msgs []*raftpb.Message) {
			for _, m := range msgs {
				mu.Lock()
				r := reps[key{group, m.GetTo()}]
				mu.Unlock()
				if r != nil {
					r.Step(proto.CloneOf(m))
				}
			}
		}
	}
	fss := []*memfs.FS{memfs.New(), memfs.New(), memfs.New()}
	ids := []uint64{1, 2, 3}
	type member struct {
		g  uint64
		id uint64
		p  *partition.Partition
	}
	var members []member
	for g := 1; g <= groups; g++ {
		for i, id := range ids {
			l, err := seglog.Open(fss[i], fmt.Sprintf("/d/t-%d", g), seglog.Config{SegmentBytes: 4096, RetentionMs: -1}, seglog.State{})
			if err != nil {
				t.Fatal(err)
			}
			p, err := partition.Open("t", int32(g), l, partition.Options{FS: fss[i]})
			if err != nil {
				t.Fatal(err)
			}
			members = append(members, member{uint64(g), id, p})
		}
	}
	t.Cleanup(func() {
		for _, m := range members {
			m.p.Log().Close()
		}
	})
	before := heapInUse()

	tk := NewTicker(2 * time.Millisecond)
	defer tk.Stop()
	var started []*Replica
	defer func() {
		for _, r := range started {
			r.Stop()
		}
	}()
	for _, m := range members {
		r, err := Start(m.p, Config{Group: m.g, ID: m.id, Voters: ids, Preferred: 1, FS: fss[m.id-1],
			Send: sender(m.g), Ticker: tk, Logger: logger.With("node", m.id)})
		if err != nil {
			t.Fatal(err)
		}
		started = append(started, r)
		mu.Lock()
		reps[key{m.g, m.id}] = r
		mu.Unlock()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		quiet := tk.Awake() == 0
		for _, r := range started {
			if !r.Quiesced() || r.LeaderEpoch() < 0 && r.Leader() == 0 {
				quiet = false
				break
			}
		}
		if quiet {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replicas did not all quiesce within 60 s (awake: %d)", len(started), tk.Awake())
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := heapInUse()
	runtime.KeepAlive(started)
	return float64(after-before) / float64(len(started))
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// An idle (quiesced) replica holds little memory: 10,000 of them per
// broker must not need a GiB of heap that the garbage collector scans
// (issue 18). Measured over 1,000 replicas (334 groups of three).
func TestIdleReplicaHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 1,000 replicas")
	}
	logger := slog.New(slog.NewJSONHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	per := idleHeapPerReplica(t, 334, logger)
	t.Logf("heap per idle replica: %.0f bytes", per)
	const limit = 16 << 10
	if per > limit {
		t.Fatalf("an idle replica holds %.0f bytes of heap, want at most %d", per, limit)
	}
}

type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
