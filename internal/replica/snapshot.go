package replica

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Snapshots of a replicated partition (issue 18): a follower that fell
// behind the leader's log start (retention moved it past the follower's
// last entry) gets the log start offset and the producer state as of it
// (partition.ReplicaSnapshot), restarts its log empty there, and takes the
// entries from it. See the package doc.

// openStorage opens raft's storage over the partition's log: a snapshot
// install a crash interrupted is finished (the log reset, then the
// partition takes the producer state the snapshot carried), and the
// leader's snapshots come from snapshotSource.
func (r *Replica) openStorage(l *seglog.Log) (*raftlog.Storage, error) {
	st, err := raftlog.OpenWith(r.cfg.FS, l, raftlog.Options{AfterReset: r.p.FinishReset})
	if err != nil {
		return nil, err
	}
	st.SetSnapshotSource(r.snapshotSource)
	return st, nil
}

// snapshotSource is what raft sends a follower behind FirstIndex: index
// FirstIndex-1, the anchor's term and configuration, and as data the log
// start offset and the producer state as of it. It runs on the goroutine
// (raft asks while it handles a message or a tick), so the log start does
// not move meanwhile: retention runs there too.
func (r *Replica) snapshotSource() (*raftpb.Snapshot, error) {
	meta, start, ok := r.st.SnapshotMeta()
	if !ok {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	r.cfg.Logger.Info("sending a snapshot to a follower behind the log start", "index", meta.GetIndex(), "log_start_offset", start)
	return &raftpb.Snapshot{Data: r.p.ReplicaSnapshot(start), Metadata: meta}, nil
}

// installSnapshot makes this follower's log what the leader's snapshot
// says: the producer state put aside durably first, then raft's storage
// commits to the reset (its state file), restarts the log empty at the
// leader's log start offset and hands the partition the producer state
// (FinishReset); entries from there follow as usual.
func (r *Replica) installSnapshot(snap *raftpb.Snapshot) error {
	meta := snap.GetMetadata()
	start, err := r.p.PrepareReset(snap.GetData())
	if err != nil {
		return fmt.Errorf("replica %s-%d: snapshot at %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), err)
	}
	if err := r.st.InstallSnapshotAt(meta, start); err != nil {
		return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	r.commit = max(r.commit, meta.GetIndex())
	r.cfg.Logger.Info("installed a snapshot from the leader: the log restarts at its log start offset",
		"index", meta.GetIndex(), "term", meta.GetTerm(), "log_start_offset", start)
	return nil
}

// reportSnapshots tells raft that the snapshots among msgs were sent, as
// soon as they are handed to the transport (which cannot say whether they
// arrived). Without it the leader keeps that follower's progress paused in
// StateSnapshot until the follower acknowledges the snapshot: a MsgSnap
// lost on the way, or a follower that crashed while installing it, left the
// follower behind for good. Reported as finished, raft probes the follower
// after the snapshot's index; a follower that lacks it rejects the probe
// and gets the snapshot again.
func (r *Replica) reportSnapshots(msgs []*raftpb.Message) {
	for _, m := range msgs {
		if m.GetType() == raftpb.MsgSnap {
			r.rn.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
		}
	}
}
