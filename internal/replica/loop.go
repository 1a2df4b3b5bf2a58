package replica

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/partition"
)

// loopState is owned by the goroutine (and Start before it exists).
type loopState struct {
	rn *raft.RawNode
	// pending: this leader's proposals by the index raft gave them (raft
	// clones a proposed entry, so the index is the handle): the log's
	// last index after the previous Ready plus the proposals since.
	pending map[uint64]*proposal
	lastIdx uint64 // raft's last index as of the end of the last Ready
	applied uint64 // the last committed entry handed to this replica
	mine    []bool // ownEntries' result, reused
	// leadHeard: the tick of the last message from the leader;
	// fastTerm: the term of this replica's last fast election
	// (leaderdown.go).
	leadHeard int
	// heardSinceWake: a message came from the leader since this replica
	// last woke (or started); probed: leaderDown probed the leader since
	// (leaderdown.go).
	heardSinceWake, probed bool
	fastTerm               uint64
	// bootCampaign: this replica bootstrapped the group and is its
	// preferred replica; bootTried the tick of its last campaign.
	bootCampaign bool
	bootTried    int
	bootHold     int    // ticks left before raft's election timer runs (a new group's non-preferred replica)
	proposed     uint64 // proposals raft took since then
	commit       uint64
	view         Leadership // as last reported to OnChange
	// confirmedTerm: the last term this replica saw an entry of committed
	// (noteLeadership, ConfirmedLeader).
	confirmedTerm uint64
	// uncommitted: on the leader, its appended proposals not yet seen
	// committed, in index order, for Config.Metrics (metrics.go).
	uncommitted []inflight
	// streams: on the leader, the snapshot stream running to each
	// follower (snapstream.go).
	streams map[uint64]*regionBody
	// steppedSpools: the spools of the streamed snapshots stepped since
	// the last Readys (snapstream.go).
	steppedSpools []string
	// snapRetry: the tick at which a failed stream to each follower is
	// reported to raft (snapstream.go).
	snapRetry map[uint64]int
	// snapFails: the streams to each follower that failed in a row (the
	// retry's wait doubles with each).
	snapFails map[uint64]int

	caughtUp  map[uint64]time.Time // on the leader: when each voter last reached lastSeen
	heard     map[uint64]time.Time // when each member last sent this replica a message
	lastSeen  uint64               // the leader's last index at the previous tick
	isLeader  bool
	ticks     int // ticks since Start
	balanceAt int // on the leader: the tick from which it may hand over to the preferred replica
	// regionWarned: when a snapshot refused for its region was last
	// logged (snapshot.go).
	regionWarned time.Time
}

// drainMax bounds the inputs taken before a Ready, so that many proposals
// and messages share one append (one fsync).
const drainMax = 512

// open builds raft's storage over the partition's log and the RawNode,
// bootstrapping an empty partition; it returns the high watermark.
func (r *Replica) open() (int64, error) {
	l := r.p.Log()
	st, err := r.openStorage(l)
	if err != nil {
		return 0, fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	r.st = st
	r.pending = map[uint64]*proposal{}
	r.caughtUp = map[uint64]time.Time{}
	r.heard = map[uint64]time.Time{}
	hs, cs, _ := st.InitialState()
	last, _ := st.LastIndex()
	first, _ := st.FirstIndex()
	applied := hs.GetCommit()
	if len(cs.GetVoters()) == 0 && applied > 0 {
		// A crash between the commit of the bootstrap's conf changes
		// and their conf state: replay them.
		applied = first - 1
	}
	rn, err := raft.NewRawNode(r.raftConfig(applied))
	if err != nil {
		return 0, fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	r.rn = rn
	if last == 0 && raft.IsEmptyHardState(hs) && r.cfg.Join {
		if l.EndOffset() != l.StartOffset() {
			return 0, fmt.Errorf("replica %s-%d: the log holds data but no raft state: it cannot join a raft group", r.p.Topic, r.p.Index)
		}
	} else if last == 0 && raft.IsEmptyHardState(hs) {
		if l.EndOffset() != l.StartOffset() {
			return 0, fmt.Errorf("replica %s-%d: the log holds data but no raft state: a partition of one replica cannot become a raft group in place", r.p.Topic, r.p.Index)
		}
		if len(r.cfg.Voters) == 0 {
			return 0, fmt.Errorf("replica %s-%d: empty partition and no voters to bootstrap with", r.p.Topic, r.p.Index)
		}
		peers := make([]raft.Peer, len(r.cfg.Voters))
		for i, id := range r.cfg.Voters {
			peers[i] = raft.Peer{ID: id}
		}
		if err := rn.Bootstrap(peers); err != nil {
			return 0, fmt.Errorf("replica %s-%d: bootstrap: %w", r.p.Topic, r.p.Index, err)
		}
		r.bootCampaign = r.cfg.Preferred == r.cfg.ID
		r.bootTried = -bootCampaignEvery
		if !r.bootCampaign && slices.Contains(r.cfg.Voters, r.cfg.Preferred) {
			r.bootHold = bootHoldTicks
		}
	}
	r.commit = hs.GetCommit()
	r.applied = applied
	r.lastIdx = last
	return r.hwLocked(), nil
}

// hwLocked is the commit index translated: the offset after the last
// committed batch.
func (r *Replica) hwLocked() int64 {
	if off, ok := r.st.OffsetOf(r.commit + 1); ok {
		return off
	}
	return r.p.Log().StartOffset()
}

func (r *Replica) run() {
	defer r.shutdown()
	tick, stopTicks := r.tickSource()
	defer stopTicks()
	for {
		select {
		case <-r.stopc:
			return
		case <-tick:
			r.onTick() // quiesce.go
			if len(r.snapRetry) > 0 {
				r.retryStreams() // snapstream.go
			}
			if r.ticks%r.cfg.ElectionTicks == 0 {
				if err := r.flushCommit(); err != nil {
					return
				}
			}
		case <-r.wakec:
			r.wake()
		case down := <-r.downc:
			r.leaderDown(down) // leaderdown.go
		case <-r.in.ready:
			m := r.in.pop()
			if m == nil {
				// The token's messages were taken by an earlier
				// round's drain, which did the work that follows.
				continue
			}
			r.step(m)
		case pr := <-r.propc:
			r.propose(pr)
		case f := <-r.reqc:
			f()
		}
		// Messages and proposals alternate, as a select over two
		// channels would take them.
		for n := 0; n < drainMax; {
			took := false
			if m := r.in.pop(); m != nil {
				r.step(m)
				n, took = n+1, true
			}
			select {
			case pr := <-r.propc:
				r.propose(pr)
				n, took = n+1, true
			default:
			}
			if !took {
				break
			}
		}
		r.in.rearm() // messages left past drainMax: the next round takes them
		if r.bootCampaign {
			r.maybeBootCampaign()
		}
		for r.rn.HasReady() {
			if err := r.handleReady(); err != nil {
				r.errv.Store(&err)
				r.cfg.Logger.Error("partition replica stopped by a storage failure", "err", err)
				return
			}
		}
		if len(r.steppedSpools) > 0 {
			r.dropUnusedSpools() // snapstream.go
		}
		r.noteLeadership() // a hand-over starts or ends without a Ready
		if r.quiesced {
			// Idle from now on: the commit index joins the rest on disk.
			if err := r.flushCommit(); err != nil {
				return
			}
		}
		r.report()
	}
}

// bootCampaignEvery and bootCampaignTicks: a new group's preferred
// replica campaigns every 3 ticks for its first 3 election timeouts, until
// a leader is known; bootHoldTicks: meanwhile the group's other new
// replicas do not run their election timers for 2 election timeouts, so
// that one of them does not win first when the preferred replica's node
// creates the group later than theirs (then a hand-over 10 s later cost
// the clients a metadata refresh). A preferred replica that is down at
// the creation delays the first election by those 2 s.
const (
	bootCampaignEvery = 3
	bootCampaignTicks = 30
	bootHoldTicks     = 20
)

// maybeBootCampaign makes a new group's preferred replica (the first of
// the topic's replicas) its first leader, as Kafka's controller makes it
// the first leader of a new partition: it campaigns as soon as the
// bootstrap's configuration is applied (raft refuses before) and again
// every few ticks while no leader is known (the other replicas may not
// have started the group yet), well before the others' first election
// timeout (ElectionTicks to twice that). Otherwise a random replica led,
// and ten seconds later the hand-over to the preferred one
// (balanceDelayTicks) cost every client a metadata refresh, which
// franz-go delays up to its 5 s MetadataMinAge.
func (r *Replica) maybeBootCampaign() {
	bs := r.rn.BasicStatus()
	if bs.Lead != 0 || r.ticks > bootCampaignTicks {
		r.bootCampaign = false
		return
	}
	if bs.Applied < bs.GetCommit() || r.ticks-r.bootTried < bootCampaignEvery {
		return
	}
	r.bootTried = r.ticks
	if err := r.rn.Campaign(); err != nil {
		r.cfg.Logger.Debug("partition replica: campaign of the preferred replica", "err", err)
	}
}

// flushCommit writes a commit index raftlog kept in memory (SetHardState
// writes a new term or vote at once, a commit alone later): every election
// timeout while ticking, on quiescing and at stop, so a restart after a
// crash re-applies at most about a second of entries. A failure stops the
// replica as a failed Ready does.
func (r *Replica) flushCommit() error {
	if err := r.st.Flush(); err != nil {
		err = fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
		r.errv.Store(&err)
		r.cfg.Logger.Error("partition replica stopped by a storage failure", "err", err)
		return err
	}
	return nil
}

func (r *Replica) shutdown() {
	r.leaving() // quiesce.go
	r.cancelStreams()
	if r.errv.Load() == nil {
		_ = r.flushCommit()
	}
	r.st.ReleaseCache(math.MaxUint64) // the budget is the process's
	err := r.stoppedErr()
	for k, pr := range r.pending {
		pr.res <- appended{err: err}
		delete(r.pending, k)
	}
	r.leader.Store(0)
	r.known.Store(nil)
	r.epoch.Store(-1)
	r.becoming.set(false)
	r.handingOver.set(false)
	r.inSync.Store(0)
	r.p.ReplicatorStopped()
	close(r.done)
}

func (r *Replica) step(m *raftpb.Message) {
	if m.GetTo() != r.cfg.ID || r.lostData(m) || r.spoolMissing(m) {
		return
	}
	r.heard[m.GetFrom()] = r.cfg.Now()
	if m.GetFrom() == r.leader.Load() {
		r.leadHeard, r.heardSinceWake = r.ticks, true
	}
	qh := r.beforeStep(m)
	if err := r.rn.Step(m); err != nil {
		r.cfg.Logger.Debug("partition replica: message refused", "type", m.GetType().String(), "from", m.GetFrom(), "err", err)
	} else if qh {
		r.afterQuiesceHeartbeat(m)
	}
}

func (r *Replica) propose(pr *proposal) {
	r.wake()
	if r.epoch.Load() < 0 {
		r.noteLost(1)
		pr.res <- appended{err: partition.ErrNotLeader}
		return
	}
	if err := r.rn.Propose(pr.data); err != nil {
		r.noteLost(1)
		pr.res <- appended{err: fmt.Errorf("%w: %w", partition.ErrNotLeader, err)}
		return
	}
	r.proposed++
	r.pending[r.lastIdx+r.proposed] = pr
}

// handleReady persists (a cut of a conflicting tail through the
// partition, so its producer state is rebuilt; the entries; the hard
// state), then sends, applies conf changes and moves the high watermark.
func (r *Replica) handleReady() error {
	rd := r.rn.Ready()
	if rd.SoftState != nil {
		r.leader.Store(rd.SoftState.Lead)
		wasLeader := r.isLeader
		r.isLeader = rd.SoftState.RaftState == raft.StateLeader
		if m := r.cfg.Metrics; m != nil {
			switch {
			case rd.SoftState.RaftState == raft.StateCandidate:
				m.Elections.Add(1)
			case r.isLeader && !wasLeader:
				m.Leaderships.Add(1)
			}
		}
		r.becoming.set(rd.SoftState.RaftState == raft.StateCandidate || r.isLeader && r.epoch.Load() < 0)
		if !r.isLeader {
			r.noteSteppedDown()
			r.epoch.Store(-1)
			r.inSync.Store(0)
			r.cancelStreams() // snapstream.go
		} else {
			// A new leader counts a follower in sync once its match
			// index reaches this leader's log end as of now (raft's
			// progress starts unknown; a dead replica never gets in).
			clear(r.caughtUp)
			r.caughtUp[r.cfg.ID] = r.cfg.Now()
			clear(r.snapFails) // a new leadership's streams start afresh
			r.lastSeen, _ = r.st.LastIndex()
			r.balanceAt = r.ticks + balanceDelayTicks
		}
	}
	sent := false
	if r.isLeader && raft.IsEmptySnap(rd.Snapshot) && len(rd.Messages) > 0 && r.st.TermVoteDurable(rd.HardState) {
		// A leader sends before it appends (raft thesis 10.2.1; etcd
		// raft's doc allows it): its appends reach the followers while
		// its own fsync runs. Safe because raft counts the leader's own
		// copy only after Advance (its self-ack waits for the append),
		// so a commit still means fsynced on a majority; its term and
		// vote are on disk already (checked), and its commit index
		// counts only durable copies.
		r.send(rd.Messages)
		sent = true
	}
	if !raft.IsEmptySnap(rd.Snapshot) {
		// Before the entries: they follow the snapshot (snapshot.go).
		if err := r.installSnapshot(rd.Snapshot); err != nil {
			return err
		}
	} else {
		r.earlyHighWatermark(rd)
	}
	if len(rd.Entries) > 0 {
		firstIdx := rd.Entries[0].GetIndex()
		if last, _ := r.st.LastIndex(); firstIdx <= last {
			// A conflicting uncommitted tail: cut through the
			// partition, which rebuilds its producer state.
			off, ok := r.st.OffsetOf(firstIdx)
			if ok {
				if err := r.p.TruncateTo(off); err != nil {
					return fmt.Errorf("replica %s-%d: cut the tail at index %d (offset %d): %w", r.p.Topic, r.p.Index, firstIdx, off, err)
				}
				r.cfg.Logger.Info("partition replica cut an uncommitted tail", "index", firstIdx, "offset", off)
			}
		}
		mine := r.ownEntries(rd.Entries)
		checked := func(e *raftpb.Entry) bool { return mine[e.GetIndex()-firstIdx] }
		if err := r.st.AppendChecked(rd.Entries, checked); err != nil {
			return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
		}
		if from, ok := r.st.OffsetOf(firstIdx); ok {
			if err := r.p.Appended(from); err != nil {
				return err
			}
		}
		r.answer(rd.Entries, mine)
	}
	if rd.SoftState != nil || !raft.IsEmptyHardState(rd.HardState) {
		r.noteLeadership() // before the sends: a follower may answer a client next
	}
	if !raft.IsEmptyHardState(rd.HardState) {
		if err := r.st.SetHardState(rd.HardState); err != nil {
			return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
		}
		if c := rd.HardState.GetCommit(); c > r.commit {
			r.commit = c
			r.noteCommitted()
		}
	}
	if len(rd.Messages) > 0 && !sent {
		r.send(rd.Messages)
	}
	for _, e := range rd.CommittedEntries {
		var cc raftpb.ConfChangeI
		switch e.GetType() {
		case raftpb.EntryConfChange:
			var c raftpb.ConfChange
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("replica %s-%d: conf change at %d: %w", r.p.Topic, r.p.Index, e.GetIndex(), err)
			}
			cc = &c
		case raftpb.EntryConfChangeV2:
			var c raftpb.ConfChangeV2
			if err := proto.Unmarshal(e.GetData(), &c); err != nil {
				return fmt.Errorf("replica %s-%d: conf change at %d: %w", r.p.Topic, r.p.Index, e.GetIndex(), err)
			}
			cc = &c
		default:
			if err := r.applyCommitted(e); err != nil {
				return err
			}
			continue
		}
		cs := r.rn.ApplyConfChange(cc)
		if err := r.st.SetConfState(cs); err != nil {
			return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
		}
	}
	if n := len(rd.CommittedEntries); n > 0 {
		r.applied = rd.CommittedEntries[n-1].GetIndex()
	}
	r.rn.Advance(rd)
	r.releaseCache()
	// Ready hands over every unstable entry: raft's log is ours now.
	r.lastIdx, _ = r.st.LastIndex()
	r.proposed = 0
	for idx, pr := range r.pending {
		if idx > r.lastIdx {
			// Not appended (a leader change dropped it from raft's
			// unstable log before a Ready).
			r.noteLost(1)
			pr.res <- appended{err: fmt.Errorf("%w: proposal dropped by a leader change", partition.ErrNotLeader)}
			delete(r.pending, idx)
		}
	}
	r.p.SetHighWatermark(r.hwLocked())
	if r.isLeader && r.epoch.Load() < 0 {
		// The leader epoch is a term the leader committed an entry in
		// (its empty entry, at the latest): from then on its commit
		// index, hence the high watermark, is the group's.
		term := r.rn.BasicStatus().GetTerm()
		if t, err := r.st.Term(r.commit); err == nil && t == term {
			// The voters that acknowledged this leader's log end (a
			// majority did: its empty entry is committed) are in sync
			// from the epoch's first moment, not the next tick: until
			// then acks=all writes were refused with
			// NOT_ENOUGH_REPLICAS, and a client that refreshes its
			// metadata on that error (franz-go, at most every 5 s by
			// default) stalled for seconds after each election.
			r.trackISR()
			r.epoch.Store(int32(term))
			r.becoming.set(false)
		}
	}
	return nil
}

// earlyHighWatermark moves the high watermark to the commit index of rd
// before rd's entries are appended, as far as the entries this log holds
// already go (below the first of rd's entries, which may replace a
// conflicting tail): those are committed, hence fsynced on a majority,
// and readable here. Under load a leader's Ready carries both the commit
// its followers' acknowledgements moved and the next proposals, whose
// fsync the acks=all producers waiting for the commit would otherwise wait
// out too (issue 18: RF=3 acks=all with 16 producers +16%). The rest of
// the commit is published after Advance, as before.
func (r *Replica) earlyHighWatermark(rd raft.Ready) {
	c := rd.HardState.GetCommit()
	if c <= r.commit {
		return // empty hard state, or no move
	}
	if len(rd.Entries) > 0 {
		c = min(c, rd.Entries[0].GetIndex()-1)
	}
	// Committed entries that do something when applied (a start move of
	// DeleteRecords, a configuration change) are applied after the append:
	// the early move stops below the first of them, and below what rd does
	// not hand over to apply (raft may split a long commit over Readys).
	// Whoever waits for such an entry's commit (MoveStart) then finds it
	// applied, as the high watermark's move after Advance promises.
	upto := r.applied
	for _, e := range rd.CommittedEntries {
		if e.GetIndex() > c {
			break
		}
		if appliesSomething(e) {
			break
		}
		upto = e.GetIndex()
	}
	c = min(c, upto)
	if c <= r.commit {
		return
	}
	// c is at most the last index in the log (the entries after it are
	// rd's); OffsetOf refuses an index past last+1 all the same.
	if off, ok := r.st.OffsetOf(c + 1); ok {
		r.p.SetHighWatermark(off)
	}
}

// appliesSomething reports whether applying e does more than count it
// applied: a configuration change, or a start move (applyCommitted).
func appliesSomething(e *raftpb.Entry) bool {
	switch e.GetType() {
	case raftpb.EntryConfChange, raftpb.EntryConfChangeV2:
		return true
	}
	_, ok := parseStartMove(e.GetData())
	return ok
}

// releaseCache lets raftlog forget the cached entries no reader needs
// any more: those applied and, on a leader, matched by every follower it
// replicates to (one it probes, or sends a snapshot, is read from the
// segments).
func (r *Replica) releaseCache() {
	upto := r.applied
	if r.isLeader {
		r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id != r.cfg.ID && pr.State == tracker.StateReplicate {
				upto = min(upto, pr.Match)
			}
		})
	}
	r.st.ReleaseCache(upto)
}

// ownEntries reports, for each of ents, whether it is this leader's
// proposal at that index, byte for byte (the partition validated it
// before proposing, so raftlog need not check its CRC again). The slice
// is reused by the next Ready.
func (r *Replica) ownEntries(ents []*raftpb.Entry) []bool {
	r.mine = r.mine[:0]
	for _, e := range ents {
		pr := r.pending[e.GetIndex()]
		r.mine = append(r.mine, pr != nil && bytes.Equal(e.GetData(), pr.data))
	}
	return r.mine
}

// answer gives each of this leader's proposals appended in ents its
// offsets and term; mine is ownEntries(ents).
func (r *Replica) answer(ents []*raftpb.Entry, mine []bool) {
	if len(r.pending) == 0 {
		return
	}
	for k, e := range ents {
		pr := r.pending[e.GetIndex()]
		if pr == nil {
			continue
		}
		delete(r.pending, e.GetIndex())
		if !mine[k] {
			// Another entry took the index (leadership moved between
			// the proposal and this Ready).
			r.noteLost(1)
			pr.res <- appended{err: fmt.Errorf("%w: entry %d taken by another", partition.ErrNotLeader, e.GetIndex())}
			continue
		}
		first, ok1 := r.st.OffsetOf(e.GetIndex())
		next, ok2 := r.st.OffsetOf(e.GetIndex() + 1)
		if !ok1 || !ok2 {
			r.noteLost(1)
			pr.res <- appended{err: fmt.Errorf("%w: entry %d left the log", partition.ErrNotLeader, e.GetIndex())}
			continue
		}
		r.noteAppended(e.GetIndex(), pr.at)
		pr.res <- appended{first: first, last: next - 1, term: int32(e.GetTerm())}
	}
}

// trackISR, on each tick of the leader, notes which voters reached the
// leader's last index of the previous tick and were heard from within
// the lag time (as Kafka drops a follower that stops fetching: on an idle
// partition a dead follower's match index still equals the log end), and
// publishes the ISR size.
func (r *Replica) trackISR() {
	if !r.isLeader {
		return
	}
	now := r.cfg.Now()
	target := r.lastSeen
	n := int32(0)
	preferredCaughtUp := false
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		if typ != raft.ProgressTypePeer {
			return
		}
		if id == r.cfg.ID || pr.Match >= target && now.Sub(r.heard[id]) <= r.cfg.LagTime {
			r.caughtUp[id] = now
		}
		if id == r.cfg.Preferred && pr.Match >= target && target > 0 {
			preferredCaughtUp = true
		}
		if t, ok := r.caughtUp[id]; ok && now.Sub(t) <= r.cfg.LagTime {
			n++
		}
	})
	r.lastSeen, _ = r.st.LastIndex()
	r.inSync.Store(n)
	// Not to a replica whose broker the cluster sees down or fenced
	// (Config.Live): a broker just restarted is fenced until the quorum
	// hears from it, and a leader on it is listed as none, so clients saw
	// LEADER_NOT_AVAILABLE and franz-go waited its 5 s metadata age.
	if preferredCaughtUp && r.cfg.Preferred != r.cfg.ID && r.ticks >= r.balanceAt && (r.cfg.Live == nil || r.cfg.Live(r.cfg.Preferred)) {
		r.cfg.Logger.Info("handing leadership to the preferred replica", "to", r.cfg.Preferred)
		r.rn.TransferLeader(r.cfg.Preferred)
		r.balanceAt = r.ticks + balanceDelayTicks
	}
}

// balanceDelayTicks: a leader hands over to the preferred replica no
// sooner than this many ticks after it took over or last tried (10 s at
// the default tick), so a replica that just came back is caught up and a
// failing one does not bounce leadership.
const balanceDelayTicks = 100

// isrLocked is the ISR as of the last tick (leader only), sorted.
func (r *Replica) isrLocked() []uint64 {
	if !r.isLeader {
		return nil
	}
	now := r.cfg.Now()
	var out []uint64
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, _ tracker.Progress) {
		if typ != raft.ProgressTypePeer {
			return
		}
		if t, ok := r.caughtUp[id]; ok && (r.quiesced || now.Sub(t) <= r.cfg.LagTime) {
			out = append(out, id)
		}
	})
	slices.Sort(out)
	return out
}

// report calls OnChange when the view changed.
func (r *Replica) report() {
	if r.cfg.OnChange == nil {
		return
	}
	v := Leadership{Leader: r.leader.Load(), Epoch: r.epoch.Load(), ISR: r.isrLocked()}
	if v.Equal(r.view) {
		return
	}
	r.view = v
	r.cfg.OnChange(v)
}

func (r *Replica) statusLocked() Status {
	bs := r.rn.BasicStatus()
	s := Status{
		Leadership:    Leadership{Leader: bs.Lead, Epoch: r.epoch.Load(), ISR: r.isrLocked()},
		State:         bs.RaftState.String(),
		Term:          bs.GetTerm(),
		Commit:        r.commit,
		HighWatermark: r.p.HighWatermark(),
	}
	s.LastIndex, _ = r.st.LastIndex()
	if r.isLeader {
		s.Match = map[uint64]uint64{}
		r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) { s.Match[id] = pr.Match })
	}
	return s
}
