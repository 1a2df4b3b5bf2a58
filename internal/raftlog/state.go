package raftlog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// StateFile is the file in the partition directory holding raft's hard
// state, the configuration and the anchor (see the package doc).
const StateFile = "raft-state"

const (
	stateMagic   = "STRS"
	stateVersion = 3 // 2: without the log start; 1: without the flags and the anchor's conf state either
	maxStateSize = 1 << 20
)

// anchor ties the translator to the log: the batch at offset is the entry
// of raft index index, and the entry before it had term prevTerm.
type anchor struct {
	index    uint64
	offset   int64
	prevTerm uint64
}

// persisted is the content of StateFile.
type persisted struct {
	hs *raftpb.HardState // nil: none persisted
	cs *raftpb.ConfState // never nil
	an anchor
	// reset: a snapshot install decided to restart the log empty at the
	// anchor's offset and has not finished (Open finishes it).
	reset bool
	// region (with reset): the install restarts the log at start and
	// fills [start, anchor offset) from RegionFile, the leader's batches
	// below its anchor, before the anchor (InstallSnapshotRegion).
	region bool
	// stream (with region): the region is in RegionStreamFile, raw
	// batches a snapshot stream spooled, not in RegionFile
	// (InstallSnapshotRegionFile).
	stream bool
	// acs is the configuration as of the anchor (index FirstIndex-1),
	// what a partition's snapshot carries; nil when unknown (the start
	// never moved through AdvanceStartApplied or InstallSnapshotAt).
	acs *raftpb.ConfState
	// start is the log start offset as this package last moved it, at
	// or below the anchor's offset: the batches in [start, an.offset)
	// are readable but no longer raft entries (the cleaner may rewrite
	// them: AdvanceAnchorApplied). Version 1 and 2 files have none: it
	// is the anchor's offset there.
	start int64
}

const (
	flagReset  = 1
	flagRegion = 2
	flagStream = 4
)

// encode lays the state out as (version 3)
//
//	| u32 len | HardState (protobuf) | u32 len | ConfState (protobuf) |
//	| u64 anchor index | i64 anchor offset | u64 anchor prev term |
//	| u8 flags (1: reset pending, 2: it fills the log from RegionFile,  |
//	|   4: with 2, from RegionStreamFile instead)                       |
//	| u32 len | anchor ConfState (protobuf; len 0xffffffff: unknown) |
//	| i64 log start offset |
//
// Version 2 ends before the log start offset (it is the anchor's offset);
// version 1 after the prev term (no flags, no anchor conf state).
func (p persisted) encode() ([]byte, error) {
	hs, err := proto.Marshal(p.hs)
	if err != nil {
		return nil, err
	}
	cs, err := proto.Marshal(p.cs)
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 8+len(hs)+len(cs)+24)
	b = binary.BigEndian.AppendUint32(b, uint32(len(hs)))
	b = append(b, hs...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(cs)))
	b = append(b, cs...)
	b = binary.BigEndian.AppendUint64(b, p.an.index)
	b = binary.BigEndian.AppendUint64(b, uint64(p.an.offset))
	b = binary.BigEndian.AppendUint64(b, p.an.prevTerm)
	var flags byte
	if p.reset {
		flags |= flagReset
	}
	if p.region {
		flags |= flagRegion
	}
	if p.stream {
		flags |= flagStream
	}
	b = append(b, flags)
	if p.acs == nil {
		// Unknown; an empty conf state (length 0) is a known one.
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	} else {
		acs, err := proto.Marshal(p.acs)
		if err != nil {
			return nil, err
		}
		b = binary.BigEndian.AppendUint32(b, uint32(len(acs)))
		b = append(b, acs...)
	}
	return binary.BigEndian.AppendUint64(b, uint64(p.start)), nil
}

func decodeState(version uint16, b []byte) (persisted, error) {
	var p persisted
	part := func() ([]byte, bool) {
		if len(b) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, false
		}
		v := b[4 : 4+n]
		b = b[4+n:]
		return v, true
	}
	hs, ok1 := part()
	cs, ok2 := part()
	if !ok1 || !ok2 || len(b) < 24 || (version == 1 && len(b) != 24) {
		return p, fmt.Errorf("%w: raft state layout", atomicfile.ErrCorrupt)
	}
	rest := b[24:]
	b = b[:24]
	if version >= 2 {
		if len(rest) < 5 {
			return p, fmt.Errorf("%w: raft state layout", atomicfile.ErrCorrupt)
		}
		p.reset = rest[0]&flagReset != 0
		p.region = rest[0]&flagRegion != 0
		p.stream = rest[0]&flagStream != 0
		n := binary.BigEndian.Uint32(rest[1:])
		rest = rest[5:]
		if version >= 3 {
			if len(rest) < 8 {
				return p, fmt.Errorf("%w: raft state layout", atomicfile.ErrCorrupt)
			}
			p.start = int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))
			rest = rest[:len(rest)-8]
		}
		if n != 0xffffffff {
			if uint64(n) != uint64(len(rest)) {
				return p, fmt.Errorf("%w: raft state layout", atomicfile.ErrCorrupt)
			}
			p.acs = &raftpb.ConfState{}
			if err := proto.Unmarshal(rest, p.acs); err != nil {
				return p, fmt.Errorf("%w: anchor conf state: %v", atomicfile.ErrCorrupt, err)
			}
		} else if len(rest) != 0 {
			return p, fmt.Errorf("%w: raft state layout", atomicfile.ErrCorrupt)
		}
	}
	p.hs, p.cs = &raftpb.HardState{}, &raftpb.ConfState{}
	if err := proto.Unmarshal(hs, p.hs); err != nil {
		return p, fmt.Errorf("%w: hard state: %v", atomicfile.ErrCorrupt, err)
	}
	if err := proto.Unmarshal(cs, p.cs); err != nil {
		return p, fmt.Errorf("%w: conf state: %v", atomicfile.ErrCorrupt, err)
	}
	p.an.index = binary.BigEndian.Uint64(b)
	p.an.offset = int64(binary.BigEndian.Uint64(b[8:]))
	p.an.prevTerm = binary.BigEndian.Uint64(b[16:])
	if version < 3 {
		p.start = p.an.offset
	}
	if p.an.index == 0 || p.an.offset < 0 || p.start < 0 || p.start > p.an.offset {
		return p, fmt.Errorf("%w: anchor index %d offset %d, log start %d", atomicfile.ErrCorrupt, p.an.index, p.an.offset, p.start)
	}
	return p, nil
}

// readState reads StateFile in dir; ok is false when there is none.
func readState(fsys vfs.FS, dir string) (p persisted, ok bool, err error) {
	b, err := atomicfile.ReadBytes(fsys, filepath.Join(dir, StateFile), maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return p, false, nil
	}
	if err != nil {
		return p, false, fmt.Errorf("raftlog %s: read state: %w", dir, err)
	}
	v, payload, err := atomicfile.Decode(b, stateMagic)
	if err != nil {
		return p, false, fmt.Errorf("raftlog %s: state: %w", dir, err)
	}
	if v < 1 || v > stateVersion {
		return p, false, fmt.Errorf("raftlog %s: state version %d: %w", dir, v, atomicfile.ErrCorrupt)
	}
	p, err = decodeState(v, payload)
	if err != nil {
		return p, false, fmt.Errorf("raftlog %s: state: %w", dir, err)
	}
	return p, true, nil
}

// writeState replaces StateFile durably (temp file, fsync, rename, fsync
// of the directory).
func writeState(fsys vfs.FS, dir string, p persisted) error {
	payload, err := p.encode()
	if err != nil {
		return fmt.Errorf("raftlog %s: encode state: %w", dir, err)
	}
	if err := atomicfile.Write(fsys, filepath.Join(dir, StateFile), stateMagic, stateVersion, payload); err != nil {
		return fmt.Errorf("raftlog %s: write state: %w", dir, err)
	}
	return nil
}
