package replica

import (
	"errors"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/raftlog"
)

// ApplyRetention applies the topic's retention to this replica's log
// (retention.ms, retention.bytes; the log keeps none of its own). Each
// replica decides alone from its own segments, as Kafka's replicas do:
// they hold the same bytes, so in practice the same decisions, and a
// follower whose start lags or leads the leader's is still correct (the
// leader sends a snapshot only to a follower behind its own start). The
// start moves on the goroutine, so raft and snapshots see it move between
// two Readies, through raftlog.AdvanceStartApplied: the anchor first,
// never past the applied index (an uncommitted entry is never dropped),
// and never to a point with a conf change between it and the applied
// index (the snapshot's configuration must be the one as of its index;
// retention then waits until it can move past the change). It returns
// the log start offset after the pass; ErrStopped when the replica has
// stopped.
func (r *Replica) ApplyRetention(now time.Time) (int64, error) {
	target, ok, err := r.p.RetentionOffset(now)
	if err != nil || !ok {
		return r.p.StartOffset(), err
	}
	if target <= r.p.StartOffset() {
		return r.p.StartOffset(), nil
	}
	var moved bool
	ran := r.do(func() {
		applied := r.rn.Status().Applied
		off := target
		if limit, ok := r.st.OffsetOf(applied + 1); ok && limit < off {
			off = limit
		}
		moved, err = r.st.AdvanceStartApplied(off, applied)
	})
	if !ran {
		return r.p.StartOffset(), fmt.Errorf("replica %s-%d: retention: %w", r.p.Topic, r.p.Index, ErrStopped)
	}
	if errors.Is(err, raftlog.ErrConfAboveStart) {
		r.cfg.Logger.Debug("retention waits to move the log start past a conf change", "err", err)
		return r.p.StartOffset(), nil
	}
	if moved {
		r.p.StartMoved()
	}
	return r.p.StartOffset(), err
}
