package replica

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Streamed snapshots (issue 18): a region below the anchor larger than a
// snapshot may carry inline (Config.MaxSnapshotRegionBytes) travels beside
// the snapshot. The snapshot's Data is a reference (streamSnapshotTag: the
// partition snapshot, the leader's log start and anchor, a random snapshot
// id); the transport (Config.SendSnapshot) sends the MsgSnap and then the
// region in chunks read from the leader's log as they go
// (raftlog.RegionReader); the follower's transport writes them into a
// SnapshotSink (a spool file named by the snapshot id in the partition
// directory, each chunk checked by raftlog.RegionCheck) and, once the
// spool is complete and fsynced, hands the MsgSnap to Step. The install
// (installSnapshot) then takes the spool (raftlog.InstallSnapshotRegionFile).
// See the package doc, "Snapshots and retention".

// SnapshotBody is the leader's side of a streamed snapshot: the region's
// chunks, read from the log as the transport asks. Next returns io.EOF
// after the last chunk; a chunk is valid until the next call. Close ends
// it (after the last chunk or not). One goroutine at a time.
type SnapshotBody interface {
	Next() ([]byte, error)
	Close()
}

// SnapshotSink is the follower's side: Write takes the chunks in order,
// Commit makes the spool durable once the transport checked the stream's
// length and CRC (the MsgSnap may then be stepped), Abort discards it. One
// goroutine at a time; after Commit or Abort nothing else is called.
type SnapshotSink interface {
	Write(chunk []byte) error
	Commit() error
	Abort()
}

// streamSnapshotTag marks a snapshot's Data that references a streamed
// region (big endian):
//
//	| u8 streamSnapshotTag (3) | u32 len | partition snapshot |
//	| i64 log start offset | i64 anchor offset | u64 snapshot id |
const streamSnapshotTag = 3

// spoolPrefix names a streamed region's spool in the partition directory:
// spoolPrefix + the id in hex, with partSuffix while it is written.
const (
	spoolPrefix = "raft-snap-"
	partSuffix  = ".part"
)

// defaultSnapshotChunk is Config.SnapshotChunkBytes's default.
const defaultSnapshotChunk = 4 << 20

// snapshotRetryTicks: a failed stream is reported to raft (which then
// sends another snapshot) this many ticks after it failed, doubled at
// each failure in a row to the same follower up to
// snapshotRetryTicks<<snapshotRetryMaxDoublings (32 s at the default
// tick): a follower whose disk is full fails every stream at the same
// point, and each try reads and sends the region up to there again.
const (
	snapshotRetryTicks        = 10
	snapshotRetryMaxDoublings = 5
)

type streamRef struct {
	ps            []byte
	start, anchor int64
	id            uint64
}

func encodeStreamSnapshot(ref streamRef) []byte {
	b := make([]byte, 0, 1+4+len(ref.ps)+24)
	b = append(b, streamSnapshotTag)
	b = binary.BigEndian.AppendUint32(b, uint32(len(ref.ps)))
	b = append(b, ref.ps...)
	b = binary.BigEndian.AppendUint64(b, uint64(ref.start))
	b = binary.BigEndian.AppendUint64(b, uint64(ref.anchor))
	return binary.BigEndian.AppendUint64(b, ref.id)
}

// decodeStreamSnapshot reads a reference; ok is false for other Data.
func decodeStreamSnapshot(data []byte) (ref streamRef, ok bool, err error) {
	if len(data) == 0 || data[0] != streamSnapshotTag {
		return ref, false, nil
	}
	if len(data) < 5 {
		return ref, true, errBadSnapshot
	}
	n := binary.BigEndian.Uint32(data[1:])
	rest := data[5:]
	if uint64(n)+24 != uint64(len(rest)) {
		return ref, true, errBadSnapshot
	}
	ref.ps, rest = rest[:n], rest[n:]
	ref.start = int64(binary.BigEndian.Uint64(rest))
	ref.anchor = int64(binary.BigEndian.Uint64(rest[8:]))
	ref.id = binary.BigEndian.Uint64(rest[16:])
	if ref.start < 0 || ref.start > ref.anchor {
		return ref, true, errBadSnapshot
	}
	return ref, true, nil
}

func (r *Replica) spoolPath(id uint64) string {
	return filepath.Join(r.p.Log().Dir(), fmt.Sprintf("%s%016x", spoolPrefix, id))
}

// removeSpools deletes every spool in the partition directory but keep's
// (none with keep ""): at Start (a partial one is a transfer a crash cut,
// a complete one a snapshot never installed) and at an install.
func (r *Replica) removeSpools(keep string) error {
	dir := r.p.Log().Dir()
	names, err := r.cfg.FS.List(dir)
	if err != nil {
		return fmt.Errorf("replica %s-%d: list %s: %w", r.p.Topic, r.p.Index, dir, err)
	}
	for _, n := range names {
		path := filepath.Join(dir, n)
		if !strings.HasPrefix(n, spoolPrefix) || path == keep {
			continue
		}
		if err := r.cfg.FS.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("replica %s-%d: remove %s: %w", r.p.Topic, r.p.Index, n, err)
		}
	}
	return nil
}

// streamSnapshot is snapshotSource's answer for a region too large to
// carry inline when the transport can stream: a reference. The region is
// read when the MsgSnap is sent (send).
func (r *Replica) streamSnapshot(meta *raftpb.SnapshotMetadata, start, anchor int64) *raftpb.Snapshot {
	ref := streamRef{ps: r.p.ReplicaSnapshot(anchor), start: start, anchor: anchor, id: rand.Uint64()}
	r.cfg.Logger.Info("streaming a snapshot to a follower behind the anchor", "index", meta.GetIndex(),
		"log_start_offset", start, "anchor_offset", anchor, "snapshot_id", fmt.Sprintf("%016x", ref.id))
	return &raftpb.Snapshot{Data: encodeStreamSnapshot(ref), Metadata: meta}
}

// send hands msgs to the transport: a MsgSnap whose region is streamed
// goes to Config.SendSnapshot with a reader of the region (at most one
// stream per follower: another while one runs is dropped, raft learns of
// the first's end), reported to raft when the stream ends; every other
// message to Config.Send, snapshots among them reported as sent
// (reportSnapshots). On the goroutine.
func (r *Replica) send(msgs []*raftpb.Message) {
	var plain []*raftpb.Message // nil until a message is taken out
	for i, m := range msgs {
		ref, streamed := r.streamed(m)
		if !streamed {
			if plain != nil {
				plain = append(plain, m)
			}
			continue
		}
		if plain == nil {
			plain = append(make([]*raftpb.Message, 0, len(msgs)), msgs[:i]...)
		}
		r.startStream(m, ref)
	}
	if plain == nil {
		plain = msgs
	}
	r.sendPlain(plain)
}

// streamed reports whether m is a MsgSnap whose region is streamed.
func (r *Replica) streamed(m *raftpb.Message) (streamRef, bool) {
	if m.GetType() != raftpb.MsgSnap || r.cfg.SendSnapshot == nil {
		return streamRef{}, false
	}
	ref, ok, err := decodeStreamSnapshot(m.GetSnapshot().GetData())
	return ref, ok && err == nil
}

func (r *Replica) sendPlain(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	r.cfg.Send(msgs)
	r.reportSnapshots(msgs)
}

// startStream starts the transfer of m's region to its recipient.
func (r *Replica) startStream(m *raftpb.Message, ref streamRef) {
	to := m.GetTo()
	if r.streams == nil {
		r.streams = map[uint64]*regionBody{}
	}
	if old := r.streams[to]; old != nil {
		r.cfg.Logger.Debug("a snapshot stream to this follower is running: the new one waits for its end", "to", to)
		return
	}
	body := &regionBody{rr: r.st.RegionReader(ref.start, ref.anchor, r.cfg.SnapshotChunkBytes)}
	r.streams[to] = body
	status := r.streamDone
	r.cfg.SendSnapshot(m, body, func(err error) { status(to, body, err) })
}

// streamDone is called by the transport (any goroutine) when a stream
// ends: raft hears of it on the goroutine (ReportSnapshot: Finish moves
// the follower's progress to probing after the snapshot; Failure to
// probing, and a follower still behind gets a new snapshot).
func (r *Replica) streamDone(to uint64, body *regionBody, err error) {
	f := func() {
		if r.streams[to] == body {
			delete(r.streams, to)
		}
		if r.snapFails == nil {
			r.snapFails = map[uint64]int{}
		}
		if err != nil {
			r.snapFails[to]++
			// Reported later (retryStreams; snapshotRetryTicks, doubled
			// at each failure in a row): raft would ask for the next
			// snapshot at once, and a stream that keeps failing (the
			// follower's disk full, a peer of an older Strom) would run
			// back to back.
			r.cfg.Logger.Warn("a snapshot stream to a follower failed: retrying", "to", to, "failures_in_a_row", r.snapFails[to], "err", err)
			if r.snapRetry == nil {
				r.snapRetry = map[uint64]int{}
			}
			r.snapRetry[to] = r.ticks + snapshotRetryTicks<<min(r.snapFails[to]-1, snapshotRetryMaxDoublings)
			return
		}
		delete(r.snapFails, to)
		r.cfg.Logger.Info("a snapshot stream to a follower finished", "to", to, "bytes", body.sent.Load())
		r.rn.ReportSnapshot(to, raft.SnapshotFinish)
	}
	select {
	case r.reqc <- f:
	case <-r.done:
	}
}

// cancelStreams makes the running streams fail at their next chunk: this
// replica no longer leads (a snapshot of an old term is refused by a
// follower that knows a newer one), or it stops.
func (r *Replica) cancelStreams() {
	for _, b := range r.streams {
		b.cancelled.Store(true)
	}
}

// errStreamCancelled: the leader that started a stream lost leadership.
var errStreamCancelled = errors.New("replica: snapshot stream cancelled: no longer the leader")

// regionBody is a SnapshotBody over the leader's log.
type regionBody struct {
	rr        *raftlog.RegionReader
	cancelled atomic.Bool
	sent      atomic.Int64
}

func (b *regionBody) Next() ([]byte, error) {
	if b.cancelled.Load() {
		return nil, errStreamCancelled
	}
	c, err := b.rr.Next()
	b.sent.Add(int64(len(c)))
	return c, err
}

func (b *regionBody) Close() {}

// SnapshotSink returns where the transport writes the region of m, a
// MsgSnap whose Data references a streamed region: a new spool file named
// by the snapshot id (a second stream with the same id is refused: two
// snapshots never mix). Called on a transport goroutine; the replica's
// goroutine only reads complete spools (step, installSnapshot).
func (r *Replica) SnapshotSink(m *raftpb.Message) (SnapshotSink, error) {
	ref, ok, err := decodeStreamSnapshot(m.GetSnapshot().GetData())
	switch {
	case m.GetType() != raftpb.MsgSnap || !ok:
		return nil, fmt.Errorf("replica %s-%d: a snapshot stream without a streamed snapshot: %w", r.p.Topic, r.p.Index, errBadSnapshot)
	case err != nil:
		return nil, fmt.Errorf("replica %s-%d: %w", r.p.Topic, r.p.Index, err)
	case m.GetTo() != r.cfg.ID:
		return nil, fmt.Errorf("replica %s-%d: a snapshot stream for raft id %d", r.p.Topic, r.p.Index, m.GetTo())
	}
	path := r.spoolPath(ref.id)
	if _, err := r.cfg.FS.Stat(path); err == nil {
		return nil, fmt.Errorf("replica %s-%d: snapshot %016x already received", r.p.Topic, r.p.Index, ref.id)
	}
	f, err := r.cfg.FS.Create(path + partSuffix)
	if err != nil {
		return nil, fmt.Errorf("replica %s-%d: spool: %w", r.p.Topic, r.p.Index, err)
	}
	return &spool{fs: r.cfg.FS, f: f, path: path, check: raftlog.NewRegionCheck(ref.start, ref.anchor)}, nil
}

// spool is a SnapshotSink: the region's chunks, checked, appended to
// path+partSuffix, which Commit fsyncs and renames to path.
type spool struct {
	fs    vfs.FS
	f     vfs.File
	path  string
	check *raftlog.RegionCheck
	size  int64
}

func (s *spool) Write(chunk []byte) error {
	if err := s.check.Add(chunk); err != nil {
		return err
	}
	if _, err := s.f.WriteAt(chunk, s.size); err != nil {
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.size += int64(len(chunk))
	return nil
}

func (s *spool) Commit() error {
	if err := s.f.Sync(); err != nil {
		s.Abort()
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	if err := s.f.Close(); err != nil {
		s.f = nil
		s.Abort()
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	s.f = nil
	if err := s.fs.Rename(s.path+partSuffix, s.path); err != nil {
		s.Abort()
		return fmt.Errorf("spool %s: %w", s.path, err)
	}
	// The spool needs no directory fsync: the install renames it and
	// fsyncs the directory before its commit point; a crash before
	// that discards it anyway (Start removes every spool).
	return nil
}

func (s *spool) Abort() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	_ = s.fs.Remove(s.path + partSuffix)
}

// spoolMissing reports whether m is a MsgSnap of a streamed region whose
// complete spool is not here (a stream that never ended, a spool removed
// by an install or a restart since): raft must not take it, since the
// install could not fill the log. The leader sends another snapshot.
func (r *Replica) spoolMissing(m *raftpb.Message) bool {
	if m.GetType() != raftpb.MsgSnap {
		return false
	}
	ref, ok, err := decodeStreamSnapshot(m.GetSnapshot().GetData())
	if !ok {
		return false
	}
	if err == nil {
		path := r.spoolPath(ref.id)
		if _, err = r.cfg.FS.Stat(path); err == nil {
			r.steppedSpools = append(r.steppedSpools, path)
			return false
		}
	}
	r.cfg.Logger.Warn("dropped a streamed snapshot without its region", "from", m.GetFrom(), "err", err)
	return true
}

// dropUnusedSpools removes the spools of the streamed snapshots stepped
// since the last call that raft did not take (an old term, a log that
// already holds the index): the Ready after a step installs one it takes,
// which consumes its spool, so a spool still there after the Readys is
// one no install will use, and it may be gigabytes. On the goroutine,
// after the Readys.
func (r *Replica) dropUnusedSpools() {
	for _, path := range r.steppedSpools {
		if err := r.cfg.FS.Remove(path); err == nil {
			r.cfg.Logger.Info("removed the spool of a streamed snapshot raft did not take", "spool", filepath.Base(path))
		}
	}
	r.steppedSpools = r.steppedSpools[:0]
}

// retryStreams reports to raft the failed streams whose wait is over
// (SnapshotFailure: the follower is probed, and sent a new snapshot if it
// still needs one). On the goroutine, at every tick.
func (r *Replica) retryStreams() {
	for to, at := range r.snapRetry {
		if r.ticks >= at {
			delete(r.snapRetry, to)
			r.rn.ReportSnapshot(to, raft.SnapshotFailure)
		}
	}
}
