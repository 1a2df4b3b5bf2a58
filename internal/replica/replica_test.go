package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// memNet delivers a copy of each message (as a wire would) unless the
// link is cut.
type memNet struct {
	mu   sync.Mutex
	reps map[uint64]*Replica
	cut  map[[2]uint64]bool
	// drop, when set, drops the messages it returns true for.
	drop func(m *raftpb.Message) bool
	sent int
	// stream: replicas stream large snapshot regions
	// (Config.SendSnapshot) through snapshotSender (snapstream_test.go).
	stream  bool
	streams streamStats
}

func (n *memNet) sender(from uint64) func([]*raftpb.Message) {
	return func(msgs []*raftpb.Message) {
		n.mu.Lock()
		defer n.mu.Unlock()
		for _, m := range msgs {
			n.sent++
			if n.cut[[2]uint64{from, m.GetTo()}] || n.drop != nil && n.drop(m) {
				continue
			}
			if r := n.reps[m.GetTo()]; r != nil {
				r.Step(proto.CloneOf(m))
			}
		}
	}
}

func (n *memNet) isolate(id uint64, ids []uint64) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, o := range ids {
		if o != id {
			n.cut[[2]uint64{id, o}], n.cut[[2]uint64{o, id}] = true, true
		}
	}
}

func (n *memNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]uint64]bool{}
}

type node struct {
	id   uint64
	fs   *memfs.FS
	p    *partition.Partition
	r    *Replica
	tick chan time.Time
}

type group struct {
	t      *testing.T
	modify func(*Config)
	// wrapFS, when set, is the file system a node's replica and log use,
	// around its memfs (earlyhw_test.go gates fsyncs with it).
	wrapFS func(id uint64, fs vfs.FS) vfs.FS
	net    *memNet
	nodes  map[uint64]*node
	ids    []uint64
}

func newGroup(t *testing.T, n int) *group { return newGroupWith(t, n, nil) }

func newGroupWith(t *testing.T, n int, modify func(*Config)) *group {
	return newGroupOn(t, n, modify, false)
}

// newGroupOn is newGroupWith whose replicas stream large snapshot regions
// when stream is set.
func newGroupOn(t *testing.T, n int, modify func(*Config), stream bool) *group {
	return newGroupFS(t, n, modify, stream, nil)
}

// newGroupFS is newGroupOn whose nodes use the file systems wrapFS
// returns (group.wrapFS).
func newGroupFS(t *testing.T, n int, modify func(*Config), stream bool, wrapFS func(uint64, vfs.FS) vfs.FS) *group {
	net := &memNet{reps: map[uint64]*Replica{}, cut: map[[2]uint64]bool{}, stream: stream}
	net.streams.started, net.streams.finished, net.streams.failed = map[uint64]int{}, map[uint64]int{}, map[uint64]int{}
	g := &group{t: t, modify: modify, net: net, nodes: map[uint64]*node{}, wrapFS: wrapFS}
	for i := 1; i <= n; i++ {
		g.ids = append(g.ids, uint64(i))
	}
	for _, id := range g.ids {
		nd := &node{id: id, fs: memfs.New()}
		g.nodes[id] = nd
		g.start(nd)
	}
	t.Cleanup(func() {
		for _, nd := range g.nodes {
			if nd.r != nil {
				nd.r.Stop()
				nd.p.Log().Close()
			}
		}
		g.net.streams.wg.Wait()
	})
	return g
}

func (g *group) start(nd *node) {
	var fs vfs.FS = nd.fs
	if g.wrapFS != nil {
		fs = g.wrapFS(nd.id, fs)
	}
	l, err := seglog.Open(fs, "/d/t-0", seglog.Config{SegmentBytes: 4096, RetentionMs: -1}, seglog.State{})
	if err != nil {
		g.t.Fatal(err)
	}
	p, err := partition.Open("t", 0, l, partition.Options{FS: fs})
	if err != nil {
		g.t.Fatal(err)
	}
	nd.tick = make(chan time.Time, 1)
	cfg := Config{Group: 1, ID: nd.id, Voters: g.ids, FS: fs, Send: g.net.sender(nd.id), Tick: nd.tick, Logger: quiet}
	if g.net.stream {
		cfg.SendSnapshot = g.net.snapshotSender(nd.id)
	}
	if g.modify != nil {
		g.modify(&cfg)
	}
	r, err := Start(p, cfg)
	if err != nil {
		g.t.Fatal(err)
	}
	nd.p, nd.r = p, r
	g.net.mu.Lock()
	g.net.reps[nd.id] = r
	g.net.mu.Unlock()
}

func (g *group) tickAll() {
	for _, nd := range g.nodes {
		select {
		case nd.tick <- time.Now():
		default:
		}
	}
}

// waitFor ticks every node until cond holds, failing after a deadline.
func (g *group) waitFor(what string, cond func() bool) {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			g.t.Fatalf("timed out waiting for %s", what)
		}
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
}

// pendingHandOver cuts to off and has from hand leadership over to it,
// and returns once from's KnownLeader names to: the hand-over stays
// pending as long as nothing ticks (raft gives it up after an election
// timeout).
func (g *group) pendingHandOver(from, to uint64) {
	g.t.Helper()
	g.net.isolate(to, g.ids)
	g.nodes[from].r.TransferLeadership(to)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if l, _ := g.nodes[from].r.KnownLeader(); l == to {
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the hand-over to %d never showed in KnownLeader", to)
		}
		time.Sleep(time.Millisecond) // polled, not ticked
	}
}

// elect makes id the leader with a confirmed epoch.
func (g *group) elect(id uint64) {
	g.t.Helper()
	nd := g.nodes[id]
	g.waitFor("a leader", func() bool {
		if nd.p.LeaderEpoch() >= 0 {
			return true
		}
		for _, o := range g.nodes {
			if o.id != id && o.p.LeaderEpoch() >= 0 {
				// A live leader holds its lease (CheckQuorum): it
				// hands over.
				o.r.TransferLeadership(id)
				return false
			}
		}
		nd.r.Campaign()
		return false
	})
}

func batch(t *testing.T, pid int64, seq int32, n int, val string) []byte {
	t.Helper()
	recs := make([]record.Record, n)
	for i := range recs {
		recs[i] = record.Record{OffsetDelta: int32(i), Value: []byte(val)}
	}
	b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: pid, ProducerEpoch: 0, BaseSequence: seq}, recs)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// serve is what a replica's log holds below its high watermark, data
// batches only, with offsets.
func serve(t *testing.T, p *partition.Partition, upTo int64) []byte {
	t.Helper()
	var out []byte
	for off := p.StartOffset(); off < upTo; {
		res, err := p.Log().Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Data) == 0 {
			break
		}
		for b := res.Data; len(b) > 0; {
			h, err := record.ReadBatchHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			if h.BaseOffset >= upTo {
				return out
			}
			out = append(out, b[:h.Size()]...)
			off = h.LastOffset() + 1
			b = b[h.Size():]
		}
	}
	return out
}

func TestElectAppendCommit(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	var last int64
	for i := range 20 {
		res, err := l.Append(batch(t, 7, int32(i*2), 2, "a"), partition.AppendRules{})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if res.LeaderEpoch != l.LeaderEpoch() {
			t.Fatalf("appended in epoch %d, leader epoch %d", res.LeaderEpoch, l.LeaderEpoch())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		done := make(chan error, 1)
		go func() { done <- l.WaitCommitted(ctx, res.LastOffset, res.LeaderEpoch) }()
		var err2 error
		g.waitFor("commit", func() bool {
			select {
			case err2 = <-done:
				return true
			default:
				return false
			}
		})
		cancel()
		if err2 != nil {
			t.Fatalf("commit %d: %v", i, err2)
		}
		if l.HighWatermark() <= res.LastOffset {
			t.Fatalf("committed but hw %d <= %d", l.HighWatermark(), res.LastOffset)
		}
		last = res.LastOffset
	}
	// A retry of the last batch is answered with its offsets.
	dup, err := l.Append(batch(t, 7, 38, 2, "a"), partition.AppendRules{})
	if err != nil || !dup.Duplicate || dup.LastOffset != last {
		t.Fatalf("retry: %+v %v", dup, err)
	}
	// Followers take no writes.
	if _, err := g.nodes[2].p.Append(batch(t, 9, 0, 1, "b"), partition.AppendRules{}); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("append on a follower: %v", err)
	}
	// Every replica holds the same batches at the same offsets.
	g.waitFor("followers' high watermarks", func() bool {
		return g.nodes[2].p.HighWatermark() > last && g.nodes[3].p.HighWatermark() > last
	})
	want := serve(t, l, last+1)
	for _, id := range []uint64{2, 3} {
		if got := serve(t, g.nodes[id].p, last+1); !bytes.Equal(got, want) {
			t.Fatalf("replica %d differs from the leader (%d vs %d bytes)", id, len(got), len(want))
		}
	}
	if st := g.nodes[1].r.Status(); len(st.ISR) != 3 || g.nodes[1].p.InSyncReplicas() != 3 {
		t.Fatalf("ISR %v, in sync %d", st.ISR, g.nodes[1].p.InSyncReplicas())
	}
}

func TestHighWatermarkStopsAtCommit(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	first, err := l.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("commit", func() bool { return l.HighWatermark() > first.LastOffset })
	hw := l.HighWatermark()
	g.net.isolate(1, g.ids)
	// acks=1: appended on the leader only, never committed.
	res, err := l.Append(batch(t, 7, 1, 1, "b"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() <= res.LastOffset {
		t.Fatalf("end %d", l.EndOffset())
	}
	for range 50 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	if l.HighWatermark() != hw {
		t.Fatalf("hw moved to %d without a majority (was %d)", l.HighWatermark(), hw)
	}
	rr, err := l.Read(hw, 1<<20, true)
	if err != nil || len(rr.Data) != 0 {
		t.Fatalf("read at the high watermark returned %d bytes, %v", len(rr.Data), err)
	}
	rr, err = l.Read(first.BaseOffset, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	if h, err := record.ReadBatchHeader(rr.Data); err != nil || h.BaseOffset+int64(h.NumRecords) > hw || h.Size() != len(rr.Data) {
		t.Fatalf("read past the high watermark: %d bytes", len(rr.Data))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := l.WaitCommitted(ctx, res.LastOffset, res.LeaderEpoch); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an uncommitted batch: %v", err)
	}
}

func TestLeaderChangeCutsTailAndRebuildsProducers(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	old := g.nodes[1].p
	a, err := old.Append(batch(t, 7, 0, 3, "a"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("commit everywhere", func() bool {
		for _, nd := range g.nodes {
			if nd.p.HighWatermark() <= a.LastOffset {
				return false
			}
		}
		return true
	})
	// The leader is cut off and takes a batch it cannot commit.
	g.net.isolate(1, g.ids)
	x, err := old.Append(batch(t, 7, 3, 2, "x"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	// The others elect 2, which takes other batches.
	g.elect(2)
	nl := g.nodes[2].p
	var y partition.AppendResult
	for i := range 3 {
		if y, err = nl.Append(batch(t, 8, int32(i), 1, "y"), partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	g.waitFor("commit on the new leader", func() bool { return nl.HighWatermark() > y.LastOffset })
	g.net.heal()
	g.waitFor("the old leader to follow and catch up", func() bool {
		return old.HighWatermark() > y.LastOffset && old.LeaderEpoch() < 0
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := old.WaitCommitted(ctx, x.LastOffset, x.LeaderEpoch); !errors.Is(err, partition.ErrTruncated) {
		t.Fatalf("the cut batch's acks=all wait: %v", err)
	}
	want := serve(t, nl, y.LastOffset+1)
	for _, id := range []uint64{1, 3} {
		if got := serve(t, g.nodes[id].p, y.LastOffset+1); !bytes.Equal(got, want) {
			t.Fatalf("replica %d differs from the leader after the cut", id)
		}
	}
	if bytes.Contains(serve(t, old, old.EndOffset()), []byte("x")) {
		t.Fatal("the cut batch is still in the old leader's log")
	}
	// The old leader leads again: the producer state it rebuilt after
	// the cut does not know the cut batch, so its retry is written, not
	// answered with offsets that now hold other records.
	g.elect(1)
	r, err := old.Append(batch(t, 7, 3, 2, "x"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Duplicate || r.BaseOffset <= y.LastOffset {
		t.Fatalf("retry of the cut batch answered %+v", r)
	}
}

// restart stops a node's replica and log and opens them again from its
// files (a clean restart).
func (g *group) restart(id uint64) {
	g.t.Helper()
	nd := g.nodes[id]
	g.net.mu.Lock()
	delete(g.net.reps, id)
	g.net.mu.Unlock()
	nd.r.Stop()
	if err := nd.p.Log().Close(); err != nil {
		g.t.Fatal(err)
	}
	g.start(nd)
}

// Retention must not move a replica's log start behind raft's back: the
// next open would find the start past raft's anchor (ErrStartMoved).
func TestRetentionOffAndRestart(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	var last partition.AppendResult
	var err error
	for i := range 100 {
		if last, err = l.Append(batch(t, 7, int32(i*4), 4, strings.Repeat("r", 100)), partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	g.waitFor("commit everywhere", func() bool {
		for _, nd := range g.nodes {
			if nd.p.HighWatermark() <= last.LastOffset {
				return false
			}
		}
		return true
	})
	f := g.nodes[3].p
	if f.NumSegments() < 3 {
		t.Fatalf("%d segments", f.NumSegments())
	}
	f.SetConfig(partition.Config{SegmentBytes: 4096, RetentionMs: time.Millisecond})
	if _, err := f.Log().ApplyRetention(time.Now().Add(365 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if f.StartOffset() != 0 {
		t.Fatalf("retention moved a replica's start to %d", f.StartOffset())
	}
	if _, err := f.DeleteRecords(10); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("DeleteRecords on a follower: %v", err)
	}
	g.restart(3)
	g.restart(2)
	res, err := l.Append(batch(t, 7, 400, 1, "after"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	g.waitFor("the restarted followers to catch up", func() bool {
		return g.nodes[2].p.HighWatermark() > res.LastOffset && g.nodes[3].p.HighWatermark() > res.LastOffset
	})
	want := serve(t, l, res.LastOffset+1)
	for _, id := range []uint64{2, 3} {
		if !bytes.Equal(serve(t, g.nodes[id].p, res.LastOffset+1), want) {
			t.Fatalf("restarted replica %d differs", id)
		}
	}
}

// A follower cut off for longer than LagTime leaves the ISR and comes
// back once it catches up.
func TestISRFollowsLag(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	g := newGroupWith(t, 3, func(c *Config) { c.Now, c.LagTime = clock, 30*time.Second })
	g.elect(1)
	l := g.nodes[1].p
	g.waitFor("a full ISR", func() bool { return l.InSyncReplicas() == 3 })
	g.net.isolate(3, g.ids)
	for i := range 5 {
		if _, err := l.Append(batch(t, 7, int32(i), 1, "a"), partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
		advance(10 * time.Second)
		g.tickAll()
	}
	// Ticks are handled by each replica's goroutine, later than tickAll
	// returns: under load the leader may take its last note of the
	// follower only after the clock moved. The clock keeps moving while
	// we wait, so the follower (cut off, never catching up again) must
	// leave once LagTime has passed since that note.
	g.waitFor("the cut-off follower out of the ISR", func() bool { advance(time.Second); return l.InSyncReplicas() == 2 })
	if isr := g.nodes[1].r.Status().ISR; !slices.Equal(isr, []uint64{1, 2}) {
		t.Fatalf("ISR %v", isr)
	}
	g.net.heal()
	g.waitFor("the follower back in the ISR", func() bool { return l.InSyncReplicas() == 3 })

	// A new leader does not count a replica it never heard from: 3 is
	// cut off again and leadership moves to 2.
	g.net.isolate(3, g.ids)
	g.elect(2)
	for range 20 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	if isr := g.nodes[2].r.Status().ISR; !slices.Equal(isr, []uint64{1, 2}) {
		t.Fatalf("the new leader's ISR %v includes a replica it never heard from", isr)
	}
}

// Producers append concurrently (their batches share the leader's
// fsyncs); each producer's batches keep their order and none is refused.
func TestConcurrentProducers(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	const producers, batches = 8, 40
	var wg sync.WaitGroup
	errs := make(chan error, producers)
	lasts := make([]int64, producers)
	for pid := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := int64(-1)
			for i := range batches {
				res, err := l.Append(batch(t, int64(100+pid), int32(i*2), 2, "c"), partition.AppendRules{})
				if err != nil {
					errs <- err
					return
				}
				if res.BaseOffset <= prev {
					errs <- fmt.Errorf("producer %d: batch %d at %d after %d", pid, i, res.BaseOffset, prev)
					return
				}
				prev = res.LastOffset
			}
			lasts[pid] = prev
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	end := slices.Max(lasts)
	g.waitFor("commit everywhere", func() bool {
		for _, nd := range g.nodes {
			if nd.p.HighWatermark() <= end {
				return false
			}
		}
		return true
	})
	want := serve(t, l, end+1)
	for _, id := range []uint64{2, 3} {
		if !bytes.Equal(serve(t, g.nodes[id].p, end+1), want) {
			t.Fatalf("replica %d differs", id)
		}
	}
}

// A leader that is not the preferred replica hands over to it once it is
// caught up, no sooner than balanceDelayTicks after taking over.
func TestPreferredLeaderTakesOver(t *testing.T) {
	g := newGroupWith(t, 3, func(c *Config) { c.Preferred = 3 })
	g.elect(1)
	l := g.nodes[1].p
	if _, err := l.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	for range balanceDelayTicks / 2 {
		g.tickAll()
		time.Sleep(time.Millisecond)
	}
	if g.nodes[1].p.LeaderEpoch() < 0 {
		t.Fatal("leadership moved before the delay")
	}
	g.waitFor("the preferred replica to lead", func() bool { return g.nodes[3].p.LeaderEpoch() >= 0 })
	if _, err := g.nodes[3].p.Append(batch(t, 7, 1, 1, "b"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
}

// An acks=all wait ends when the replica stops (the broker shuts down)
// rather than at its deadline.
func TestWaitCommittedEndsAtStop(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	l := g.nodes[1].p
	g.net.isolate(1, g.ids)
	res, err := l.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.WaitCommitted(context.Background(), res.LastOffset, res.LeaderEpoch) }()
	g.nodes[1].r.Stop()
	select {
	case err := <-done:
		if !errors.Is(err, partition.ErrNotLeader) {
			t.Fatalf("wait after stop: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the acks=all wait outlived the replica")
	}
}

// A LogAppendTime topic: the leader stamps the batch once, so every
// replica stores the same bytes (each log stamping its own clock made the
// copies differ).
func TestLogAppendTimeSameOnEveryReplica(t *testing.T) {
	g := newGroup(t, 3)
	for _, nd := range g.nodes {
		// Each replica's clock is different.
		nd.p.SetConfig(partition.Config{SegmentBytes: 4096, RetentionMs: -1, LogAppendTime: true,
			Now: func() time.Time { return time.UnixMilli(int64(1e12) + int64(nd.id)*1000) }})
	}
	g.elect(1)
	l := g.nodes[1].p
	res, err := l.Append(batch(t, 7, 0, 2, "t"), partition.AppendRules{})
	if err != nil {
		t.Fatal(err)
	}
	if res.LogAppendTime == record.NoTimestamp {
		t.Fatal("no log append time in the result")
	}
	g.waitFor("commit everywhere", func() bool {
		for _, nd := range g.nodes {
			if nd.p.HighWatermark() <= res.LastOffset {
				return false
			}
		}
		return true
	})
	want := serve(t, l, res.LastOffset+1)
	for _, id := range []uint64{2, 3} {
		if got := serve(t, g.nodes[id].p, res.LastOffset+1); !bytes.Equal(got, want) {
			t.Fatalf("replica %d stores other bytes than the leader", id)
		}
	}
}

// firstLeader ticks every node until one leads with a confirmed epoch,
// and returns it.
func (g *group) firstLeader() uint64 {
	g.t.Helper()
	var leader uint64
	g.waitFor("a leader", func() bool {
		for _, nd := range g.nodes {
			if nd.p.LeaderEpoch() >= 0 {
				leader = nd.id
				return true
			}
		}
		return false
	})
	return leader
}

// A new group's first leader is its preferred replica (as Kafka's
// controller makes the first replica a new partition's leader), not
// whichever replica's election timeout ran out first: a later hand-over
// would cost every client a metadata refresh.
func TestNewGroupElectsItsPreferredReplica(t *testing.T) {
	for _, pref := range []uint64{2, 3, 2, 3} {
		g := newGroupWith(t, 3, func(c *Config) { c.Preferred = pref })
		if leader := g.firstLeader(); leader != pref {
			t.Fatalf("first leader %d, preferred replica %d", leader, pref)
		}
	}
}

// A preferred replica that starts the group late (its node applied the
// topic after the others, here: cut off for its first ticks) still leads
// first: the other new replicas hold their election timers meanwhile.
func TestNewGroupWaitsForALatePreferredReplica(t *testing.T) {
	g := newGroupWith(t, 3, func(c *Config) { c.Preferred = 3 })
	g.net.isolate(3, g.ids)
	g.tickN(15, 1, 2, 3) // past both others' least election timeout (10 ticks)
	for _, id := range []uint64{1, 2} {
		if g.nodes[id].p.LeaderEpoch() >= 0 {
			t.Fatalf("node %d led while the preferred replica was not there yet", id)
		}
	}
	g.net.heal()
	if leader := g.firstLeader(); leader != 3 {
		t.Fatalf("first leader %d, preferred replica 3", leader)
	}
}

// A new leader counts the voters that acknowledged its log end in the
// ISR from the moment its epoch is confirmed, with no tick in between:
// counted at the next tick instead, acks=all writes were refused with
// NOT_ENOUGH_REPLICAS for up to a tick after every election, and
// franz-go, which refreshes its metadata on that error at most every
// 5 s, stalled for seconds.
func TestNewLeaderCountsItsFollowersInSyncAtOnce(t *testing.T) {
	// No node is ticked: node 1 campaigns until raft makes it leader.
	g := newGroup(t, 3)
	l := g.nodes[1].p
	deadline := time.Now().Add(20 * time.Second)
	for g.nodes[1].r.Leader() != 1 {
		if time.Now().After(deadline) {
			t.Fatal("node 1 did not win an election")
		}
		g.nodes[1].r.Campaign()
		time.Sleep(time.Millisecond) // polled, not ticked
	}
	for l.LeaderEpoch() < 0 {
		if time.Now().After(deadline) {
			t.Fatal("node 1 did not lead")
		}
		time.Sleep(time.Millisecond) // polled, not ticked
	}
	if n := l.InSyncReplicas(); n < 2 {
		t.Fatalf("%d in sync once the epoch is confirmed, want the leader and a follower at least", n)
	}
	if _, err := l.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
}

// KnownLeader, which the broker's NOT_LEADER_OR_FOLLOWER answers name
// (KIP-951), follows raft ahead of the metadata: a follower names the
// leader and its term, and a leader handing over names the transferee and
// the next term, in which the transferee campaigns (the leader drops
// proposals meanwhile; without the hint franz-go waited its 5 s metadata
// age after each hand-over to a preferred replica).
func TestKnownLeaderNamesTheTransferee(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	lead, term := g.nodes[1].r.KnownLeader()
	if lead != 1 || term == 0 {
		t.Fatalf("the leader knows (%d, %d), want itself", lead, term)
	}
	g.waitFor("node 3 to know the leader", func() bool {
		l, tm := g.nodes[3].r.KnownLeader()
		return l == 1 && tm == term
	})
	g.net.isolate(2, g.ids) // the hand-over stays pending: no tick ends it
	g.nodes[1].r.TransferLeadership(2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		l, tm := g.nodes[1].r.KnownLeader()
		if l == 2 && tm == term+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the leader handing over to 2 knows (%d, %d), want (2, %d)", l, tm, term+1)
		}
		time.Sleep(time.Millisecond) // polled, not ticked
	}
	if _, err := g.nodes[1].p.Append(batch(t, 7, 0, 1, "a"), partition.AppendRules{}); err == nil {
		t.Fatal("a leader handing over took a proposal")
	}
}

// TestConfirmedLeaderIsNeverAGuess: while a hand-over is pending the
// old leader's KnownLeader names the transferee and the next term (a
// guess, for KIP-951 hints), but its ConfirmedLeader still names itself
// in its own term; a follower confirms a leader once it saw an entry of
// the leader's term committed.
func TestConfirmedLeaderIsNeverAGuess(t *testing.T) {
	g := newGroup(t, 3)
	if l, _ := g.nodes[3].r.ConfirmedLeader(); l != 0 {
		t.Fatalf("before any election node 3 confirms leader %d", l)
	}
	g.elect(1)
	_, term := g.nodes[1].r.KnownLeader()
	g.waitFor("node 3 to confirm the leader", func() bool {
		l, tm := g.nodes[3].r.ConfirmedLeader()
		return l == 1 && tm == term
	})
	if l, tm := g.nodes[1].r.ConfirmedLeader(); l != 1 || tm != term {
		t.Fatalf("the leader confirms (%d, %d), want (1, %d)", l, tm, term)
	}
	g.pendingHandOver(1, 2)
	if l, tm := g.nodes[1].r.ConfirmedLeader(); l != 1 || tm != term {
		t.Fatalf("handing over, the leader confirms (%d, %d), want still (1, %d)", l, tm, term)
	}
}

// TestWaitLeaderEpochWhileBecomingLeader: a replica taking over by a
// hand-over whose first entry is not committed yet (its followers'
// acknowledgements lost) has no epoch; WaitLeaderEpoch waits there until
// the epoch is confirmed, and returns at once on a follower.
func TestWaitLeaderEpochWhileBecomingLeader(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	g.waitFor("node 2 to confirm the leader", func() bool { l, _ := g.nodes[2].r.ConfirmedLeader(); return l == 1 })
	short := func(id uint64) time.Duration {
		start := time.Now()
		g.nodes[id].r.WaitLeadershipSettled(100 * time.Millisecond)
		return time.Since(start)
	}
	if d := short(3); d >= 100*time.Millisecond {
		t.Fatalf("a follower's WaitLeaderEpoch waited %v", d)
	}
	g.net.mu.Lock()
	g.net.drop = func(m *raftpb.Message) bool { return m.GetTo() == 2 && m.GetType() == raftpb.MessageType_MsgAppResp }
	g.net.mu.Unlock()
	g.nodes[1].r.TransferLeadership(2)
	deadline := time.Now().Add(20 * time.Second)
	for g.nodes[2].r.Leader() != 2 {
		if time.Now().After(deadline) {
			t.Fatal("node 2 did not take over")
		}
		time.Sleep(time.Millisecond) // polled, not ticked: a tick would resend
	}
	if e := g.nodes[2].r.LeaderEpoch(); e >= 0 {
		t.Fatalf("node 2 confirmed epoch %d with its followers' acknowledgements dropped", e)
	}
	if d := short(2); d < 100*time.Millisecond {
		t.Fatalf("WaitLeaderEpoch on a leader without its epoch returned after %v", d)
	}
	done := make(chan int32)
	go func() {
		g.nodes[2].r.WaitLeadershipSettled(time.Hour)
		done <- g.nodes[2].r.LeaderEpoch()
	}()
	g.net.mu.Lock()
	g.net.drop = nil
	g.net.mu.Unlock()
	for {
		select {
		case e := <-done:
			if e < 0 {
				t.Fatalf("WaitLeaderEpoch returned with no epoch (%d)", e)
			}
			return
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("WaitLeaderEpoch did not return once the followers' acknowledgements went through")
			}
			g.tickAll() // heartbeats: the leader resends what was not acknowledged
		}
	}
}

// TestWaitLeadershipSettledWhileHandingOver: a leader handing over (raft
// drops proposals meanwhile) makes WaitLeadershipSettled wait until the
// hand-over ends (done, or given up by raft after an election timeout).
func TestWaitLeadershipSettledWhileHandingOver(t *testing.T) {
	g := newGroup(t, 3)
	g.elect(1)
	g.waitFor("node 2 to confirm the leader", func() bool { l, _ := g.nodes[2].r.ConfirmedLeader(); return l == 1 })
	g.pendingHandOver(1, 2)
	deadline := time.Now().Add(20 * time.Second)
	start := time.Now()
	g.nodes[1].r.WaitLeadershipSettled(100 * time.Millisecond)
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("WaitLeadershipSettled on a leader handing over returned after %v", d)
	}
	done := make(chan struct{})
	go func() {
		g.nodes[1].r.WaitLeadershipSettled(time.Hour)
		close(done)
	}()
	g.net.heal()
	for {
		select {
		case <-done:
			if k := g.nodes[1].r.known.Load(); k != nil && k.transferee != 0 {
				t.Fatalf("WaitLeadershipSettled returned while node 1 still hands over to %d", k.transferee)
			}
			return
		case <-time.After(time.Millisecond):
			if time.Now().After(deadline) {
				t.Fatal("WaitLeadershipSettled did not return once the hand-over could go on")
			}
			g.tickAll()
		}
	}
}
