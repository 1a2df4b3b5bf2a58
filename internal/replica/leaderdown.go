package replica

import (
	"slices"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// A fast election when the leader's node is known to be down.
//
// raft notices a dead leader when a follower's randomized election timeout
// runs out with no word from it: 1 to 2 s at the default tick (10 to 20
// ticks), and PreVote with CheckQuorum makes the other voters refuse a
// candidate while their own lease from the leader lasts. But a killed
// broker's connections close at once, and the cluster's liveness view
// (internal/cluster/liveness.go: no raftnet connection from the node, or
// fenced by the metadata quorum) passes that on every 250 ms through
// NodesDown. Then one follower, the same one on every node that shares
// the view (the live voter of the lowest raft id), campaigns at once as a
// leadership transfer target would: raft's MsgTimeoutNow, stepped as if
// from the dead leader, makes it a candidate whose vote requests the other
// voters take despite their lease (they still refuse a log behind
// theirs, so raft's safety is untouched). Once per term, and only when
// nothing came from the leader for leaderSilentTicks awake ticks, so that
// a connection that drops while the leader is alive does not depose it: a
// quiesced follower (which hears nothing from a live leader either) first
// wakes and probes the leader, which wakes and heartbeats if alive, and a
// later pass decides. If it fails (its log was behind, or
// another node's view chose another candidate), the election timeouts
// decide as before.

// leaderSilentTicks: ticks with no message from the leader before an
// awake follower trusts the liveness view (the leader heartbeats every
// tick).
const leaderSilentTicks = 2

// leaderDown runs on the goroutine when NodesDown saw the leader's node
// down.
func (r *Replica) leaderDown(down func(raftID uint64) bool) {
	bs := r.rn.BasicStatus()
	lead := bs.Lead
	if bs.RaftState != raft.StateFollower || lead == 0 || lead == r.cfg.ID || !down(lead) || r.fastTerm == bs.GetTerm() {
		return
	}
	if r.quiesced || (!r.heardSinceWake && !r.probed) {
		// A quiesced follower hears nothing from a live leader either
		// (nor does one that woke since: the leader may still be
		// quiesced), and the view can be wrong about it (its connection
		// to this node dropped and is being redialled): forcing an
		// election now would depose a live leader whose lease PreVote
		// respects. So wake, wake the leader too (any message but a
		// heartbeat response does; this one tells raft nothing new), and
		// let a later pass decide once leaderSilentTicks ticks went by
		// without a word from it.
		r.wake()
		r.leadHeard, r.probed = r.ticks, true
		r.probeLeader(lead, bs.GetTerm())
		return
	}
	if r.ticks-r.leadHeard < leaderSilentTicks {
		return
	}
	voters := r.rn.Status().Config.Voters.IDs()
	if _, ok := voters[r.cfg.ID]; !ok {
		return // a learner does not campaign
	}
	var live []uint64
	for id := range voters {
		if id != lead && !down(id) {
			live = append(live, id)
		}
	}
	if len(live) == 0 || slices.Min(live) != r.cfg.ID || 2*len(live) <= len(voters) {
		// Another replica campaigns, or no majority is left to elect.
		return
	}
	r.fastTerm = bs.GetTerm()
	r.wake()
	r.cfg.Logger.Info("partition replica: the leader's node is down, campaigning now", "leader", lead, "term", bs.GetTerm())
	m := &raftpb.Message{Type: raftpb.MessageType_MsgTimeoutNow.Enum(), From: proto.Uint64(lead), To: proto.Uint64(r.cfg.ID), Term: proto.Uint64(bs.GetTerm())}
	if err := r.rn.Step(m); err != nil {
		r.cfg.Logger.Debug("partition replica: fast election refused", "err", err)
	}
}

// probeLeader sends lead a message that wakes it if it is quiesced and
// alive: an append response at this follower's commit index, which is
// true of any follower (entries up to its commit index are the leader's,
// raft's log matching), so the leader takes it as an acknowledgement it
// had already (raft marks the follower recently active, nothing more).
func (r *Replica) probeLeader(lead, term uint64) {
	r.cfg.Send([]*raftpb.Message{{
		Type: raftpb.MessageType_MsgAppResp.Enum(), From: proto.Uint64(r.cfg.ID), To: proto.Uint64(lead),
		Term: proto.Uint64(term), Index: proto.Uint64(r.commit),
	}})
}
