package replica

import (
	"errors"
	"math"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/tracker"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Compaction of a replicated partition (cleanup.policy=compact): the log
// cleaner removes batches, which must never be raft entries. So each
// replica moves raft's anchor (FirstIndex) up without moving its log
// start (raftlog.AdvanceAnchorApplied): the batches below the anchor stay
// readable but are out of raft's reach, and the cleaner cleans only
// below the anchor (CleanBound, the bound package cluster gives the
// directory's cleaner for a replicated partition). See the package doc.

// Config.AnchorLagBytes's and MaxSnapshotRegionBytes's defaults.
const (
	defaultAnchorLagBytes    = 128 << 20
	defaultMaxSnapshotRegion = 8 << 20
)

// CleanBound is the offset the log cleaner may clean this replica's log
// up to (exclusive): raft's anchor. The cleaner calls it when it looks
// at the log (every log.cleaner.backoff.ms), and so this is when the
// anchor moves: on the goroutine, to the end of the last sealed segment
// at or below the first entry that must stay raft's (advanceAnchor),
// when that is above the anchor. A stopped replica answers its anchor as
// it is (its last value, never past what raft saw).
func (r *Replica) CleanBound() int64 {
	if r.p.Log().Compaction().Enabled {
		r.do(r.advanceAnchor)
	}
	return r.st.AnchorOffset()
}

// advanceAnchor moves raft's anchor up for the cleaner; on the goroutine.
// The anchor never passes:
//   - applied+1: an entry not applied here stays raft's (and
//     AdvanceAnchorApplied refuses anyway, as it refuses to stop between a
//     conf change and the applied index: the anchor then waits);
//   - on the leader, the lowest match index + 1 of the members (voters
//     and learners, down or not), so that a follower that is slightly
//     behind, restarting, or a learner copying the log still gets
//     entries, not a snapshot (which must carry the region below the
//     anchor, inline and only up to MaxSnapshotRegionBytes: snapshot.go);
//     unless the sealed segments between
//     that member's entry and the applied one hold more than
//     AnchorLagBytes, so that one dead or stuck member does not stop
//     cleaning for good (it then needs a snapshot), and the region
//     already below the anchor is at most half MaxSnapshotRegionBytes
//     (else the snapshot that member would need could not be sent);
//   - a sealed segment's end: the cleaner rewrites whole sealed segments
//     only, so an anchor inside one would keep it from being cleaned
//     and gain nothing.
func (r *Replica) advanceAnchor() {
	applied := r.rn.BasicStatus().Applied
	limit := applied + 1
	limitOff, ok := r.st.OffsetOf(limit)
	if !ok {
		return
	}
	segs, err := r.p.Log().SealedSegments()
	if err != nil {
		return // closed
	}
	if r.isLeader {
		floor := limit
		r.rn.WithProgress(func(id uint64, _ raft.ProgressType, pr tracker.Progress) {
			if id != r.cfg.ID {
				floor = min(floor, pr.Match+1)
			}
		})
		floorOff, ok := r.st.OffsetOf(floor)
		if !ok {
			// A member behind the anchor (it needs a snapshot), or
			// one whose progress a new leader does not know yet
			// (match 0): hold the anchor, within AnchorLagBytes.
			floorOff = r.st.AnchorOffset()
		}
		// Passing a member leaves it a snapshot carrying the region below
		// the anchor, which is sent only up to MaxSnapshotRegionBytes. The
		// region already cleaned is the best guess of what the region
		// will hold once the new one is cleaned too: when it is more
		// than half that, the member holds the anchor however far behind
		// it is (the log grows, as it did before compaction of replicated
		// partitions), rather than be left unable to catch up.
		// With streaming (Config.SendSnapshot) a region of any size can
		// be sent: the rule does not apply.
		regionFits := r.cfg.SendSnapshot != nil ||
			bytesBetween(segs, math.MinInt64, r.st.AnchorOffset()) <= int64(r.cfg.MaxSnapshotRegionBytes)/2
		if floorOff < limitOff && (!regionFits || bytesBetween(segs, floorOff, limitOff) <= r.cfg.AnchorLagBytes) {
			limitOff = floorOff
		}
	}
	anchor := r.st.AnchorOffset()
	target := anchor
	for _, s := range segs {
		if s.End <= limitOff && s.End > target {
			target = s.End
		}
	}
	if target <= anchor {
		return
	}
	moved, err := r.st.AdvanceAnchorApplied(target, applied)
	switch {
	case errors.Is(err, raftlog.ErrConfAboveStart), errors.Is(err, seglog.ErrNotBatchBoundary):
		r.cfg.Logger.Debug("the anchor waits", "target", target, "err", err)
	case err != nil:
		r.cfg.Logger.Warn("cannot move raft's anchor for the cleaner", "target", target, "err", err)
	case moved:
		r.cfg.Logger.Debug("moved raft's anchor above the log start for the cleaner", "anchor_offset", target, "applied", applied)
	}
}

// bytesBetween is the size of the sealed segments that start at or after
// from and end at or before to.
func bytesBetween(segs []seglog.SealedSegment, from, to int64) int64 {
	var n int64
	for _, s := range segs {
		if s.Base >= from && s.End <= to {
			n += s.Size
		}
	}
	return n
}
