package raftlog

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"testing"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// testNode is one replica: a RawNode over this package on its own memfs.
type testNode struct {
	id      uint64
	rn      *raft.RawNode
	st      *Storage
	log     *seglog.Log
	fs      *memfs.FS
	applied int // client batches applied
}

func rawConfig(id uint64, st *Storage) *raft.Config {
	return &raft.Config{
		ID: id, ElectionTick: 10, HeartbeatTick: 1, Storage: st,
		MaxSizePerMsg: 4 << 10, MaxInflightMsgs: 8, MaxUncommittedEntriesSize: 1 << 30,
		PreVote: true, CheckQuorum: true,
		Logger: &raft.DefaultLogger{Logger: log.New(io.Discard, "", 0)},
	}
}

// handleReady persists, sends and applies one Ready the way the broker will:
// entries, then hard state, durable before the messages leave.
func (n *testNode) handleReady(t *testing.T, out *[]*raftpb.Message) bool {
	t.Helper()
	if !n.rn.HasReady() {
		return false
	}
	rd := n.rn.Ready()
	// Entries before the hard state: a commit index on disk must never
	// point past the entries on disk.
	if err := n.st.Append(rd.Entries); err != nil {
		t.Fatal(err)
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := n.st.SetHardState(rd.HardState); err != nil {
			t.Fatal(err)
		}
	}
	*out = append(*out, rd.Messages...)
	for _, e := range rd.CommittedEntries {
		if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
			n.applied++
		}
	}
	n.rn.Advance(rd)
	return true
}

func newCluster(t *testing.T, ids ...uint64) []*testNode {
	t.Helper()
	nodes := make([]*testNode, len(ids))
	for i, id := range ids {
		fs := memfs.New()
		if err := fs.MkdirAll("/p"); err != nil {
			t.Fatal(err)
		}
		if err := fs.SyncDir("/"); err != nil {
			t.Fatal(err)
		}
		l, err := seglog.Open(fs, "/p/t-0", testCfg, seglog.State{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		st, err := Open(fs, l)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.SetConfState(&raftpb.ConfState{Voters: ids}); err != nil {
			t.Fatal(err)
		}
		rn, err := raft.NewRawNode(rawConfig(id, st))
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{id: id, rn: rn, st: st, log: l, fs: fs}
	}
	return nodes
}

// settle runs Ready handling and message delivery until nothing moves;
// drop(m) discards a message (a cut link).
func settle(t *testing.T, nodes []*testNode, drop func(m *raftpb.Message) bool) {
	t.Helper()
	byID := map[uint64]*testNode{}
	for _, n := range nodes {
		byID[n.id] = n
	}
	for round := 0; round < 10000; round++ {
		var msgs []*raftpb.Message
		moved := false
		for _, n := range nodes {
			if n.handleReady(t, &msgs) {
				moved = true
			}
		}
		for _, m := range msgs {
			if drop != nil && drop(m) {
				continue
			}
			if err := byID[m.GetTo()].rn.Step(m); err != nil {
				t.Fatalf("step %v to %d: %v", m.GetType(), m.GetTo(), err)
			}
		}
		if !moved && len(msgs) == 0 {
			return
		}
	}
	t.Fatal("the group did not settle in 10000 rounds")
}

// logBatches reads every batch of l: offset -> bytes.
func logBatches(t *testing.T, l *seglog.Log) map[int64][]byte {
	t.Helper()
	out := map[int64][]byte{}
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatal(err)
		}
		for data := res.Data; len(data) > 0; {
			h, err := record.ReadBatchHeader(data)
			if err != nil {
				t.Fatal(err)
			}
			out[h.BaseOffset] = data[:h.Size()]
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return out
}

func TestThreeNodeGroupIdenticalLogs(t *testing.T) {
	nodes := newCluster(t, 1, 2, 3)
	if err := nodes[0].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	settle(t, nodes, nil)
	if st := nodes[0].rn.BasicStatus(); st.RaftState != raft.StateLeader {
		t.Fatalf("node 1 is %v after campaigning", st.RaftState)
	}
	const proposals = 100
	for i := 0; i < proposals; i++ {
		if err := nodes[0].rn.Propose(clientBatch(t, fmt.Sprintf("p%d", i), 1+i%4, 20+i)); err != nil {
			t.Fatal(err)
		}
		if i%7 == 0 {
			settle(t, nodes, nil)
		}
	}
	settle(t, nodes, nil)
	// One heartbeat carries the final commit index to the followers.
	nodes[0].rn.Tick()
	settle(t, nodes, nil)
	for _, n := range nodes {
		if n.applied != proposals {
			t.Fatalf("node %d applied %d client batches, want %d", n.id, n.applied, proposals)
		}
	}
	want := logBatches(t, nodes[0].log)
	if len(want) != proposals+1 { // the leader's empty entry, then the proposals
		t.Fatalf("leader log holds %d batches, want %d", len(want), proposals+1)
	}
	for _, n := range nodes[1:] {
		got := logBatches(t, n.log)
		if len(got) != len(want) || n.log.EndOffset() != nodes[0].log.EndOffset() {
			t.Fatalf("node %d: %d batches to end %d, leader %d to %d", n.id, len(got), n.log.EndOffset(), len(want), nodes[0].log.EndOffset())
		}
		for off, b := range want {
			if !bytes.Equal(got[off], b) {
				t.Fatalf("node %d: batch at offset %d differs from the leader's", n.id, off)
			}
		}
	}
	if nodes[0].log.NumSegments() < 2 {
		t.Fatal("the logs did not cross a segment")
	}
}

// A leader cut off from its majority appends proposals no one else gets;
// after a new leader commits others and the link heals, its conflicting
// tail is cut (seglog.TruncateTo through Append) and the logs converge.
func TestThreeNodeGroupConflictingTailReplaced(t *testing.T) {
	nodes := newCluster(t, 1, 2, 3)
	if err := nodes[0].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	settle(t, nodes, nil)
	for i := 0; i < 10; i++ {
		if err := nodes[0].rn.Propose(clientBatch(t, fmt.Sprintf("a%d", i), 2, 30)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, nodes, nil)
	isolated := func(m *raftpb.Message) bool { return m.GetTo() == 1 || m.GetFrom() == 1 }
	endBefore := nodes[0].log.EndOffset()
	for i := 0; i < 8; i++ {
		if err := nodes[0].rn.Propose(clientBatch(t, fmt.Sprintf("lost%d", i), 3, 50)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, nodes, isolated)
	lostEnd := nodes[0].log.EndOffset()
	if lostEnd <= endBefore {
		t.Fatal("the cut-off leader did not append its proposals")
	}
	// Nodes 2 and 3 stop hearing node 1: after an election timeout
	// (ticks, no sleeps) one of them wins a new term.
	var leader *testNode
	for tick := 0; tick < 100 && leader == nil; tick++ {
		nodes[1].rn.Tick()
		nodes[2].rn.Tick()
		settle(t, nodes, isolated)
		for _, n := range nodes[1:] {
			if n.rn.BasicStatus().RaftState == raft.StateLeader {
				leader = n
			}
		}
	}
	if leader == nil {
		t.Fatal("no new leader among nodes 2 and 3")
	}
	for i := 0; i < 5; i++ {
		if err := leader.rn.Propose(clientBatch(t, fmt.Sprintf("b%d", i), 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, nodes, isolated)
	// Heal: the new leader's heartbeats reach node 1, which steps down
	// and takes its log.
	for i := 0; i < 3; i++ {
		leader.rn.Tick()
		settle(t, nodes, nil)
	}
	want := logBatches(t, leader.log)
	for _, n := range nodes {
		got := logBatches(t, n.log)
		if len(got) != len(want) || n.log.EndOffset() != nodes[1].log.EndOffset() {
			t.Fatalf("node %d: %d batches to end %d, leader %d to %d (node 1's isolated end was %d)",
				n.id, len(got), n.log.EndOffset(), len(want), leader.log.EndOffset(), lostEnd)
		}
		for off, b := range want {
			if !bytes.Equal(got[off], b) {
				t.Fatalf("node %d: batch at offset %d differs from the leader's", n.id, off)
			}
		}
	}
	for _, b := range want {
		if bytes.Contains(b, []byte("lost")) {
			t.Fatal("an uncommitted batch of the cut-off leader survived")
		}
	}
	if nodes[0].applied != 15 {
		t.Fatalf("node 1 applied %d client batches, want 15", nodes[0].applied)
	}
}

// A follower loses power (only fsynced bytes survive) and restarts from
// its raft storage alone: InitialState, FirstIndex/LastIndex and Term from
// the rebuilt translator; it catches up and the logs end identical.
func TestThreeNodeGroupFollowerRestartsAfterPowerCut(t *testing.T) {
	nodes := newCluster(t, 1, 2, 3)
	if err := nodes[0].rn.Campaign(); err != nil {
		t.Fatal(err)
	}
	settle(t, nodes, nil)
	for i := 0; i < 40; i++ {
		if err := nodes[0].rn.Propose(clientBatch(t, fmt.Sprintf("a%d", i), 2, 30)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, nodes, nil)
	old := nodes[2]
	endBefore := old.log.EndOffset()
	crashed := old.fs.Crash(memfs.CrashOptions{})
	l, err := seglog.Open(crashed, "/p/t-0", testCfg, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	st, err := Open(crashed, l)
	if err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != endBefore {
		t.Fatalf("restarted follower's log ends at %d, had %d fsynced", l.EndOffset(), endBefore)
	}
	rn, err := raft.NewRawNode(rawConfig(3, st))
	if err != nil {
		t.Fatalf("restart from the raft storage: %v", err)
	}
	nodes[2] = &testNode{id: 3, rn: rn, st: st, log: l, fs: crashed}
	for i := 0; i < 40; i++ {
		if err := nodes[0].rn.Propose(clientBatch(t, fmt.Sprintf("b%d", i), 1, 10)); err != nil {
			t.Fatal(err)
		}
	}
	settle(t, nodes, nil)
	for i := 0; i < 3; i++ {
		nodes[0].rn.Tick()
		settle(t, nodes, nil)
	}
	want := logBatches(t, nodes[0].log)
	if len(want) != 81 {
		t.Fatalf("leader holds %d batches, want 81", len(want))
	}
	for _, n := range nodes[1:] {
		got := logBatches(t, n.log)
		if len(got) != len(want) {
			t.Fatalf("node %d: %d batches, leader %d", n.id, len(got), len(want))
		}
		for off, b := range want {
			if !bytes.Equal(got[off], b) {
				t.Fatalf("node %d: batch at offset %d differs from the leader's", n.id, off)
			}
		}
	}
	if hs, _, _ := st.InitialState(); hs.GetCommit() != 81 {
		t.Fatalf("restarted follower's persisted commit %d, want 81", hs.GetCommit())
	}
}
