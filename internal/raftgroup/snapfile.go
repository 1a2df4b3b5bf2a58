package raftgroup

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

// SnapshotFile is the group's snapshot in its directory (see the package
// doc for its layout).
const SnapshotFile = "snapshot"

const (
	snapMagic   = "STSN"
	snapVersion = 1
	// MaxSnapshotBytes bounds the snapshot file read at start and sent to
	// followers.
	MaxSnapshotBytes = 1 << 30
)

// encodeSnapshot lays a snapshot out as
//
//	| u32 len | SnapshotMetadata (protobuf) | state machine data |
func encodeSnapshot(s *raftpb.Snapshot) ([]byte, error) {
	meta, err := proto.Marshal(s.GetMetadata())
	if err != nil {
		return nil, err
	}
	b := make([]byte, 0, 4+len(meta)+len(s.GetData()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(meta)))
	b = append(b, meta...)
	return append(b, s.GetData()...), nil
}

func decodeSnapshot(b []byte) (*raftpb.Snapshot, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: snapshot layout", atomicfile.ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, fmt.Errorf("%w: snapshot metadata length %d", atomicfile.ErrCorrupt, n)
	}
	meta := &raftpb.SnapshotMetadata{}
	if err := proto.Unmarshal(b[4:4+n], meta); err != nil {
		return nil, fmt.Errorf("%w: snapshot metadata: %v", atomicfile.ErrCorrupt, err)
	}
	if meta.GetIndex() == 0 {
		return nil, fmt.Errorf("%w: snapshot at index 0", atomicfile.ErrCorrupt)
	}
	return &raftpb.Snapshot{Metadata: meta, Data: b[4+n:]}, nil
}

// readSnapshot reads SnapshotFile in dir; ok is false when there is none.
func readSnapshot(fsys vfs.FS, dir string) (*raftpb.Snapshot, bool, error) {
	b, err := atomicfile.ReadBytes(fsys, filepath.Join(dir, SnapshotFile), MaxSnapshotBytes+atomicfile.HeaderSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("raftgroup %s: read snapshot: %w", dir, err)
	}
	_, payload, err := atomicfile.Decode(b, snapMagic)
	if err != nil {
		return nil, false, fmt.Errorf("raftgroup %s: snapshot: %w", dir, err)
	}
	s, err := decodeSnapshot(payload)
	if err != nil {
		return nil, false, fmt.Errorf("raftgroup %s: snapshot: %w", dir, err)
	}
	return s, true, nil
}

// writeSnapshot replaces SnapshotFile durably (temp file, fsync, rename,
// directory fsync).
func writeSnapshot(fsys vfs.FS, dir string, s *raftpb.Snapshot) error {
	payload, err := encodeSnapshot(s)
	if err != nil {
		return fmt.Errorf("raftgroup %s: encode snapshot: %w", dir, err)
	}
	if len(payload) > MaxSnapshotBytes {
		return fmt.Errorf("raftgroup %s: snapshot of %d bytes, at most %d", dir, len(payload), MaxSnapshotBytes)
	}
	if err := atomicfile.Write(fsys, filepath.Join(dir, SnapshotFile), snapMagic, snapVersion, payload); err != nil {
		return fmt.Errorf("raftgroup %s: write snapshot: %w", dir, err)
	}
	return nil
}
