package raftgroup

import (
	"errors"
	"fmt"
	"math"
	"runtime/debug"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/raftlog"
)

// loopState is owned by the group's goroutine (and by Start before the
// goroutine exists); nothing else touches it.
type loopState struct {
	rn        *raft.RawNode
	ticks     int
	pending   map[uint64]*proposal // this incarnation's proposals by sequence
	byIndex   map[uint64][]uint64  // index -> sequences of ours seen appended there
	applied   uint64
	snapIndex uint64            // index of the newest snapshot on disk (0: none)
	snapDue   uint64            // applied index at which the next snapshot is taken
	confState *raftpb.ConfState // as of applied
	// On the leader, per voter: when it last answered an append or a
	// heartbeat (lastContact) and when it last did so with its log
	// matching the leader's (caughtUp); reset when leadership is lost.
	lastContact, caughtUp map[uint64]time.Time
	// savedHS is the hard state on disk; commitDirty a newer one that
	// differs only by its commit index, not written yet (saveHardState).
	savedHS, commitDirty *raftpb.HardState
	answers              []answer // results of this Ready's own proposals, sent once the commit is durable
}

type answer struct {
	p *proposal
	v any
}

// drainMax bounds the inputs taken without blocking before a Ready is
// handled, so that many proposals and messages share one append (one
// fsync) and a busy inbox still lets ticks in.
const drainMax = 512

// open restores the snapshot, reconciles it with the log, creates the
// RawNode and bootstraps an empty group.
func (g *Group) open() error {
	c := g.cfg
	st, err := raftlog.Open(c.FS, g.log)
	if err != nil {
		return fmt.Errorf("raftgroup %d: %w", c.Group, err)
	}
	g.st = st
	g.pending = map[uint64]*proposal{}
	g.byIndex = map[uint64][]uint64{}
	g.confState = &raftpb.ConfState{}
	snap, hasSnap, err := readSnapshot(c.FS, c.Dir)
	if err != nil {
		return fmt.Errorf("raftgroup %d: %w", c.Group, err)
	}
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	if hasSnap {
		if err := g.reconcile(snap, first); err != nil {
			return err
		}
		meta := snap.GetMetadata()
		if err := c.SM.Restore(meta.GetIndex(), snap.GetData()); err != nil {
			return fmt.Errorf("raftgroup %d: restore snapshot at %d: %w", c.Group, meta.GetIndex(), err)
		}
		g.applied, g.snapIndex = meta.GetIndex(), meta.GetIndex()
		g.confState = proto.CloneOf(raftpb.EnsureConfState(meta.GetConfState()))
	} else if first > 1 {
		return fmt.Errorf("raftgroup %d: log starts at index %d and there is no snapshot: %w", c.Group, first, ErrSnapshotBehindLog)
	}
	g.snapDue = g.applied + g.cfg.SnapshotEntries
	if hs, _, _ := st.InitialState(); raft.IsEmptyHardState(hs) && last > 0 && !hasSnap {
		// Only Bootstrap's first Ready appends entries with no hard
		// state yet (every later Ready has one on disk before): a crash
		// came between its entries and its hard state. Its entries are
		// committed by construction; without the commit raft would not
		// apply them and the group would have no voters.
		if t, err := st.Term(last); err != nil || t != 1 {
			return fmt.Errorf("raftgroup %d: entries up to %d (term %d) and no hard state: %w", c.Group, last, t, ErrDamaged)
		}
		if err := st.SetHardState(&raftpb.HardState{Term: proto.Uint64(1), Commit: proto.Uint64(last)}); err != nil {
			return fmt.Errorf("raftgroup %d: finish the bootstrap: %w", c.Group, err)
		}
		c.Logger.Info("raft group: finished a bootstrap a crash interrupted", "entries", last)
	}
	if hs, _, _ := st.InitialState(); hs != nil {
		g.savedHS = hs
	}
	st.SetSnapshotSource(g.snapshotSource)
	rn, err := newRawNode(&raft.Config{
		ID:                        c.ID,
		ElectionTick:              c.ElectionTicks,
		HeartbeatTick:             c.HeartbeatTicks,
		Storage:                   st,
		Applied:                   g.applied,
		MaxSizePerMsg:             1 << 20,
		MaxInflightMsgs:           256,
		MaxUncommittedEntriesSize: 64 << 20,
		MaxCommittedSizePerReady:  4 << 20,
		CheckQuorum:               true,
		PreVote:                   true,
		Logger:                    raftLogger{c.Logger},
	})
	if err != nil {
		return fmt.Errorf("raftgroup %d: %w", c.Group, err)
	}
	g.rn = rn
	hs, _, _ := st.InitialState()
	if !hasSnap && last == 0 && raft.IsEmptyHardState(hs) {
		if len(c.Voters) == 0 {
			return fmt.Errorf("raftgroup %d: empty group directory %s and no voters to bootstrap with", c.Group, c.Dir)
		}
		peers := make([]raft.Peer, len(c.Voters))
		for i, id := range c.Voters {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return fmt.Errorf("raftgroup %d: bootstrap: %w", c.Group, err)
		}
		c.Logger.Info("raft group bootstrapped", "voters", c.Voters)
	}
	return nil
}

// campaignAlone makes this node campaign at once when it is the group's
// only voter: it need not wait an election timeout (1-2 s by default) to
// lead, so a single node serves as soon as it started. Called once the
// committed entries are applied (raft refuses to campaign with
// configuration changes committed and not applied, as a bootstrap's are).
func (g *Group) campaignAlone() {
	ids := g.rn.Status().Config.Voters.IDs()
	if _, me := ids[g.cfg.ID]; len(ids) != 1 || !me {
		return
	}
	if err := g.rn.Campaign(); err != nil {
		g.cfg.Logger.Warn("raft group: campaign of its only voter", "err", err)
	}
}

// newRawNode is raft.NewRawNode with its panics (a hard state whose commit
// is outside the log, an applied index past it: state raft cannot start
// from) turned into an error, so a damaged directory fails Start instead
// of the process.
func newRawNode(cfg *raft.Config) (rn *raft.RawNode, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("raft refuses the group's state: %v: %w", r, ErrPanicked)
		}
	}()
	return raft.NewRawNode(cfg)
}

// reconcile finishes what a crash may have cut between writing the
// snapshot file and the log's state: a follower's install (the log still
// ends before the snapshot or disagrees with it at its index) is redone; a
// commit index below the snapshot (which holds only committed state) is
// raised. A snapshot that ends before the log starts means lost entries.
func (g *Group) reconcile(snap *raftpb.Snapshot, first uint64) error {
	meta := snap.GetMetadata()
	idx := meta.GetIndex()
	switch {
	case idx+1 < first:
		return fmt.Errorf("raftgroup %d: snapshot at %d, log starts at %d: %w", g.cfg.Group, idx, first, ErrSnapshotBehindLog)
	case idx+1 > first:
		if t, err := g.st.Term(idx); err != nil || t != meta.GetTerm() {
			if err := g.st.InstallSnapshot(meta); err != nil {
				return fmt.Errorf("raftgroup %d: finish installing the snapshot at %d: %w", g.cfg.Group, idx, err)
			}
			return nil
		}
	}
	hs, _, _ := g.st.InitialState()
	if hs.GetCommit() < idx {
		hs.Commit = proto.Uint64(idx)
		if err := g.st.SetHardState(hs); err != nil {
			return fmt.Errorf("raftgroup %d: raise commit to the snapshot's %d: %w", g.cfg.Group, idx, err)
		}
		if err := g.st.Flush(); err != nil {
			return fmt.Errorf("raftgroup %d: raise commit to the snapshot's %d: %w", g.cfg.Group, idx, err)
		}
	}
	return nil
}

// snapshotSource is raftlog's SnapshotSource: the snapshot file, read when
// raft sends it to a follower behind the log's start.
func (g *Group) snapshotSource() (*raftpb.Snapshot, error) {
	s, ok, err := readSnapshot(g.cfg.FS, g.cfg.Dir)
	if err != nil {
		g.cfg.Logger.Error("raft group: cannot read its snapshot for a follower", "err", err)
		return nil, err
	}
	if !ok {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	return s, nil
}

// run is the group's goroutine: it ticks, steps, proposes, and handles
// every Ready, until Stop or a storage failure.
func (g *Group) run() {
	defer g.shutdown()
	defer func() {
		// raft panics on a broken invariant (a log that lost entries it
		// had acknowledged); so may a state machine. The group stops, the
		// process lives on (Err says why).
		if r := recover(); r != nil {
			err := fmt.Errorf("raftgroup %d: %w: %v", g.cfg.Group, ErrPanicked, r)
			g.errv.Store(&err)
			g.cfg.Logger.Error("raft group stopped by a panic", "err", err, "stack", string(debug.Stack()))
		}
	}()
	tick := g.cfg.Tick
	if tick == nil {
		t := time.NewTicker(g.cfg.TickInterval)
		defer t.Stop()
		tick = t.C
	}
	for started := false; ; {
		// Ready first: a bootstrap's entries are there before any input.
		for g.rn.HasReady() {
			if err := g.handleReady(); err != nil {
				g.errv.Store(&err)
				g.cfg.Logger.Error("raft group stopped by a storage failure", "err", err)
				return
			}
		}
		if !started {
			started = true
			g.campaignAlone()
			continue
		}
		select {
		case <-g.stopc:
			return
		case <-tick:
			if err := g.tick(); err != nil {
				g.errv.Store(&err)
				g.cfg.Logger.Error("raft group stopped by a storage failure", "err", err)
				return
			}
		case m := <-g.inbox:
			g.step(m)
		case p := <-g.propc:
			g.propose(p)
		case f := <-g.reqc:
			f()
		}
	drain:
		for i := 0; i < drainMax; i++ {
			select {
			case m := <-g.inbox:
				g.step(m)
			case p := <-g.propc:
				g.propose(p)
			default:
				break drain
			}
		}
	}
}

// shutdown answers every pending proposal, closes the log and marks the
// group done.
func (g *Group) shutdown() {
	if g.Err() == nil {
		if err := g.flushCommit(); err != nil {
			g.cfg.Logger.Warn("raft group: write the commit index at stop", "err", err)
		}
	}
	g.st.ReleaseCache(math.MaxUint64) // the cache's budget is the process's
	err := g.stoppedErr()
	for seq, p := range g.pending {
		p.res <- result{err: err}
		delete(g.pending, seq)
	}
	if cerr := g.log.Close(); cerr != nil {
		g.cfg.Logger.Warn("raft group: close log", "err", cerr)
	}
	g.setLeader(0)
	close(g.done)
}

func (g *Group) tick() error {
	g.rn.Tick()
	g.ticks++
	if g.ticks%g.cfg.ElectionTicks == 0 {
		if err := g.flushCommit(); err != nil {
			return err
		}
	}
	for seq, p := range g.pending {
		if g.ticks >= p.deadline {
			p.res <- result{err: fmt.Errorf("raftgroup %d: after %d ticks: %w", g.cfg.Group, g.cfg.ProposalTimeoutTicks, ErrProposalTimeout)}
			g.forget(seq, p)
		}
	}
	return nil
}

func (g *Group) forget(seq uint64, p *proposal) {
	delete(g.pending, seq)
	for _, idx := range p.indexes {
		s := g.byIndex[idx]
		for i, v := range s {
			if v == seq {
				s = append(s[:i], s[i+1:]...)
				break
			}
		}
		if len(s) == 0 {
			delete(g.byIndex, idx)
		} else {
			g.byIndex[idx] = s
		}
	}
}

func (g *Group) step(m *raftpb.Message) {
	if m.GetTo() != g.cfg.ID {
		return
	}
	if err := g.rn.Step(m); err != nil {
		g.cfg.Logger.Debug("raft group: message refused", "type", m.GetType().String(), "from", m.GetFrom(), "err", err)
		return
	}
	if t := m.GetType(); t == raftpb.MessageType_MsgAppResp || t == raftpb.MessageType_MsgHeartbeatResp {
		g.noteContact(m.GetFrom())
	}
}

// noteContact records, on the leader, that voter from answered now, and
// whether its log matches the leader's (Kafka's last fetch and last
// caught-up times of DescribeQuorum).
func (g *Group) noteContact(from uint64) {
	if g.rn.BasicStatus().RaftState != raft.StateLeader {
		return
	}
	now := time.Now()
	if g.lastContact == nil {
		g.lastContact, g.caughtUp = map[uint64]time.Time{}, map[uint64]time.Time{}
	}
	g.lastContact[from] = now
	last, _ := g.st.LastIndex()
	g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
		if id == from && pr.Match >= last {
			g.caughtUp[from] = now
		}
	})
}

func (g *Group) propose(p *proposal) {
	if err := g.rn.Propose(p.data); err != nil {
		p.res <- result{err: fmt.Errorf("raftgroup %d: propose: %w", g.cfg.Group, err)}
		return
	}
	p.data = nil // raft has it
	p.deadline = g.ticks + g.cfg.ProposalTimeoutTicks
	g.pending[p.id.seq] = p
}

// handleReady handles one Ready in etcd raft's order: the snapshot, the
// entries and the hard state made durable; then the messages sent; then
// the snapshot restored and the committed entries applied; Advance; and a
// snapshot taken when due.
func (g *Group) handleReady() error {
	rd := g.rn.Ready()
	// A leader lost (to none or another): proposals forwarded to it and
	// not seen in this node's log are answered once this Ready is applied.
	leaderLost := rd.SoftState != nil && g.Leader() != 0 && rd.SoftState.Lead != g.Leader()
	if rd.SoftState != nil && rd.SoftState.Lead != g.Leader() {
		g.cfg.Logger.Info("raft group leader", "leader", rd.SoftState.Lead, "state", rd.SoftState.RaftState.String())
		g.setLeader(rd.SoftState.Lead)
		if rd.SoftState.RaftState != raft.StateLeader {
			g.lastContact, g.caughtUp = nil, nil
		}
	}
	hasSnap := !raft.IsEmptySnap(rd.Snapshot)
	if hasSnap {
		// The data first: once the log is reset the entries are gone.
		if err := writeSnapshot(g.cfg.FS, g.cfg.Dir, rd.Snapshot); err != nil {
			return err
		}
		if err := g.st.InstallSnapshot(rd.Snapshot.GetMetadata()); err != nil {
			return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
		}
		// It raised the commit on disk to the snapshot's index.
		g.savedHS, _, _ = g.st.InitialState()
		if g.commitDirty.GetCommit() <= g.savedHS.GetCommit() {
			g.commitDirty = nil
		}
	}
	// Entries before the hard state: a commit index on disk must never
	// point past the entries on disk.
	if err := g.st.Append(rd.Entries); err != nil {
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
	}
	if err := g.saveHardState(rd.HardState); err != nil {
		return err
	}
	g.notePending(rd.Entries)
	g.send(rd.Messages)
	if hasSnap {
		meta := rd.Snapshot.GetMetadata()
		if err := g.cfg.SM.Restore(meta.GetIndex(), rd.Snapshot.GetData()); err != nil {
			// The snapshot is durable and the log starts after it: a
			// state machine that cannot take it cannot go on.
			return fmt.Errorf("raftgroup %d: restore snapshot at %d: %w", g.cfg.Group, meta.GetIndex(), err)
		}
		g.applied, g.snapIndex = meta.GetIndex(), meta.GetIndex()
		g.snapDue = g.applied + g.cfg.SnapshotEntries
		g.confState = proto.CloneOf(raftpb.EnsureConfState(meta.GetConfState()))
		g.overtaken(meta.GetIndex())
		g.cfg.Logger.Info("raft group restored a snapshot from the leader", "index", meta.GetIndex(), "term", meta.GetTerm())
	}
	for _, e := range rd.CommittedEntries {
		if err := g.apply(e); err != nil {
			return err
		}
	}
	if len(g.answers) > 0 {
		// What this node acknowledges it must replay at a restart before
		// any election: the commit index on disk must cover it.
		if err := g.flushCommit(); err != nil {
			return err
		}
		for i, a := range g.answers {
			a.p.res <- result{v: a.v}
			g.answers[i] = answer{}
		}
		g.answers = g.answers[:0]
	}
	if leaderLost {
		g.failForwarded()
	}
	g.rn.Advance(rd)
	g.releaseCache()
	g.maybeSnapshot()
	return nil
}

// releaseCache lets raftlog forget the cached entries no reader needs
// any more: those applied and, on a leader, matched by every follower it
// replicates to.
func (g *Group) releaseCache() {
	upto := g.applied
	if g.rn.BasicStatus().RaftState == raft.StateLeader {
		g.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id != g.cfg.ID && pr.State == tracker.StateReplicate {
				upto = min(upto, pr.Match)
			}
		})
	}
	g.st.ReleaseCache(upto)
}

// failForwarded answers ErrLeaderLost to the pending proposals this node
// never saw in its log: raft forwarded them to a leader that is gone, so
// they are lost unless that leader replicated them before it went. Waiting
// for ProposalTimeoutTicks would tell nothing more, and the caller (and
// everything it holds) would wait for nothing; the outcome stays unknown,
// as after a timeout. Proposals seen appended here are settled by the
// entry committed at their index (apply).
func (g *Group) failForwarded() {
	for seq, p := range g.pending {
		if len(p.indexes) == 0 {
			p.res <- result{err: fmt.Errorf("raftgroup %d: %w", g.cfg.Group, ErrLeaderLost)}
			g.forget(seq, p)
		}
	}
}

// saveHardState makes a new term or vote durable at once (raft's safety
// rests on them: a node must never vote twice in a term); a change of the
// commit index alone is kept in memory and written later (flushCommit:
// before this node answers a proposal of its own, before a compaction,
// every ElectionTicks ticks, at Stop), which saves two fsyncs (the atomic
// file's) on the followers' path of every commit. A commit index on disk
// that lags is safe: raft learns the commit again from the leader, and
// Start raises it to the snapshot's index.
func (g *Group) saveHardState(hs *raftpb.HardState) error {
	if raft.IsEmptyHardState(hs) {
		return nil
	}
	if g.savedHS != nil && hs.GetTerm() == g.savedHS.GetTerm() && hs.GetVote() == g.savedHS.GetVote() {
		if hs.GetCommit() > g.savedHS.GetCommit() {
			g.commitDirty = proto.CloneOf(hs)
		}
		return nil
	}
	if err := g.st.SetHardState(hs); err != nil {
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
	}
	g.savedHS, g.commitDirty = proto.CloneOf(hs), nil
	return nil
}

// flushCommit writes a commit index kept in memory by saveHardState.
func (g *Group) flushCommit() error {
	if g.commitDirty == nil {
		return nil
	}
	if g.commitDirty.GetCommit() <= g.savedHS.GetCommit() {
		g.commitDirty = nil // never lower what is on disk
		return nil
	}
	// raftlog keeps a commit-only change in memory too: Flush writes it.
	if err := g.st.SetHardState(g.commitDirty); err != nil {
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
	}
	if err := g.st.Flush(); err != nil {
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
	}
	g.savedHS, g.commitDirty = g.commitDirty, nil
	return nil
}

// send hands the messages to the transport and tells raft a snapshot was
// sent (the transport cannot say whether it arrived; if it did not, the
// follower rejects the next append and raft sends it again).
func (g *Group) send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	g.cfg.Send(msgs)
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			g.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
}

// notePending records at which index each of this node's pending
// proposals was appended to its log, so that another entry committed
// there fails the proposal at once.
func (g *Group) notePending(ents []*raftpb.Entry) {
	if len(g.pending) == 0 {
		return
	}
	for _, e := range ents {
		if e.GetType() != raftpb.EntryNormal || len(e.GetData()) == 0 {
			continue
		}
		id, _, err := unframe(e.GetData())
		if err != nil || id.node != g.cfg.ID || id.incarnation != g.incarnation {
			continue
		}
		if p := g.pending[id.seq]; p != nil {
			p.indexes = append(p.indexes, e.GetIndex())
			g.byIndex[e.GetIndex()] = append(g.byIndex[e.GetIndex()], id.seq)
		}
	}
}

// overtaken fails the pending proposals seen appended at or below index,
// which a snapshot now covers.
func (g *Group) overtaken(index uint64) {
	for idx, seqs := range g.byIndex {
		if idx > index {
			continue
		}
		for _, seq := range seqs {
			if p := g.pending[seq]; p != nil {
				p.res <- result{err: fmt.Errorf("raftgroup %d: index %d: %w", g.cfg.Group, idx, ErrResultLost)}
				g.forget(seq, p)
			}
		}
		delete(g.byIndex, idx)
	}
}

// apply applies one committed entry: a proposal goes to the state machine
// (its result to the waiting Propose), a configuration change to raft.
func (g *Group) apply(e *raftpb.Entry) error {
	idx := e.GetIndex()
	var mine uint64 // sequence of our proposal applied here, 0: none
	switch e.GetType() {
	case raftpb.EntryNormal:
		if len(e.GetData()) == 0 {
			break // a new leader's empty entry
		}
		id, payload, err := unframe(e.GetData())
		if err != nil {
			// Every node skips it alike.
			g.cfg.Logger.Error("raft group: skipped an entry that is not a proposal", "index", idx, "err", err)
			break
		}
		v := g.cfg.SM.Apply(idx, payload)
		if id.node == g.cfg.ID && id.incarnation == g.incarnation {
			mine = id.seq
			if p := g.pending[id.seq]; p != nil {
				// Answered once the commit index covering it is on
				// disk (handleReady).
				g.answers = append(g.answers, answer{p, v})
				g.forget(id.seq, p)
			}
		}
	case raftpb.EntryConfChange:
		var cc raftpb.ConfChange
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("raftgroup %d: conf change at %d: %w", g.cfg.Group, idx, err)
		}
		if err := g.applyConfChange(&cc); err != nil {
			return err
		}
	case raftpb.EntryConfChangeV2:
		var cc raftpb.ConfChangeV2
		if err := proto.Unmarshal(e.GetData(), &cc); err != nil {
			return fmt.Errorf("raftgroup %d: conf change at %d: %w", g.cfg.Group, idx, err)
		}
		if err := g.applyConfChange(&cc); err != nil {
			return err
		}
	}
	// Another entry committed where one of ours was appended: a leader
	// change cut ours, which will never be applied.
	for _, seq := range g.byIndex[idx] {
		if p := g.pending[seq]; p != nil && seq != mine {
			p.res <- result{err: fmt.Errorf("raftgroup %d: index %d taken by another entry: %w", g.cfg.Group, idx, ErrProposalDropped)}
			g.forget(seq, p)
		}
	}
	delete(g.byIndex, idx)
	g.applied = idx
	return nil
}

func (g *Group) applyConfChange(cc raftpb.ConfChangeI) error {
	cs := g.rn.ApplyConfChange(cc)
	if err := g.st.SetConfState(cs); err != nil {
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, err)
	}
	g.confState = cs
	return nil
}

// maybeSnapshot takes a snapshot every SnapshotEntries applied entries:
// the state machine's data, durable in the snapshot file, then the log
// compacted below it (KeepEntries kept). A failure is logged and retried
// after as many entries again: the log just grows meanwhile.
func (g *Group) maybeSnapshot() {
	if g.applied < g.snapDue {
		return
	}
	idx := g.applied
	g.snapDue = idx + g.cfg.SnapshotEntries // on failure too: retried that much later
	if err := g.snapshot(idx); err != nil {
		g.cfg.Logger.Error("raft group: snapshot failed; the log keeps growing until the next one", "index", idx, "err", err)
	}
}

func (g *Group) snapshot(idx uint64) error {
	data, err := g.cfg.SM.Snapshot()
	if err != nil {
		return fmt.Errorf("state machine snapshot: %w", err)
	}
	term, err := g.st.Term(idx)
	if err != nil {
		return fmt.Errorf("term of %d: %w", idx, err)
	}
	snap := &raftpb.Snapshot{Data: data, Metadata: &raftpb.SnapshotMetadata{
		Index: proto.Uint64(idx), Term: proto.Uint64(term), ConfState: proto.CloneOf(g.confState),
	}}
	if err := writeSnapshot(g.cfg.FS, g.cfg.Dir, snap); err != nil {
		return err
	}
	g.snapIndex = idx
	// raft refuses to start with a commit index on disk below the log's
	// first index - 1.
	if err := g.flushCommit(); err != nil {
		return err
	}
	first := uint64(1)
	if idx+1 > g.cfg.KeepEntries {
		first = idx + 1 - g.cfg.KeepEntries
	}
	if err := g.st.Compact(first); err != nil && !errors.Is(err, raft.ErrCompacted) {
		return fmt.Errorf("compact to %d: %w", first, err)
	}
	return nil
}

// statusLocked builds Status on the group's goroutine.
func (g *Group) statusLocked() Status {
	rs := g.rn.Status()
	st := Status{
		Group:           g.cfg.Group,
		ID:              g.cfg.ID,
		State:           rs.RaftState.String(),
		Term:            rs.HardState.GetTerm(),
		Leader:          rs.Lead,
		Commit:          rs.HardState.GetCommit(),
		Applied:         g.applied,
		SnapshotIndex:   g.snapIndex,
		Voters:          append([]uint64(nil), g.confState.GetVoters()...),
		DroppedMessages: g.dropped.Load(),
		LeaderChanges:   g.leaderChanges.Load(),
	}
	st.FirstIndex, _ = g.st.FirstIndex()
	st.LastIndex, _ = g.st.LastIndex()
	if rs.RaftState == raft.StateLeader {
		st.Match = map[uint64]uint64{}
		st.Active = map[uint64]bool{}
		for id, pr := range rs.Progress {
			st.Match[id] = pr.Match
			st.Active[id] = pr.RecentActive || id == g.cfg.ID
		}
		now := time.Now()
		st.LastContact = map[uint64]time.Time{g.cfg.ID: now}
		st.CaughtUp = map[uint64]time.Time{g.cfg.ID: now}
		for id, t := range g.lastContact {
			st.LastContact[id] = t
		}
		for id, t := range g.caughtUp {
			st.CaughtUp[id] = t
		}
	}
	return st
}
