package raftgroup

import (
	"fmt"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Replay applies what a group directory holds as committed, its snapshot
// and then its committed entries, to cfg.SM, without running raft: for a
// node that cannot take part in its group (the only voter of a group on a
// full disk cannot persist the term of its election), so that it still
// serves the state its log holds. Only cfg's Group, Dir, FS, SM,
// MaxPayload and SegmentBytes are used. It returns the last index
// applied. It writes nothing of its own (opening the log may, as any
// open, truncate a torn tail).
//
// A snapshot that its log does not follow (an install a crash cut short,
// which Start would finish, a write) is refused, as is a log that starts
// after the snapshot: entries would be missing.
func Replay(cfg Config) (uint64, error) {
	if cfg.Dir == "" || cfg.FS == nil || cfg.SM == nil {
		return 0, fmt.Errorf("raftgroup: Replay needs Dir, FS and SM")
	}
	if cfg.MaxPayload <= 0 {
		cfg.MaxPayload = 1 << 20
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = 16 << 20
	}
	l, err := seglog.Open(cfg.FS, cfg.Dir, seglog.Config{
		SegmentBytes:  cfg.SegmentBytes,
		RetentionMs:   -1,
		MaxBatchBytes: cfg.MaxPayload + 1024,
	}, seglog.State{})
	if err != nil {
		return 0, fmt.Errorf("raftgroup %d: open log: %w", cfg.Group, err)
	}
	defer l.Close()
	st, err := raftlog.Open(cfg.FS, l)
	if err != nil {
		return 0, fmt.Errorf("raftgroup %d: %w", cfg.Group, err)
	}
	snap, hasSnap, err := readSnapshot(cfg.FS, cfg.Dir)
	if err != nil {
		return 0, fmt.Errorf("raftgroup %d: %w", cfg.Group, err)
	}
	first, _ := st.FirstIndex()
	last, _ := st.LastIndex()
	var applied uint64
	if hasSnap {
		meta := snap.GetMetadata()
		applied = meta.GetIndex()
		if applied+1 < first {
			return 0, fmt.Errorf("raftgroup %d: snapshot at %d, log from %d: %w", cfg.Group, applied, first, ErrSnapshotBehindLog)
		}
		if t, err := st.Term(applied); applied >= first-1 && applied <= last && (err != nil || t != meta.GetTerm()) || applied > last {
			return 0, fmt.Errorf("raftgroup %d: the snapshot at %d is not followed by the log (an install cut short): %w", cfg.Group, applied, ErrDamaged)
		}
		if err := cfg.SM.Restore(applied, snap.GetData()); err != nil {
			return 0, fmt.Errorf("raftgroup %d: restore snapshot at %d: %w", cfg.Group, applied, err)
		}
	} else if first > 1 {
		return 0, fmt.Errorf("raftgroup %d: log starts at index %d and there is no snapshot: %w", cfg.Group, first, ErrSnapshotBehindLog)
	}
	hs, _, _ := st.InitialState()
	commit := min(hs.GetCommit(), last)
	for lo := applied + 1; lo <= commit; {
		ents, err := st.Entries(lo, commit+1, 4<<20)
		if err != nil {
			return applied, fmt.Errorf("raftgroup %d: read entries from %d: %w", cfg.Group, lo, err)
		}
		for _, e := range ents {
			if e.GetType() == raftpb.EntryNormal && len(e.GetData()) > 0 {
				if _, payload, err := unframe(e.GetData()); err == nil {
					cfg.SM.Apply(e.GetIndex(), payload)
				} // a bad frame is skipped, as the group skips it
			}
			applied = e.GetIndex()
		}
		lo = applied + 1
	}
	return applied, nil
}
