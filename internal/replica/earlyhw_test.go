package replica

import (
	"context"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
)

// syncGate holds the fsyncs of segment files, as errorfs's injector (it
// runs before each operation): after arm, the next such fsync signals
// entered and waits for release.
type syncGate struct {
	mu   sync.Mutex
	next *gate
}

type gate struct {
	entered, release chan struct{}
	once             sync.Once
	err              error // what the held fsync fails with, after release
}

// open lets the held fsync go on (once).
func (g *gate) open() { g.once.Do(func() { close(g.release) }) }

// arm holds the next segment fsync, which then fails with err (nil: it
// runs).
func (s *syncGate) arm(err error) *gate {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next = &gate{entered: make(chan struct{}), release: make(chan struct{}), err: err}
	return s.next
}

func (s *syncGate) hold(op errorfs.Op, name string) error {
	if op != errorfs.OpSync || !strings.HasSuffix(name, ".log") {
		return nil
	}
	s.mu.Lock()
	g := s.next
	s.next = nil
	s.mu.Unlock()
	if g == nil {
		return nil
	}
	close(g.entered)
	<-g.release
	return g.err
}

// await polls cond without ticking (group.waitFor ticks every replica,
// and followers whose leader is held in an fsync would start an election).
func await(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

func waitClosed(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// heldAppend is a leader (node 1 of 3) inside the Ready that commits
// batch B, which its followers have acknowledged, and appends batch C,
// whose fsync is held (second); doneC closes when C's Append returns
// (errC).
type heldAppend struct {
	l      *partition.Partition
	resA   partition.AppendResult // the warm-up batch, committed before B
	resB   partition.AppendResult
	second *gate
	doneC  chan struct{}
	errC   error
	endB   int64         // the leader's log end once B was appended
	doneB  chan struct{} // closes when proposeB returns (errB)
	errB   error
}

// holdNextAppend builds a heldAppend whose held fsync then fails with
// failC (nil: it runs); B is a batch of producer 7.
func holdNextAppend(t *testing.T, failC error) *heldAppend {
	h := holdNextAppendWith(t, failC, func(h *heldAppend, l *partition.Partition, _ *Replica) error {
		var err error
		h.resB, err = l.Append(batch(t, 7, 0, 1, "b"), partition.AppendRules{})
		return err
	}, true)
	if h.errB != nil {
		t.Fatal(h.errB)
	}
	return h
}

// holdNextAppendWith is holdNextAppend with B what proposeB proposes (on
// its own goroutine); with waitB the set-up waits for proposeB to return
// once B's fsync is let go, as for an Append (not for a call that waits
// for the commit).
func holdNextAppendWith(t *testing.T, failC error, proposeB func(h *heldAppend, l *partition.Partition, leader *Replica) error, waitB bool) *heldAppend {
	gates := &syncGate{}
	g := newGroupFS(t, 3, nil, false, func(id uint64, fs vfs.FS) vfs.FS {
		if id != 1 {
			return fs
		}
		return errorfs.Wrap(fs, errorfs.InjectorFunc(gates.hold))
	})
	var armed []*gate
	t.Cleanup(func() { // before the group's: a held fsync would block Stop
		for _, a := range armed {
			a.open()
		}
	})
	g.elect(1)
	leader, l := g.nodes[1].r, g.nodes[1].p
	a, c := batch(t, 6, 0, 1, "a"), batch(t, 8, 0, 1, "c")
	// Both followers acknowledge the leader's log end first: a follower
	// the leader still probes gets no append until it answers, and its
	// answer would be held below while the leader sits in an fsync.
	resA, err := l.Append(a, partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("both followers in sync", func() bool {
		return l.HighWatermark() > resA.LastOffset && l.InSyncReplicas() == 3
	})

	// The followers' acknowledgements are held back, so B is appended
	// everywhere but not committed.
	var held []*raftpb.Message // under g.net.mu
	g.net.mu.Lock()
	g.net.drop = func(m *raftpb.Message) bool {
		if m.GetTo() == 1 && m.GetType() == raftpb.MessageType_MsgAppResp {
			held = append(held, proto.CloneOf(m))
			return true
		}
		return false
	}
	g.net.mu.Unlock()
	t.Cleanup(func() {
		g.net.mu.Lock()
		g.net.drop = nil
		g.net.mu.Unlock()
	})

	// B's fsync on the leader is held too: its loop stays in that Ready
	// while the acknowledgements and C's proposal queue up.
	first := gates.arm(nil)
	armed = append(armed, first)
	h := &heldAppend{l: l, resA: resA, doneC: make(chan struct{}), doneB: make(chan struct{})}
	go func() {
		defer close(h.doneB)
		h.errB = proposeB(h, l, leader)
	}()
	waitClosed(t, first.entered, "B's fsync on the leader")
	end := l.EndOffset()
	h.endB = end
	for _, id := range []uint64{2, 3} {
		f := g.nodes[id]
		await(t, "B acknowledged by a follower", func() bool {
			if f.p.EndOffset() < end {
				return false
			}
			last, err := f.r.st.LastIndex()
			if err != nil {
				return false
			}
			g.net.mu.Lock()
			defer g.net.mu.Unlock()
			for _, m := range held {
				if m.GetFrom() == id && !m.GetReject() && m.GetIndex() >= last {
					return true
				}
			}
			return false
		})
	}
	h.second = gates.arm(failC)
	armed = append(armed, h.second)
	g.net.mu.Lock()
	for _, m := range held {
		leader.Step(m)
	}
	held = nil
	g.net.mu.Unlock()
	go func() {
		defer close(h.doneC)
		_, h.errC = l.Append(c, partition.AppendRules{})
	}()
	await(t, "C proposed", func() bool { return len(leader.propc) == 1 })

	first.open()
	if waitB {
		waitClosed(t, h.doneB, "B appended")
	}
	// The next Ready commits B and appends C; C's fsync is held.
	waitClosed(t, h.second.entered, "C's fsync on the leader")
	return h
}

// A leader's Ready that carries both a commit its followers' acknowledgements
// moved and new proposals moves the high watermark before it fsyncs the
// proposals: an acks=all producer waiting for the commit does not wait out
// the next batch's fsync too.
func TestHighWatermarkMovesBeforeTheNextAppendsFsync(t *testing.T) {
	h := holdNextAppend(t, nil)
	await(t, "the high watermark past B while C's fsync runs", func() bool {
		return h.l.HighWatermark() > h.resB.LastOffset
	})
	h.second.open()
	waitClosed(t, h.doneC, "C appended")
	if h.errC != nil {
		t.Fatal(h.errC)
	}
}

// The early move covers only what was durable before the Ready: when the
// Ready's own append fails (a full disk), the replica stops with the high
// watermark past B and short of C, and C's producer gets an error.
func TestEarlyHighWatermarkStopsShortOfAFailedAppend(t *testing.T) {
	h := holdNextAppend(t, syscall.ENOSPC)
	await(t, "the high watermark past B while C's fsync runs", func() bool {
		return h.l.HighWatermark() > h.resB.LastOffset
	})
	hw := h.l.HighWatermark()
	h.second.open()
	waitClosed(t, h.doneC, "C's append answered")
	if h.errC == nil {
		t.Fatal("C's append succeeded though its fsync failed")
	}
	if got := h.l.HighWatermark(); got != hw {
		t.Fatalf("high watermark %d after the failed append, %d before", got, hw)
	}
}

// The early move stops below a committed entry that does something when
// applied: DeleteRecords' start move (B here) is committed in the Ready
// that appends C, and applied only after C's fsync. Had the high
// watermark passed it before, MoveStart, which waits for its commit,
// would find the start unmoved and refuse (ErrStartBlocked: CI saw
// POLICY_VIOLATION from TestFollowerCatchesUpBySnapshot's DeleteRecords).
func TestEarlyHighWatermarkWaitsForAStartMove(t *testing.T) {
	h := holdNextAppendWith(t, nil, func(h *heldAppend, _ *partition.Partition, leader *Replica) error {
		_, err := leader.MoveStart(context.Background(), h.resA.BaseOffset)
		return err
	}, false)
	target := h.resA.BaseOffset // the warm-up batch's base: above the log start
	// C's fsync is held: the start move is committed, not yet applied.
	if hw, start := h.l.HighWatermark(), h.l.StartOffset(); hw >= h.endB && start < target {
		t.Fatalf("high watermark %d past the start move (log end %d after it) while the start is still %d", hw, h.endB, start)
	}
	select {
	case <-h.doneB:
		t.Fatalf("MoveStart returned before its entry was applied: %v", h.errB)
	default:
	}
	h.second.open()
	waitClosed(t, h.doneB, "MoveStart")
	if h.errB != nil {
		t.Fatalf("MoveStart: %v", h.errB)
	}
	if start := h.l.StartOffset(); start != target {
		t.Fatalf("log start %d, want %d", start, target)
	}
	waitClosed(t, h.doneC, "C appended")
}
