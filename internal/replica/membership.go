package replica

import (
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// Membership changes (issue 18): the group's leader moves its voters to a
// target set one raft configuration change at a time, each proposed only
// once the previous one is applied here:
//
//  1. every target replica that is not a voter is added as a learner (one
//     ConfChangeV2 each; a learner starts empty, with Config.Join, and gets
//     the log from the first entry by raft's MsgApp), and learners the
//     target does not name are removed;
//  2. once every learner's match index has reached the leader's commit
//     index (and it answered recently), one joint change (explicit
//     transition) promotes them and removes the voters the target drops:
//     from then on a commit needs a majority of both the old and the new
//     voters;
//  3. the leader leaves the joint configuration (an empty ConfChangeV2),
//     after first handing leadership to a new voter when it is not one.
//
// Reconfigure takes one step per call; the caller (package cluster) calls
// it on the leader while the metadata names a target other than the
// group's voters, and records the end when it reports Done.

// membership is the leader's state of its changes, owned by the goroutine.
type membership struct {
	// confIdx is the index of the last conf change this replica
	// proposed: no other is proposed before it is applied (raft allows
	// one pending change).
	confIdx uint64
	// confTerm is the term confIdx was proposed in: a later leadership
	// (of this replica or another) may have cut that entry, and raft
	// guards a new leader's pending change itself.
	confTerm uint64
	// lost counts heartbeats dropped by lostData (any goroutine).
	lost atomic.Uint64
}

// Membership is a group's configuration as Reconfigure saw it (raft ids,
// sorted).
type Membership struct {
	Leader   bool     // this replica leads (the other fields are its view)
	Voters   []uint64 // the incoming voters
	Outgoing []uint64 // the outgoing voters while the configuration is joint
	Learners []uint64
	// Done: the voters are the target, with no learner and no joint
	// configuration, applied by this leader.
	Done bool
	// Step says what the call did (a log line), "" when it waited.
	Step string
}

// Reconfigure takes the next step towards target (raft ids) when this
// replica leads; see the comment at the top of membership.go.
func (r *Replica) Reconfigure(target []uint64) (Membership, error) {
	var m Membership
	var err error
	if !r.do(func() {
		if m, err = r.reconfigure(target); m.Step != "" {
			r.wake() // a quiesced leader ticks again while its configuration changes
		}
	}) {
		return Membership{}, r.stoppedErr()
	}
	return m, err
}

// SetPreferred changes the preferred leader (0: none, the automatic
// hand-over off).
func (r *Replica) SetPreferred(id uint64) {
	r.do(func() {
		if r.cfg.Preferred != id {
			r.wake() // a quiesced leader looks at its hand-over again
		}
		r.cfg.Preferred = id
	})
}

func sortedKeys[V any](ms ...map[uint64]V) []uint64 {
	var out []uint64
	for _, m := range ms {
		for k := range maps.Keys(m) {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

func (r *Replica) reconfigure(target []uint64) (Membership, error) {
	st := r.rn.Status()
	if st.RaftState != raft.StateLeader || r.epoch.Load() < 0 {
		return Membership{}, nil
	}
	cfg := st.Config
	m := Membership{
		Leader:   true,
		Voters:   sortedKeys(cfg.Voters[0]),
		Outgoing: sortedKeys(cfg.Voters[1]),
		Learners: sortedKeys(cfg.Learners, cfg.LearnersNext),
	}
	want := slices.Sorted(slices.Values(target))
	want = slices.Compact(want)
	if len(want) == 0 {
		return m, fmt.Errorf("replica %s-%d: an empty target", r.p.Topic, r.p.Index)
	}
	if st.GetTerm() == r.members.confTerm && st.Applied < r.members.confIdx {
		return m, nil // the previous change is not applied yet
	}
	if len(m.Outgoing) > 0 {
		if slices.Contains(m.Voters, r.cfg.ID) {
			m.Step = "leave the joint configuration"
			return m, r.proposeConf(&raftpb.ConfChangeV2{})
		}
		// This leader is not a voter of the new configuration: the new
		// voters take over and leave the joint configuration themselves.
		if st.LeadTransferee != 0 {
			return m, nil
		}
		var best, match uint64
		for _, id := range m.Voters {
			if pr, ok := st.Progress[id]; ok && pr.RecentActive && pr.Match >= match {
				best, match = id, pr.Match
			}
		}
		if best != 0 {
			m.Step = fmt.Sprintf("hand leadership to %d, a voter of the new configuration", best)
			r.rn.TransferLeader(best)
		}
		return m, nil
	}
	if slices.Equal(m.Voters, want) && len(m.Learners) == 0 {
		m.Done = true
		return m, nil
	}
	for _, id := range m.Learners {
		if !slices.Contains(want, id) {
			m.Step = fmt.Sprintf("remove learner %d", id)
			return m, r.proposeConf(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
				{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: &id}}})
		}
	}
	for _, id := range want {
		if !slices.Contains(m.Voters, id) && !slices.Contains(m.Learners, id) {
			m.Step = fmt.Sprintf("add learner %d", id)
			return m, r.proposeConf(&raftpb.ConfChangeV2{Changes: []*raftpb.ConfChangeSingle{
				{Type: raftpb.ConfChangeAddLearnerNode.Enum(), NodeId: &id}}})
		}
	}
	for _, id := range m.Learners {
		pr, ok := st.Progress[id]
		if !ok || !pr.RecentActive || pr.Match < st.GetCommit() {
			return m, nil // still catching up
		}
	}
	cc := &raftpb.ConfChangeV2{Transition: raftpb.ConfChangeTransitionJointExplicit.Enum()}
	for _, id := range want {
		if !slices.Contains(m.Voters, id) {
			cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: raftpb.ConfChangeAddNode.Enum(), NodeId: &id})
		}
	}
	for _, id := range m.Voters {
		if !slices.Contains(want, id) {
			cc.Changes = append(cc.Changes, &raftpb.ConfChangeSingle{Type: raftpb.ConfChangeRemoveNode.Enum(), NodeId: &id})
		}
	}
	m.Step = fmt.Sprintf("enter the joint configuration %v -> %v", m.Voters, want)
	return m, r.proposeConf(cc)
}

// proposeConf proposes a conf change; the entry takes an index like a
// client batch, so the proposals' index tracking (pending) counts it.
func (r *Replica) proposeConf(cc *raftpb.ConfChangeV2) error {
	if err := r.rn.ProposeConfChange(cc); err != nil {
		return fmt.Errorf("replica %s-%d: propose a conf change: %w", r.p.Topic, r.p.Index, err)
	}
	r.proposed++
	r.members.confIdx = r.lastIdx + r.proposed
	r.members.confTerm = r.rn.BasicStatus().GetTerm()
	return nil
}

// lostData drops a heartbeat whose commit index is past this replica's
// log, logging why. The leader sends a follower min(its match index, the
// commit index), and a follower acknowledges only what it has persisted,
// so such a heartbeat means this replica lost entries it had acknowledged
// (a wiped or replaced disk under a node id still in the group): raft
// would panic (commitTo out of range) and take the broker down. Dropped,
// the replica stays out of the group's way (the leader takes its
// rejections of older entries as stale) and the group goes on with the
// other voters. The repair is a membership change: reassign the
// partition without this broker, then with it again; it is then added
// as a new learner and copies the log.
func (r *Replica) lostData(m *raftpb.Message) bool {
	if m.GetType() != raftpb.MsgHeartbeat || m.GetCommit() == 0 {
		return false
	}
	last, err := r.st.LastIndex()
	if err != nil || m.GetCommit() <= last {
		return false
	}
	if r.members.lost.Add(1)%600 == 1 {
		r.cfg.Logger.Error("partition replica lost entries it had acknowledged (its log ends before what the leader knows it stored): ignored by the group until it is reassigned away and back",
			"leader", m.GetFrom(), "leader_commit", m.GetCommit(), "last_index", last)
	}
	return true
}
