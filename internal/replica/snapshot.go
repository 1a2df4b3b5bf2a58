package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Snapshots of a replicated partition (issue 18): a follower that fell
// behind the leader's raft anchor (retention moved it past the follower's
// last entry, or a compacted topic's anchor did) gets the producer state
// as of the anchor (partition.ReplicaSnapshot) and, when the leader's log
// starts below its anchor, the batches there (issue 20); it restarts its
// log at the leader's log start with them, and takes the entries from the
// anchor on. See the package doc.

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
// FirstIndex-1, the anchor's term and configuration, and as data the
// producer state as of the anchor and, when the log holds batches below
// the anchor (a compacted topic: compaction.go), those batches and the log
// start (encodeRegionSnapshot), so that the follower's copy has no hole. A
// region over Config.MaxSnapshotRegionBytes is streamed when the
// transport can (Config.SendSnapshot: the Data is then a reference,
// snapstream.go); otherwise it is not sent: the follower stays behind
// (raft.ErrSnapshotTemporarilyUnavailable), never installs a log with a
// hole. It runs on the goroutine (raft asks while it handles a
// message or a tick), so neither the log start nor the anchor moves
// meanwhile: retention and the anchor move there too.
func (r *Replica) snapshotSource() (*raftpb.Snapshot, error) {
	meta, anchor, ok := r.st.SnapshotMeta()
	if !ok {
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	if _, cs, _ := r.st.InitialState(); !proto.Equal(cs, meta.GetConfState()) {
		// A conf change since the anchor: a learner it added is not in
		// the anchor's configuration, and raft refuses a snapshot that
		// does not hold the recipient. Snapshot at the applied index
		// instead, with the log up to it.
		if meta, anchor, ok = r.st.SnapshotMetaApplied(r.rn.BasicStatus().Applied); !ok {
			return nil, raft.ErrSnapshotTemporarilyUnavailable
		}
	}
	start, region, err := r.st.Region(anchor, r.cfg.MaxSnapshotRegionBytes)
	if errors.Is(err, raftlog.ErrRegionTooLarge) && r.cfg.SendSnapshot != nil {
		return r.streamSnapshot(meta, r.st.StartOffset(), anchor), nil
	}
	if err != nil {
		if now := r.cfg.Now(); now.Sub(r.regionWarned) >= time.Minute {
			r.regionWarned = now
			r.cfg.Logger.Warn("cannot send a snapshot to a follower behind the anchor: it stays behind", "err", err)
		}
		return nil, raft.ErrSnapshotTemporarilyUnavailable
	}
	data := r.p.ReplicaSnapshot(anchor)
	if start < anchor {
		data = encodeRegionSnapshot(data, start, region)
	}
	r.cfg.Logger.Info("sending a snapshot to a follower behind the log start", "index", meta.GetIndex(),
		"log_start_offset", start, "anchor_offset", anchor, "region_bytes", len(region))
	return &raftpb.Snapshot{Data: data, Metadata: meta}, nil
}

// installSnapshot makes this follower's log what the leader's snapshot
// says: the producer state put aside durably first, then raft's storage
// commits to the reset (its state file), restarts the log at the leader's
// log start offset (empty, or holding the region below the leader's
// anchor) and hands the partition the producer state (FinishReset);
// entries from the anchor follow as usual.
func (r *Replica) installSnapshot(snap *raftpb.Snapshot) error {
	meta := snap.GetMetadata()
	if ref, ok, err := decodeStreamSnapshot(snap.GetData()); ok {
		if err != nil {
			return fmt.Errorf("replica %s-%d: snapshot at %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), err)
		}
		return r.installStreamed(meta, ref)
	}
	ps, start, region, hasRegion, err := decodeRegionSnapshot(snap.GetData())
	if err != nil {
		return fmt.Errorf("replica %s-%d: snapshot at %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), err)
	}
	anchor, err := r.p.PrepareReset(ps)
	if err != nil {
		return fmt.Errorf("replica %s-%d: snapshot at %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), err)
	}
	if hasRegion {
		err = r.st.InstallSnapshotRegion(meta, start, anchor, region)
	} else {
		start = anchor
		err = r.st.InstallSnapshotAt(meta, anchor)
	}
	if err != nil {
		return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	r.commit = max(r.commit, meta.GetIndex())
	r.cfg.Logger.Info("installed a snapshot from the leader: the log restarts at its log start offset",
		"index", meta.GetIndex(), "term", meta.GetTerm(), "log_start_offset", start, "anchor_offset", anchor, "region_bytes", len(region))
	return nil
}

// A snapshot's Data is the partition's snapshot (partition.ReplicaSnapshot,
// whose first byte is its version, 1) when the leader's log starts at its
// anchor, or this envelope when the log holds batches below the anchor
// (big endian):
//
//	| u8 regionSnapshotTag (2) | u32 len | partition snapshot |
//	| i64 log start offset | the batches in [log start, anchor), as stored |
const regionSnapshotTag = 2

// errBadSnapshot: a snapshot's Data does not decode.
var errBadSnapshot = errors.New("replica: bad snapshot data")

func encodeRegionSnapshot(ps []byte, start int64, region []byte) []byte {
	b := make([]byte, 0, 1+4+len(ps)+8+len(region))
	b = append(b, regionSnapshotTag)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ps)))
	b = append(b, ps...)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	return append(b, region...)
}

// decodeRegionSnapshot splits a snapshot's Data: the partition snapshot,
// and with an envelope the log start and the region (aliasing data).
func decodeRegionSnapshot(data []byte) (ps []byte, start int64, region []byte, ok bool, err error) {
	if len(data) == 0 || data[0] != regionSnapshotTag {
		return data, 0, nil, false, nil
	}
	if len(data) < 5 {
		return nil, 0, nil, false, errBadSnapshot
	}
	n := binary.BigEndian.Uint32(data[1:])
	rest := data[5:]
	if uint64(n)+8 > uint64(len(rest)) {
		return nil, 0, nil, false, errBadSnapshot
	}
	ps, rest = rest[:n], rest[n:]
	start = int64(binary.BigEndian.Uint64(rest))
	if start < 0 {
		return nil, 0, nil, false, errBadSnapshot
	}
	return ps, start, rest[8:], true, nil
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

// installStreamed is installSnapshot for a snapshot whose region was
// streamed: its spool, complete (step let the MsgSnap through only then),
// becomes the log below the anchor (raftlog.InstallSnapshotRegionFile);
// any other spool goes.
func (r *Replica) installStreamed(meta *raftpb.SnapshotMetadata, ref streamRef) error {
	anchor, err := r.p.PrepareReset(ref.ps)
	if err != nil {
		return fmt.Errorf("replica %s-%d: snapshot at %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), err)
	}
	if anchor != ref.anchor {
		return fmt.Errorf("replica %s-%d: snapshot at %d: anchor %d, producer state as of %d: %w", r.p.Topic, r.p.Index, meta.GetIndex(), ref.anchor, anchor, errBadSnapshot)
	}
	path := r.spoolPath(ref.id)
	if err := r.removeSpools(path); err != nil {
		return err
	}
	if err := r.st.InstallSnapshotRegionFile(meta, ref.start, anchor, path); err != nil {
		return fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	}
	r.commit = max(r.commit, meta.GetIndex())
	r.cfg.Logger.Info("installed a streamed snapshot from the leader: the log restarts at its log start offset",
		"index", meta.GetIndex(), "term", meta.GetTerm(), "log_start_offset", ref.start, "anchor_offset", anchor, "snapshot_id", fmt.Sprintf("%016x", ref.id))
	return nil
}
