package replica

import (
	"bytes"
	"slices"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"go.etcd.io/raft/v3/tracker"
	"google.golang.org/protobuf/proto"
)

// Quiescence (issue 18, CockroachDB's approach): an idle group stops
// ticking, so it sends no heartbeats and runs no election timer. See the
// package doc ("Quiescence") for the rules and why they keep the group
// live.

// quiesceCtx marks the leader's last heartbeat before it quiesces. raft
// echoes a heartbeat's Context in the follower's MsgHeartbeatResp, and the
// leader reads that as a read-index ack (a little-endian uint64, kept as
// the max of what it had): the first 8 bytes are zero, so the ack is 0
// and changes nothing; the tail tells it from raft's own contexts.
var quiesceCtx = []byte{0, 0, 0, 0, 0, 0, 0, 0, 's', 't', 'r', 'o', 'm', '-', 'q', 'z'}

// quiesceState is owned by the goroutine but for the atomics and wakec.
type quiesceState struct {
	quiesced bool // the goroutine's view: no Tick while set
	// isQuiesced mirrors quiesced for other goroutines (Quiesced,
	// NodesDown).
	isQuiesced atomic.Bool
	// qVoters are the group's members as the leader saw them when it
	// quiesced (nil on a follower): NodesDown wakes a quiesced leader
	// that lost most of them, so CheckQuorum can step it down.
	qVoters atomic.Pointer[[]uint64]
	// qISR are the members a quiesced leader keeps in its ISR (caughtUp
	// as it quiesced), for NodesDown, which runs on another goroutine.
	qISR atomic.Pointer[[]uint64]
	// wokeAt is r.ticks at the last wake: a leader stays awake an
	// election timeout after it, so CheckQuorum gets a pass (a leader
	// woken because its followers are unreachable steps down rather than
	// quiescing again at once) and a trickle of writes does not make it
	// quiesce and wake at every one.
	wokeAt          int
	wakec           chan struct{} // buffered(1): Unquiesce's request
	tickc           chan time.Time
	quiesces, wakes atomic.Uint64
}

// isQuiesceHeartbeat reports whether m is a leader's quiesce heartbeat.
func isQuiesceHeartbeat(m *raftpb.Message) bool {
	return m.GetType() == raftpb.MessageType_MsgHeartbeat && bytes.Equal(m.GetContext(), quiesceCtx)
}

// Quiesced reports whether the replica is quiesced (not ticking).
func (r *Replica) Quiesced() bool { return r.isQuiesced.Load() }

// Unquiesce wakes the replica if it is quiesced: it ticks again, so a
// follower campaigns once its election timeout passes with no word from
// the leader. It never blocks (the goroutine does the work).
func (r *Replica) Unquiesce() {
	if !r.isQuiesced.Load() {
		return
	}
	select {
	case r.wakec <- struct{}{}:
	default: // a wake is already on its way
	}
}

// NodesDown is the liveness hook (internal/cluster calls it for every
// replica while some node is fenced or unreachable): down reports whether
// the node of a raft id is down. A quiesced follower whose leader is down
// wakes (and elects a new leader after its election timeout); a quiesced
// leader that lost a majority of its members wakes (CheckQuorum then steps
// it down). It returns whether it woke the replica. A replica that is
// awake is left alone, so a long outage costs nothing per call.
func (r *Replica) NodesDown(down func(raftID uint64) bool) bool {
	// Read before the fast election's hand-over below: its goroutine
	// may wake this replica before the check.
	quiesced := r.isQuiesced.Load()
	if lead := r.leader.Load(); lead != 0 && lead != r.cfg.ID && down(lead) {
		// The leader is gone: a fast election (leaderdown.go).
		select {
		case r.downc <- down:
		default: // one is on its way
		}
	}
	if !quiesced {
		return false
	}
	lead := r.leader.Load()
	if lead != r.cfg.ID {
		if lead == 0 || down(lead) {
			r.Unquiesce()
			return true
		}
		return false
	}
	vs := r.qVoters.Load()
	if vs == nil {
		return false
	}
	// A member down that this leader still counts in the ISR wakes it
	// too: it quiesces again (an election timeout on) without it, so the
	// ISR drops the dead member as Kafka's would.
	n, inISR := 0, false
	for _, id := range *vs {
		if id != r.cfg.ID && down(id) {
			n++
			if isr := r.qISR.Load(); isr != nil && slices.Contains(*isr, id) {
				inISR = true
			}
		}
	}
	if 2*n >= len(*vs) || inISR {
		r.Unquiesce()
		return true
	}
	return false
}

// NodesUp is NodesDown's counterpart, called by the cluster for the nodes
// that were down and are back (up reports them by raft id): a quiesced
// leader with a member there wakes, so its next tick heartbeats that
// member's replica (restarted: awake, with no leader known) within a tick,
// before the replica's election timeout runs out and it campaigns. So a
// broker's restart does not turn into a PreVote from each of its
// replicas. It returns whether it woke the replica.
func (r *Replica) NodesUp(up func(raftID uint64) bool) bool {
	if !r.isQuiesced.Load() || r.leader.Load() != r.cfg.ID {
		return false
	}
	vs := r.qVoters.Load()
	if vs == nil {
		return false
	}
	for _, id := range *vs {
		if id != r.cfg.ID && up(id) {
			r.Unquiesce()
			return true
		}
	}
	return false
}

// leaving runs as the goroutine ends (Stop, or a storage failure): a
// leader sends each member a plain heartbeat (what raft itself sends, with
// no commit news), which wakes a quiesced follower. Its broker may well
// live on, connected, so no liveness signal would wake them; awake, they
// elect a new leader once their election timeout passes with no word.
func (r *Replica) leaving() {
	if !r.isLeader {
		return
	}
	bs := r.rn.BasicStatus()
	var msgs []*raftpb.Message
	r.rn.WithProgress(func(id uint64, _ raft.ProgressType, _ tracker.Progress) {
		if id != r.cfg.ID {
			msgs = append(msgs, &raftpb.Message{
				Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(id), From: proto.Uint64(r.cfg.ID),
				Term: proto.Uint64(bs.GetTerm()), Commit: proto.Uint64(0),
			})
		}
	})
	if len(msgs) > 0 {
		r.cfg.Send(msgs)
	}
}

// onTick is a tick on the goroutine: nothing while quiesced; a leader
// with nothing left to do quiesces instead of ticking.
func (r *Replica) onTick() {
	if r.quiesced || r.maybeQuiesce() {
		return
	}
	r.ticks++
	if r.bootHold > 0 && r.leader.Load() == 0 {
		// A new group's other replicas leave the first election to the
		// preferred one (maybeBootCampaign): no election timer yet.
		r.bootHold--
		return
	}
	r.bootHold = 0
	r.rn.Tick()
	r.trackISR()
}

// beforeStep is called with each message for this replica before raft
// steps it; it returns whether the message is a quiesce heartbeat (then
// afterQuiesceHeartbeat follows the step). A quiesced replica wakes on
// any message but a quiesce heartbeat or, on a leader, a heartbeat
// response: those answer the last heartbeats sent before quiescing and
// say only that a follower is there.
func (r *Replica) beforeStep(m *raftpb.Message) bool {
	qh := isQuiesceHeartbeat(m)
	if r.quiesced && !qh && (!r.isLeader || m.GetType() != raftpb.MessageType_MsgHeartbeatResp) {
		r.wake()
	}
	return qh
}

// afterQuiesceHeartbeat quiesces a follower that took the heartbeat m
// from its leader, in its term.
func (r *Replica) afterQuiesceHeartbeat(m *raftpb.Message) {
	bs := r.rn.BasicStatus()
	if bs.RaftState != raft.StateFollower || bs.Lead != m.GetFrom() || bs.GetTerm() != m.GetTerm() {
		return
	}
	r.leader.Store(bs.Lead)
	r.noteLeadership()
	r.qVoters.Store(nil)
	r.setQuiesced(true)
}

// maybeQuiesce quiesces a leader that has nothing pending: its proposals
// answered and none queued, no Ready, no leadership transfer under way,
// everything appended committed and applied, every member (voters and
// learners) replicating and matched at the last index but those
// Config.Live says are down, and no hand-over
// to the preferred replica due (a live preferred replica that does not
// lead), a majority recently heard from, and an election timeout since it
// last woke. It sends each member a quiesce heartbeat carrying the commit
// index, so every follower's high watermark is the leader's.
func (r *Replica) maybeQuiesce() bool {
	if !r.isLeader || r.epoch.Load() < 0 || len(r.pending) > 0 || r.proposed > 0 || len(r.propc) > 0 || r.rn.HasReady() ||
		r.ticks-r.wokeAt < r.cfg.ElectionTicks {
		return false
	}
	bs := r.rn.BasicStatus()
	last, _ := r.st.LastIndex()
	if bs.RaftState != raft.StateLeader || bs.LeadTransferee != 0 || bs.GetCommit() != last || bs.Applied != last {
		return false
	}
	idle := true
	var members, caughtUp []uint64
	voters, active := 0, 0
	r.rn.WithProgress(func(id uint64, typ raft.ProgressType, pr tracker.Progress) {
		members = append(members, id)
		if typ == raft.ProgressTypePeer {
			voters++
			if id == r.cfg.ID || pr.RecentActive {
				active++
			}
		}
		if id == r.cfg.ID {
			return
		}
		if r.cfg.Live != nil && !r.cfg.Live(id) {
			// Down: it gets no quiesce heartbeat, is not in the ISR
			// kept while quiesced (matched or not: a dead follower of an
			// idle partition is matched), and catches up when it is
			// back (NodesUp, or its PreVote, wakes this leader).
			return
		}
		if pr.Match != last || pr.State != tracker.StateReplicate {
			idle = false
		}
		caughtUp = append(caughtUp, id)
		if id == r.cfg.Preferred && (r.cfg.Live != nil || r.cfg.Now().Sub(r.heard[id]) <= r.cfg.LagTime) {
			// trackISR hands over to it. Live (the broker's view) says it
			// is up; without that view, heard from within the lag time.
			// Not raft's RecentActive: CheckQuorum clears it every
			// election timeout, and a tick before its next answer
			// quiesced this leader with the hand-over never made.
			idle = false
		}
	})
	// A leader quiesces only while it knows a majority is there (raft's
	// RecentActive, which CheckQuorum clears every election timeout).
	if !idle || 2*active <= voters {
		return false
	}
	msgs := make([]*raftpb.Message, 0, len(caughtUp))
	for _, id := range caughtUp {
		msgs = append(msgs, &raftpb.Message{
			Type: raftpb.MessageType_MsgHeartbeat.Enum(), To: proto.Uint64(id), From: proto.Uint64(r.cfg.ID),
			Term: proto.Uint64(bs.GetTerm()), Commit: proto.Uint64(last), Context: quiesceCtx,
		})
	}
	// The ISR is the members caught up (and this leader), and stays so
	// while nothing is written (isrLocked keeps them in while quiesced).
	now := r.cfg.Now()
	clear(r.caughtUp)
	r.caughtUp[r.cfg.ID] = now
	for _, id := range caughtUp {
		r.caughtUp[id] = now
	}
	r.inSync.Store(int32(len(r.caughtUp)))
	r.qISR.Store(&caughtUp)
	r.qVoters.Store(&members)
	r.setQuiesced(true)
	if len(msgs) > 0 {
		r.cfg.Send(msgs)
	}
	return true
}

// wake ends quiescence: ticks again. On a leader, the members stay in
// the ISR from now (they were caught up until now).
func (r *Replica) wake() {
	if !r.quiesced {
		return
	}
	if r.isLeader {
		now := r.cfg.Now()
		for id := range r.caughtUp {
			r.caughtUp[id] = now
		}
	}
	r.wokeAt = r.ticks
	r.heardSinceWake, r.probed = false, false
	r.qVoters.Store(nil)
	r.setQuiesced(false)
}

func (r *Replica) setQuiesced(q bool) {
	r.quiesced = q
	r.isQuiesced.Store(q)
	if q {
		r.quiesces.Add(1)
	} else {
		r.wakes.Add(1)
	}
	if r.cfg.Ticker != nil {
		r.cfg.Ticker.set(r, !q)
	}
}

// tickSource is the channel the goroutine takes ticks from: Config.Tick
// (tests), the node's shared Ticker, or a ticker of its own; stop ends
// what it started.
func (r *Replica) tickSource() (tick <-chan time.Time, stop func()) {
	switch {
	case r.cfg.Tick != nil:
		return r.cfg.Tick, func() {}
	case r.cfg.Ticker != nil:
		r.cfg.Ticker.set(r, true)
		return r.tickc, func() { r.cfg.Ticker.set(r, false) }
	default:
		t := time.NewTicker(r.cfg.TickInterval)
		return t.C, t.Stop
	}
}
