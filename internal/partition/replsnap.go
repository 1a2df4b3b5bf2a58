package partition

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/stromhq/strom/internal/storage/atomicfile"
)

// A replicated partition's raft snapshot (what a leader sends a follower
// that fell behind its log start): the log start offset X and the
// idempotent producer state as of X. The follower restarts its log empty
// at X, takes the state, then applies the entries from X on, rebuilding
// the rest of the state from their batches (Appended), so that it ends
// with the leader's state: a retried batch is answered with its original
// offsets after a failover to it.
//
// Layout (big endian; version 1), written by ReplicaSnapshot and read by
// decodeReplicaSnapshot (fuzzed by FuzzDecodeReplicaSnapshot):
//
//	| u8 version (1) | i64 log start offset X | u32 producer count N |
//	N times:
//	  | i64 producer id | i16 epoch | i64 last seen (ms) | u8 batch count B (0..5) |
//	  B times, oldest first, each wholly below X:
//	    | i32 first seq | i32 last seq | i64 first offset | i64 last offset | i64 timestamp |
//
// There are no transactions: a replicated partition refuses
// transactional batches.
const replicaSnapshotVersion = 1

const (
	replicaSnapshotHeader = 1 + 8 + 4
	replicaProducerSize   = 8 + 2 + 8 + 1
	replicaBatchSize      = 4 + 4 + 8 + 8 + 8
)

// ErrBadReplicaSnapshot: a replica snapshot's data does not decode.
var ErrBadReplicaSnapshot = errors.New("partition: bad replica snapshot")

// resetName is the producer state a follower took from a snapshot, kept
// aside (same format as the producer snapshot) until its log is reset:
// PrepareReset writes it, FinishReset renames it into place.
const resetName = "producer-state.reset"

// ReplicaSnapshot encodes the partition's snapshot for a log starting at
// start (a batch boundary, the raft storage's anchor): the producer state
// as of start, as far as the follower needs it. It is the current state
// with each producer's cached batches at or above start left out: the
// follower gets those batches as entries and records them again
// (Appended), which brings its state to this one: the cached batches are
// the producer's last ones in its epoch, so those below start come first.
// A producer whose cached batches all lie at or above start is kept with
// its epoch and none: it may have had older batches below start, which
// the cache no longer knows; its epoch fences them, as here. (That epoch
// may come from a batch not committed yet; if a leader change drops it,
// the follower fences the older epoch where the new leader's rebuilt
// state would not: a refusal, never a duplicate.)
func (p *Partition) ReplicaSnapshot(start int64) []byte {
	p.mu.Lock()
	prods := make(map[int64]*producer, len(p.producers))
	for pid, pr := range p.producers {
		k := 0
		for k < len(pr.Batches) && pr.Batches[k].LastOffset < start {
			k++
		}
		prods[pid] = &producer{Epoch: pr.Epoch, LastSeen: pr.LastSeen, Batches: append([]batchMeta(nil), pr.Batches[:k]...)}
	}
	p.mu.Unlock()
	return encodeReplicaSnapshot(start, prods)
}

// encodeReplicaSnapshot lays out a snapshot (see the layout above); each
// producer has at most 5 batches.
func encodeReplicaSnapshot(start int64, prods map[int64]*producer) []byte {
	b := make([]byte, 0, replicaSnapshotHeader+len(prods)*(replicaProducerSize+cachedBatches*replicaBatchSize))
	b = append(b, replicaSnapshotVersion)
	b = binary.BigEndian.AppendUint64(b, uint64(start))
	b = binary.BigEndian.AppendUint32(b, uint32(len(prods)))
	for pid, pr := range prods {
		b = binary.BigEndian.AppendUint64(b, uint64(pid))
		b = binary.BigEndian.AppendUint16(b, uint16(pr.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(pr.LastSeen))
		b = append(b, byte(len(pr.Batches)))
		for _, m := range pr.Batches {
			b = binary.BigEndian.AppendUint32(b, uint32(m.FirstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(m.LastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(m.FirstOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.LastOffset))
			b = binary.BigEndian.AppendUint64(b, uint64(m.Timestamp))
		}
	}
	return b
}

// decodeReplicaSnapshot parses a replica snapshot; it never panics and
// checks every count against the bytes left before allocating.
func decodeReplicaSnapshot(b []byte) (int64, map[int64]*producer, error) {
	bad := func(what string) (int64, map[int64]*producer, error) {
		return 0, nil, fmt.Errorf("%w: %s", ErrBadReplicaSnapshot, what)
	}
	if len(b) < replicaSnapshotHeader {
		return bad("short header")
	}
	if b[0] != replicaSnapshotVersion {
		return bad(fmt.Sprintf("version %d", b[0]))
	}
	start := int64(binary.BigEndian.Uint64(b[1:]))
	n := binary.BigEndian.Uint32(b[9:])
	b = b[replicaSnapshotHeader:]
	if start < 0 {
		return bad("negative log start offset")
	}
	if uint64(n) > uint64(len(b)/replicaProducerSize) {
		return bad("producer count past the data")
	}
	prods := make(map[int64]*producer, n)
	for i := uint32(0); i < n; i++ {
		if len(b) < replicaProducerSize {
			return bad("short producer")
		}
		pid := int64(binary.BigEndian.Uint64(b))
		pr := &producer{Epoch: int16(binary.BigEndian.Uint16(b[8:])), LastSeen: int64(binary.BigEndian.Uint64(b[10:]))}
		k := int(b[18])
		b = b[replicaProducerSize:]
		if pid < 0 || prods[pid] != nil {
			return bad("negative or repeated producer id")
		}
		if k > cachedBatches || len(b) < k*replicaBatchSize {
			return bad("batch count")
		}
		prev := int64(-1)
		for j := 0; j < k; j++ {
			m := batchMeta{
				FirstSeq:    int32(binary.BigEndian.Uint32(b)),
				LastSeq:     int32(binary.BigEndian.Uint32(b[4:])),
				FirstOffset: int64(binary.BigEndian.Uint64(b[8:])),
				LastOffset:  int64(binary.BigEndian.Uint64(b[16:])),
				Timestamp:   int64(binary.BigEndian.Uint64(b[24:])),
			}
			b = b[replicaBatchSize:]
			if m.FirstOffset <= prev || m.LastOffset < m.FirstOffset || m.LastOffset >= start {
				return bad("batch offsets")
			}
			prev = m.LastOffset
			pr.Batches = append(pr.Batches, m)
		}
		prods[pid] = pr
	}
	if len(b) != 0 {
		return bad("trailing bytes")
	}
	return start, prods, nil
}

// PrepareReset is a follower's first step in installing a snapshot: it
// decodes data (ReplicaSnapshot's) and makes its producer state durable
// aside (resetName), before raft's storage commits to the reset. It
// returns the log start offset the log must restart at. Nothing the
// partition serves changes yet.
func (p *Partition) PrepareReset(data []byte) (int64, error) {
	start, prods, err := decodeReplicaSnapshot(data)
	if err != nil {
		return 0, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
	}
	payload, err := json.Marshal(snapshot{Offset: start, Producers: prods})
	if err != nil {
		return 0, fmt.Errorf("partition %s-%d: encode reset state: %w", p.Topic, p.Index, err)
	}
	if err := atomicfile.Write(p.fs, filepath.Join(p.log.Dir(), resetName), snapshotMagic, snapshotVersion, payload); err != nil {
		return 0, fmt.Errorf("partition %s-%d: write reset state: %w", p.Topic, p.Index, err)
	}
	return start, nil
}

// FinishReset runs once the log was restarted empty at offset by a
// snapshot install (raftlog's AfterReset; also when a restart finishes an
// install a crash cut): the producer state PrepareReset put aside becomes
// the producer snapshot (a rename, durable), and the state is reloaded
// from it. Idempotent: when the rename already happened, the snapshot is
// the installed one, and reloading again is harmless.
func (p *Partition) FinishReset(offset int64) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	from := filepath.Join(p.log.Dir(), resetName)
	switch err := p.fs.Rename(from, filepath.Join(p.log.Dir(), snapshotName)); {
	case err == nil:
		if err := p.fs.SyncDir(p.log.Dir()); err != nil {
			return fmt.Errorf("partition %s-%d: reset state: %w", p.Topic, p.Index, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("partition %s-%d: reset state: %w", p.Topic, p.Index, err)
	}
	if err := p.loadProducers(); err != nil {
		return err
	}
	if p.snapEnd != offset {
		return fmt.Errorf("partition %s-%d: the producer state of the snapshot covers %d, the log restarted at %d: %w", p.Topic, p.Index, p.snapEnd, offset, ErrBadReplicaSnapshot)
	}
	p.notify()
	p.wakeCut()
	return nil
}
