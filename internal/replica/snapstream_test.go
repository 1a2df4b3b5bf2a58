package replica

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// streamStats is what memNet's snapshot streams did; gate, when set, runs
// before each chunk is read (a test pauses a stream there).
type streamStats struct {
	wg sync.WaitGroup
	mu sync.Mutex
	// The maps are made with the memNet (newGroupOn) and never replaced:
	// reading the fields needs no lock, their contents do.
	started  map[uint64]int // by sender
	finished map[uint64]int
	failed   map[uint64]int
	chunks   int
	bytes    int64
	gate     func(from, to uint64, chunk int)
	last     *raftpb.Message // the last streamed MsgSnap
	fail     bool            // every stream fails at once
}

func (s *streamStats) count(m map[uint64]int, from uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return m[from]
}

func (s *streamStats) setGate(f func(from, to uint64, chunk int)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = f
}

// snapshotSender is Config.SendSnapshot over memNet, as raftnet does it:
// a goroutine sends the message's region chunk by chunk into the
// recipient's SnapshotSink, commits it, then steps the MsgSnap, and
// reports the end; a cut link or a stopped recipient fails the stream.
func (n *memNet) snapshotSender(from uint64) func(*raftpb.Message, SnapshotBody, func(error)) {
	return func(m *raftpb.Message, body SnapshotBody, done func(error)) {
		m = proto.CloneOf(m)
		s := &n.streams
		s.mu.Lock()
		s.started[from]++
		s.last = m
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			err := n.transfer(from, m, body)
			body.Close()
			s.mu.Lock()
			if err != nil {
				s.failed[from]++
			} else {
				s.finished[from]++
			}
			s.mu.Unlock()
			done(err)
		}()
	}
}

func (n *memNet) transfer(from uint64, m *raftpb.Message, body SnapshotBody) error {
	to := m.GetTo()
	reach := func() *Replica {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.cut[[2]uint64{from, to}] {
			return nil
		}
		return n.reps[to]
	}
	r := reach()
	if r == nil {
		return errors.New("unreachable")
	}
	n.streams.mu.Lock()
	fail := n.streams.fail
	n.streams.mu.Unlock()
	if fail {
		return errors.New("the follower refuses every stream")
	}
	sink, err := r.SnapshotSink(m)
	if err != nil {
		return err
	}
	for i := 0; ; i++ {
		n.streams.mu.Lock()
		gate := n.streams.gate
		n.streams.mu.Unlock()
		if gate != nil {
			gate(from, to, i)
		}
		c, err := body.Next()
		if err == io.EOF {
			break
		}
		if err == nil && reach() != r {
			err = errors.New("link cut")
		}
		if err == nil {
			err = sink.Write(c)
		}
		if err != nil {
			sink.Abort()
			return err
		}
		n.streams.mu.Lock()
		n.streams.chunks++
		n.streams.bytes += int64(len(c))
		n.streams.mu.Unlock()
	}
	if err := sink.Commit(); err != nil {
		return err
	}
	if reach() != r {
		return errors.New("link cut")
	}
	r.Step(m)
	return nil
}

// largeRegion is a 3-replica compacted group whose cleaned region below
// the anchor is several times the largest region a snapshot carries
// inline (64 KiB here), streamed in 16 KiB chunks.
type largeRegion struct {
	g    *group
	want map[string]string
	last int64
}

const (
	largeInline = 64 << 10
	largeChunk  = 16 << 10
)

var largeCfg = partition.Config{SegmentBytes: 16 << 10, RetentionMs: -1, Compaction: compactCfg.Compaction}

func setupLargeRegion(t *testing.T, modify func(*Config)) *largeRegion {
	t.Helper()
	lr := &largeRegion{want: map[string]string{}}
	lr.g = newGroupOn(t, 3, func(c *Config) {
		c.MaxSnapshotRegionBytes, c.SnapshotChunkBytes = largeInline, largeChunk
		if modify != nil {
			modify(c)
		}
	}, true)
	g := lr.g
	for _, nd := range g.nodes {
		nd.p.SetConfig(largeCfg)
	}
	g.elect(1)
	lr.write(t, 1, "a", 1, 2, 3)
	lr.write(t, 1, "b", 1, 2, 3) // the cleaner drops round a
	lr.clean(t, 1, 2, 3)
	lead := g.nodes[1]
	if below := regionBytes(t, lead); below < 4*largeInline {
		t.Fatalf("the region below the leader's anchor holds %d bytes, want several times %d", below, largeInline)
	}
	return lr
}

// write has leader lead write one round of 400 keys of 1 KiB values and
// waits for ids to commit it.
func (lr *largeRegion) write(t *testing.T, lead uint64, tag string, ids ...uint64) {
	t.Helper()
	l := lr.g.nodes[lead].p
	for k := range 400 {
		key := fmt.Sprintf("key-%03d", k)
		val := fmt.Sprintf("%s-%d-%s", tag, k, strings.Repeat(tag, 1000))
		res, err := l.Append(keyed(t, key, val), partition.AppendRules{})
		if err != nil {
			t.Fatal(err)
		}
		lr.want[key], lr.last = val, res.LastOffset
	}
	lr.g.commitAll(lr.last, ids...)
}

// clean moves each replica's anchor (CleanBound) and cleans below it.
func (lr *largeRegion) clean(t *testing.T, ids ...uint64) {
	t.Helper()
	for _, id := range ids {
		nd := lr.g.nodes[id]
		bound := nd.r.CleanBound()
		if _, err := cleaner.New(nd.fs, cleaner.Options{DedupeBufferBytes: 1 << 20}).Clean(context.Background(), nd.p.Log(), bound); err != nil {
			t.Fatalf("replica %d: clean: %v", id, err)
		}
	}
}

// regionBytes is the size of nd's batches below its anchor.
func regionBytes(t *testing.T, nd *node) int {
	n := 0
	for _, b := range batchesOf(t, nd.p, nd.r.st.AnchorOffset()) {
		n += len(b)
	}
	return n
}

// checkSame waits for f to reach lead's high watermark and checks that
// its log starts where lead's does and holds lead's batches, byte for
// byte at the same offsets, and every key's latest value.
func (lr *largeRegion) checkSame(t *testing.T, lead, f *node) {
	t.Helper()
	hw := lead.p.HighWatermark()
	lr.g.waitFor(fmt.Sprintf("replica %d's high watermark", f.id), func() bool { return f.p.HighWatermark() >= hw })
	if f.p.StartOffset() != lead.p.StartOffset() {
		t.Fatalf("replica %d's log starts at %d, the leader's at %d", f.id, f.p.StartOffset(), lead.p.StartOffset())
	}
	want, got := batchesOf(t, lead.p, hw), batchesOf(t, f.p, hw)
	if len(got) != len(want) {
		t.Fatalf("replica %d holds %d batches below %d, the leader %d", f.id, len(got), hw, len(want))
	}
	for off, b := range want {
		if !bytes.Equal(got[off], b) {
			t.Fatalf("batch at %d differs between the leader and replica %d", off, f.id)
		}
	}
	if vals, _ := latest(t, f.p, hw); !maps.Equal(vals, lr.want) {
		t.Fatalf("replica %d: the latest values differ from the ones written (%d keys, want %d)", f.id, len(vals), len(lr.want))
	}
}

// A learner added to a compacted partition whose region below the anchor
// is several times what a snapshot carries inline catches up: the
// region is streamed in chunks, and the learner's log equals the
// leader's from the log start to the high watermark. Without streaming
// the leader never sends it (TestCompactedGroupRegionTooLargeStaysBehind)
// and the reassignment never completes.
func TestStreamedRegionReachesNewReplica(t *testing.T) {
	lr := setupLargeRegion(t, nil)
	g := lr.g
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	began := time.Now()
	lead := g.reassign(all, []uint64{1, 2, 3, 4})
	took := time.Since(began)
	if lead.id != 1 {
		t.Fatalf("leader %d, want 1", lead.id)
	}
	lr.write(t, 1, "c", 1, 2, 3, 4)
	lr.checkSame(t, lead, n4)
	s := &g.net.streams
	s.mu.Lock()
	finished, chunks, streamed, last := s.finished[1], s.chunks, s.bytes, proto.CloneOf(s.last)
	s.mu.Unlock()
	if finished == 0 || chunks < 4 {
		t.Fatalf("streams: %d finished from the leader, %d chunks; want a region in several chunks", finished, chunks)
	}
	t.Logf("reassignment done in %v: %d chunks, %d bytes streamed", took, chunks, streamed)
	// The same snapshot again, spooled (empty) and stepped: raft does not
	// take it (the learner's log is past its index), and its spool, which
	// no install will use, is removed.
	stale := last
	sink, err := n4.r.SnapshotSink(stale)
	if err != nil {
		t.Fatal(err)
	}
	if err := sink.Commit(); err != nil {
		t.Fatal(err)
	}
	n4.r.Step(stale)
	g.waitFor("the stale spool removed", func() bool {
		names, _ := n4.fs.List(n4.p.Log().Dir())
		return !containsPrefix(names, spoolPrefix)
	})
}

// behindLarge stops follower 3, writes and cleans on 1 and 2 with
// AnchorLagBytes 1, so the leader's anchor passes 3 (compaction.go: with
// streaming, a large region does not hold the anchor) and 3 needs a
// streamed snapshot when it returns.
func setupBehindLarge(t *testing.T) *largeRegion {
	t.Helper()
	lr := setupLargeRegion(t, func(c *Config) { c.AnchorLagBytes = 1 })
	g := lr.g
	stoppedEnd := g.nodes[3].p.Log().EndOffset()
	g.stop(3)
	lr.write(t, 1, "d", 1, 2)
	lr.write(t, 1, "e", 1, 2)
	lr.clean(t, 1, 2)
	if anchor := g.nodes[1].r.st.AnchorOffset(); anchor <= stoppedEnd {
		t.Fatalf("the leader's anchor %d is held at the stopped member's end %d: with streaming it must pass", anchor, stoppedEnd)
	}
	return lr
}

// A follower behind the leader's anchor, with a large region below it,
// catches up through a streamed snapshot.
func TestStreamedRegionReachesFollowerBehind(t *testing.T) {
	lr := setupBehindLarge(t)
	g := lr.g
	g.start(g.nodes[3])
	lr.checkSame(t, g.nodes[1], g.nodes[3])
	if n := g.net.streams.count(g.net.streams.finished, 1); n == 0 {
		t.Fatal("the follower caught up without a streamed snapshot")
	}
}

// A power cut of the follower at each of its file writes after it comes
// back, through the whole transfer and install (the spool's chunks, the
// spool committed, raft's state with the reset pending, the log filled
// from the region, the flags cleared): restarted from the cut image, it
// discards a partial spool and ends with the leader's log. Writes 1-29
// are about the spool's chunks, the commit point near 87, the fill after
// up to about 630 (memfs counts every write of every segment and index).
func TestStreamedRegionInstallPowerCut(t *testing.T) {
	cuts := []int{1, 10, 20, 29, 45, 60, 75, 84, 86, 87, 88, 89, 90, 150, 300, 450, 600, 610, 620, 630, 640}
	if testing.Short() {
		cuts = []int{10, 88, 300}
	}
	for _, k := range cuts {
		t.Run(fmt.Sprint(k), func(t *testing.T) {
			lr := setupBehindLarge(t)
			g, nd := lr.g, lr.g.nodes[3]
			if err := nd.fs.SyncDir("/"); err != nil {
				t.Fatal(err)
			}
			cut := nd.fs.CrashAtWrite(k, memfs.CrashOptions{}, func() { g.net.isolate(3, g.ids) })
			g.start(nd)
			hw := g.nodes[1].p.HighWatermark()
			g.waitFor("the cut", func() bool {
				g.net.mu.Lock()
				defer g.net.mu.Unlock()
				// Past the install's last write, the cut is taken
				// once the follower caught up.
				return g.net.cut[[2]uint64{3, 1}] || nd.p.HighWatermark() >= hw
			})
			img := cut()
			g.stop(3)
			g.net.heal()
			names, _ := img.List("/d/t-0")
			var spools []string
			for _, n := range names {
				if strings.HasPrefix(n, "raft-") {
					spools = append(spools, n)
				}
			}
			t.Logf("image at write %d: %d files, raft's %v", k, len(names), spools)
			// memfs drops an unsynced create; a real disk may keep a
			// partial spool: Start must discard it.
			if f, err := img.Create("/d/t-0/" + spoolPrefix + "00000000000000ff" + partSuffix); err != nil {
				t.Fatal(err)
			} else {
				f.Write([]byte("a partial spool"))
				f.Close()
			}
			nd.fs = img
			g.start(nd)
			lr.checkSame(t, g.nodes[1], nd)
			if left, _ := nd.fs.List("/d/t-0"); containsPrefix(left, spoolPrefix) {
				t.Fatalf("a spool is left after the install: %v", left)
			}
		})
	}
}

func containsPrefix(names []string, prefix string) bool {
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			return true
		}
	}
	return false
}

// The leader loses leadership while it streams a region to a new
// replica: its stream fails (cancelled, the follower discards the
// partial spool), the new leader streams its own region, and the new
// replica ends with the new leader's log.
func TestStreamedRegionLeaderChangeMidTransfer(t *testing.T) {
	lr := setupLargeRegion(t, nil)
	g := lr.g
	paused, release := make(chan struct{}), make(chan struct{})
	var pauseOnce, releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) })
	g.net.streams.setGate(func(from, to uint64, chunk int) {
		if from == 1 && chunk == 2 {
			pauseOnce.Do(func() { close(paused) })
			<-release
		}
	})
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	target := []uint64{1, 2, 3, 4}
	g.waitFor("the leader's stream to the new replica", func() bool {
		g.reconfigure(all, target)
		select {
		case <-paused:
			return true
		default:
			return false
		}
	})
	g.elect(2)
	releaseOnce.Do(func() { close(release) })
	lead := g.reassign(all, target)
	if lead.id != 2 {
		t.Fatalf("leader %d, want 2", lead.id)
	}
	lr.checkSame(t, lead, n4)
	s := &g.net.streams
	if s.count(s.failed, 1) == 0 || s.count(s.finished, 2) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		t.Fatalf("streams started %v, finished %v, failed %v: want the old leader's failed and the new one's finished", s.started, s.finished, s.failed)
	}
}

// A stream that keeps failing is retried no sooner than every
// snapshotRetryTicks (raft would otherwise ask for the next snapshot at
// once, back to back); once streams work again the learner catches up.
func TestStreamedRegionFailedStreamBacksOff(t *testing.T) {
	lr := setupLargeRegion(t, nil)
	g := lr.g
	s := &g.net.streams
	s.mu.Lock()
	s.fail = true
	s.mu.Unlock()
	n4 := g.join(4)
	all := []*node{g.nodes[1], g.nodes[2], g.nodes[3], n4}
	target := []uint64{1, 2, 3, 4}
	g.waitFor("a first failed stream", func() bool {
		g.reconfigure(all, target)
		return s.count(s.failed, 1) > 0
	})
	// The waits double: 10, 20, 40, 80, 160, 320 ticks. 630 ticks hold
	// about 6 tries (63 at a fixed 10 ticks; the follower's disk full,
	// each try would read and send the region up to the same point).
	const ticks = 630
	before := s.count(s.started, 1)
	g.tickN(ticks, 1, 2, 3, 4)
	if n := s.count(s.started, 1) - before; n > 8 {
		t.Fatalf("%d streams started in %d ticks: failed streams are retried without a growing wait", n, ticks)
	}
	s.mu.Lock()
	s.fail = false
	s.mu.Unlock()
	lead := g.reassign(all, target)
	lr.checkSame(t, lead, n4)
}

// FuzzDecodeStreamSnapshot: no input panics the reference decoder, and a
// reference that decodes re-encodes to the same bytes.
func FuzzDecodeStreamSnapshot(f *testing.F) {
	f.Add(encodeStreamSnapshot(streamRef{ps: []byte{1, 2, 3}, start: 5, anchor: 90, id: 0xfeed}))
	f.Add(encodeStreamSnapshot(streamRef{}))
	f.Add([]byte{streamSnapshotTag, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{regionSnapshotTag})
	f.Fuzz(func(t *testing.T, data []byte) {
		ref, ok, err := decodeStreamSnapshot(data)
		if !ok || err != nil {
			return
		}
		if again := encodeStreamSnapshot(ref); !bytes.Equal(again, data) {
			t.Fatalf("%x re-encodes as %x", data, again)
		}
	})
}
