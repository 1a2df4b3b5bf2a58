package raftlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// The region below the anchor: AdvanceAnchorApplied leaves the batches in
// [log start, anchor offset) in the segments (the cleaner rewrites them),
// but they are no longer raft entries. A follower given a partition
// snapshot must get them too, or its copy would have a hole where the
// leader has data: Region reads them (the leader), InstallSnapshotRegion
// installs them with the snapshot (the follower).

// RegionFile is the file in the partition directory that holds, during a
// snapshot install that carries data (InstallSnapshotRegion), the
// leader's batches below its anchor (an atomicfile: the raw batches,
// offsets and epochs as the leader stores them). It is written durably
// before the install's commit point (StateFile with the reset and region
// flags), read again by Open if a crash cuts the install after it, and
// removed once the install is done; Open removes one whose install never
// committed.
const RegionFile = "raft-region"

const (
	regionMagic   = "STRG"
	regionVersion = 1
	maxRegionFile = 1 << 30
)

// ErrRegionTooLarge: the region below the anchor holds more than the
// snapshot may carry (Region's maxBytes).
var ErrRegionTooLarge = errors.New("raftlog: the region below the anchor is too large for a snapshot")

// Region returns the log start offset and the batches in [log start,
// to), whole (the first may begin below the start, when DeleteRecords
// moved the start inside it), as stored: what a partition snapshot whose
// follower's log ends at to carries besides the producer state, so that
// the follower's copy has no hole. to is the anchor's offset (SnapshotMeta)
// or the applied entry's next (SnapshotMetaApplied), a batch boundary at
// most the log end. Empty when the start is to. ErrRegionTooLarge past
// maxBytes. The data is a fresh copy.
func (s *Storage) Region(to int64, maxBytes int) (int64, []byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.mu.st.start
	if start >= to {
		return start, nil, nil
	}
	if to > s.log.EndOffset() {
		return 0, nil, fmt.Errorf("raftlog %s: region to %d past the log end %d: %w", s.log.Dir(), to, s.log.EndOffset(), seglog.ErrOffsetOutOfRange)
	}
	var out []byte
	rr := s.RegionReader(start, to, 1<<20)
	for {
		c, err := rr.Next()
		if errors.Is(err, io.EOF) {
			return start, out, nil
		}
		if err != nil {
			return 0, nil, err
		}
		if len(out)+len(c) > maxBytes {
			return 0, nil, fmt.Errorf("raftlog %s: region [%d, %d) over %d bytes: %w", s.log.Dir(), start, to, maxBytes, ErrRegionTooLarge)
		}
		out = append(out, c...)
	}
}

// InstallSnapshotRegion is InstallSnapshotAt for a leader whose log holds
// batches below its anchor: the follower's log restarts at start (the
// leader's log start) holding region, the leader's batches in [start,
// anchor) with their offsets (gaps kept), and ends at anchor, the
// leader's anchor offset, where the entries after the snapshot follow. So
// every replica holds the same batches at the same offsets, cleaned or
// not.
//
// Crash-safe: region is written to RegionFile durably first; then the new
// state (anchor at anchor, log start start, commit at least index, the
// reset and region flags) is one write of StateFile, the commit point;
// then the log is reset at start (or the first batch's base), region
// appended as a follower appends (seglog.AppendAsFollower), the end moved
// to anchor (seglog.SkipTo), all fsynced, AfterReset run, the flags
// cleared and RegionFile removed. OpenWith redoes a committed install
// (the reset discards a partial fill: idempotent) and removes a
// RegionFile no committed install needs. A snapshot at or below
// FirstIndex-1 is ErrSnapshotOutOfDate and changes nothing.
func (s *Storage) InstallSnapshotRegion(meta *raftpb.SnapshotMetadata, start, anchorOff int64, region []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	index, term := meta.GetIndex(), meta.GetTerm()
	if err := s.checkRegionInstallLocked(index, term, start, anchorOff); err != nil {
		return err
	}
	if _, err := regionBase(region, start, anchorOff); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	if err := atomicfile.Write(s.fs, filepath.Join(s.log.Dir(), RegionFile), regionMagic, regionVersion, region); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: write region: %w", s.log.Dir(), index, err)
	}
	p := installedState(s.mu.st, meta, start, anchorOff)
	p.region = true
	if err := s.saveLocked(p); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	s.mu.offs, s.mu.terms, s.mu.confs = s.mu.offs[:0], s.mu.terms[:0], s.mu.confs[:0]
	s.mu.cache.clear()
	if err := s.finishResetLocked(&s.mu.st); err != nil {
		return fmt.Errorf("raftlog %s: install snapshot at %d: %w", s.log.Dir(), index, err)
	}
	return nil
}

// regionBase checks that region is whole batches in increasing offset
// order within [start, anchor) (the first may begin below start, holding
// it) and returns where the log must restart to hold them: start, or the
// first batch's base offset when that is lower.
func regionBase(region []byte, start, anchor int64) (int64, error) {
	c := NewRegionCheck(start, anchor)
	if err := c.Add(region); err != nil {
		return 0, err
	}
	return c.Base(), nil
}

// fillRegionLocked is the log part of a committed install with a region
// (p.region): from RegionStreamFile (p.stream) or RegionFile's payload
// (fillRegionFromLocked). mu must be held, or s not yet shared.
func (s *Storage) fillRegionLocked(p *persisted) error {
	dir := s.log.Dir()
	if p.stream {
		f, err := s.fs.Open(filepath.Join(dir, RegionStreamFile))
		if err != nil {
			return fmt.Errorf("raftlog %s: open %s: %w", dir, RegionStreamFile, err)
		}
		defer f.Close()
		size, err := f.Size()
		if err != nil {
			return fmt.Errorf("raftlog %s: %s: %w", dir, RegionStreamFile, err)
		}
		return s.fillRegionFromLocked(p, f, size, RegionStreamFile)
	}
	region, err := readRegion(s)
	if err != nil {
		return err
	}
	if _, err := regionBase(region, p.start, p.an.offset); err != nil {
		return fmt.Errorf("raftlog %s: %s: %w", dir, RegionFile, err)
	}
	return s.fillRegionFromLocked(p, bytes.NewReader(region), int64(len(region)), RegionFile)
}

func readRegion(s *Storage) ([]byte, error) {
	b, err := atomicfile.ReadBytes(s.fs, filepath.Join(s.log.Dir(), RegionFile), maxRegionFile)
	if err != nil {
		return nil, fmt.Errorf("raftlog %s: read %s: %w", s.log.Dir(), RegionFile, err)
	}
	v, payload, err := atomicfile.Decode(b, regionMagic)
	if err != nil {
		return nil, fmt.Errorf("raftlog %s: %s: %w", s.log.Dir(), RegionFile, err)
	}
	if v != regionVersion {
		return nil, fmt.Errorf("raftlog %s: %s version %d: %w", s.log.Dir(), RegionFile, v, atomicfile.ErrCorrupt)
	}
	return payload, nil
}

// removeRegion deletes RegionFile and RegionStreamFile; none is fine. A
// file left by a failed removal is removed by the next Open.
func (s *Storage) removeRegion() error {
	for _, name := range []string{RegionFile, RegionStreamFile} {
		err := s.fs.Remove(filepath.Join(s.log.Dir(), name))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("raftlog %s: remove %s: %w", s.log.Dir(), name, err)
		}
	}
	return nil
}
