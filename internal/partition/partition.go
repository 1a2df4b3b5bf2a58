package partition

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Partition is one partition of a topic on this broker: its log and the
// state of the idempotent producers writing to it.
type Partition struct {
	Topic string
	Index int32

	log *seglog.Log
	fs  vfs.FS
	now func() time.Time

	// snapMu serializes Snapshot (whose file write runs without mu) with
	// TruncateTo, which must not see a snapshot of removed batches
	// written after it; taken before mu.
	snapMu    sync.Mutex
	mu        sync.Mutex // serializes appends with the producer checks
	producers map[int64]*producer
	dirty     bool  // producer state changed since the last snapshot
	snapEnd   int64 // log end offset the last snapshot covered (-1: none)

	wmu     sync.Mutex // guards waiters; taken after mu (Append notifies under mu), never before
	waiters map[*Waiter]struct{}

	// Transactions (txn.go): txns is the first offset of each producer's
	// ongoing transaction, guarded by mu; firstUnstable is the smallest of
	// them (-1: none), read without a lock for the last stable offset.
	txns          map[int64]int64
	firstUnstable atomic.Int64
	amu           sync.RWMutex // guards aborted; taken after mu
	aborted       []AbortedTxn // by marker offset
	// txnFiles is the content of each <base>.txnindex file as last
	// written or read (txnindex.go); guarded by snapMu.
	txnFiles map[int64][]byte
	// repl is set on a replica of a raft group (replicated.go), nil on a
	// single replica.
	repl atomic.Pointer[replState]
}

// Options configure Open.
type Options struct {
	FS  vfs.FS
	Now func() time.Time
}

// Open wraps an open log and rebuilds the producer state: from the snapshot
// written at the last checkpoint or clean shutdown, then from the headers of
// any batches after it.
func Open(topic string, index int32, l *seglog.Log, opts Options) (*Partition, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	p := &Partition{Topic: topic, Index: index, log: l, fs: opts.FS, now: opts.Now}
	if err := p.loadProducers(); err != nil {
		return nil, err
	}
	return p, nil
}

// loadProducers builds the producer state from scratch: from the snapshot
// when it covers a prefix of the log, then from the headers of the batches
// after it (all of them without one). Open and TruncateTo call it; p.mu
// must be held, or p not yet shared.
func (p *Partition) loadProducers() error {
	l := p.log
	p.producers, p.snapEnd, p.dirty = map[int64]*producer{}, -1, false
	p.txns = map[int64]int64{}
	p.firstUnstable.Store(-1)
	p.amu.Lock()
	p.aborted = nil
	p.amu.Unlock()
	from := l.StartOffset()
	snap, err := p.readSnapshot()
	if err == nil && snap.Offset >= from && snap.Offset <= l.EndOffset() {
		if aborted, ok := p.loadTxnIndexes(from, snap.Offset); ok {
			for pid, pr := range snap.Producers {
				p.producers[pid] = pr
			}
			for pid, first := range snap.Txns {
				p.txns[pid] = first
			}
			p.updateUnstableLocked()
			p.amu.Lock()
			p.aborted = aborted
			p.amu.Unlock()
			from = snap.Offset
			p.snapEnd = snap.Offset
		}
	}
	if p.txnFiles == nil {
		p.txnFiles = map[int64][]byte{}
	}
	now := p.now().UnixMilli()
	var txnHdrs []record.BatchHeader
	err = l.WalkHeaders(from, func(h record.BatchHeader) bool {
		if h.LastOffset() < from || h.ProducerID < 0 {
			return true
		}
		if h.IsTransactional() {
			txnHdrs = append(txnHdrs, h)
		}
		if h.IsControl() {
			return true
		}
		pr := p.producers[h.ProducerID]
		if pr == nil {
			pr = &producer{Epoch: h.ProducerEpoch}
			p.producers[h.ProducerID] = pr
		}
		pr.update(h, now)
		p.dirty = true
		return true
	})
	if err != nil {
		return fmt.Errorf("partition %s-%d: producer state: %w", p.Topic, p.Index, err)
	}
	p.replayTxns(txnHdrs)
	if p.snapEnd < 0 && len(p.producers) == 0 && l.StartOffset() == l.EndOffset() {
		// An empty log (a new partition): a start reads nothing without a
		// snapshot too, so none is due until something is appended. This
		// spares a new partition two fsyncs at the next checkpoint or stop.
		p.snapEnd = l.EndOffset()
	}
	return nil
}

// HighWatermark is the offset up to which consumers may read. With a single
// replica it is the log end offset; on a replica of a raft group, the
// commit index translated to an offset.
func (p *Partition) HighWatermark() int64 {
	if rs := p.repl.Load(); rs != nil {
		hw, _ := rs.state()
		return hw
	}
	return p.log.EndOffset()
}

// LeaderEpoch is the partition's leader epoch: always 0 on a single
// replica; on a replica of a raft group the term its leader committed an
// entry in, -1 on a replica that does not lead.
func (p *Partition) LeaderEpoch() int32 {
	if rs := p.repl.Load(); rs != nil {
		return rs.r.LeaderEpoch()
	}
	return 0
}

// AppendResult describes a produce to this partition.
type AppendResult struct {
	BaseOffset    int64
	LastOffset    int64
	LogAppendTime int64 // record.NoTimestamp unless the topic uses LogAppendTime
	// Duplicate is set when the batch was a retry of one already written:
	// the offsets are those of the original.
	Duplicate bool
	// LeaderEpoch is the raft term the batch was appended in on a
	// replicated partition (WaitCommitted checks it), 0 otherwise.
	LeaderEpoch int32
}

// Append validates and writes the batches in data (v2, possibly several),
// applying rules and the idempotent producer checks. It returns when the
// data is written (and readable); WaitDurable waits for fsync.
func (p *Partition) Append(data []byte, rules AppendRules) (AppendResult, error) {
	var room [1]record.BatchHeader // a produce's usual one batch: no allocation
	hdrs, err := p.log.ValidateInto(room[:0], data)
	if err != nil {
		return AppendResult{}, err
	}
	// compression.type other than producer: rebuilt here, off the lock.
	if data, hdrs, err = p.log.Recompress(data, hdrs); err != nil {
		return AppendResult{}, err
	}
	if err := rules.check(hdrs); err != nil {
		return AppendResult{}, err
	}
	if rs := p.repl.Load(); rs != nil {
		return p.appendReplicated(rs, data, hdrs, rules)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	// Producer checks against the state as it would be after each batch.
	for i, h := range hdrs {
		if h.ProducerID < 0 {
			if h.IsTransactional() {
				return AppendResult{}, fmt.Errorf("%w: a transactional batch without a producer id", record.ErrInvalidRecord)
			}
			continue
		}
		dup, isDup, err := p.producers[h.ProducerID].check(h)
		if err != nil {
			return AppendResult{}, err
		}
		if isDup {
			if len(hdrs) != 1 || i != 0 {
				return AppendResult{}, fmt.Errorf("%w: a retried batch mixed with new ones", ErrOutOfOrderSequence)
			}
			return AppendResult{BaseOffset: dup.FirstOffset, LastOffset: dup.LastOffset, LogAppendTime: record.NoTimestamp, Duplicate: true}, nil
		}
		if err := p.verifyTxnLocked(h, rules); err != nil {
			return AppendResult{}, err
		}
	}
	// A transaction's first batch holds the last stable offset back from
	// before it is readable: once the log's end moves, a read_committed
	// fetch must not find it below the LSO (txn.go).
	opened := p.openTxnsLocked(hdrs)
	res, err := p.log.AppendValidated(data, hdrs, seglog.AppendOptions{LeaderEpoch: p.LeaderEpoch()})
	if err != nil {
		p.closeTxnsLocked(opened)
		return AppendResult{}, err
	}
	p.notify()
	now := p.now().UnixMilli()
	for _, h := range res.Batches {
		if h.ProducerID < 0 {
			continue
		}
		pr := p.producers[h.ProducerID]
		if pr == nil {
			pr = &producer{Epoch: h.ProducerEpoch}
			p.producers[h.ProducerID] = pr
		}
		pr.update(h, now)
		p.dirty = true
	}
	return AppendResult{BaseOffset: res.FirstOffset, LastOffset: res.LastOffset, LogAppendTime: res.LogAppendTime}, nil
}

// WaitDurable returns once offset is fsynced.
func (p *Partition) WaitDurable(ctx context.Context, offset int64) error {
	return p.log.WaitDurable(ctx, offset)
}

// snapshot file: <partition dir>/producer-state.snapshot, a JSON payload
// under package atomicfile's header with magic "STPS", version 1.
type snapshot struct {
	Offset    int64               `json:"offset"` // state covers batches below it
	Producers map[int64]*producer `json:"producers"`
	// Txns is the first offset of each ongoing transaction. (The aborted
	// ones are in the <base>.txnindex files: txnindex.go.)
	Txns map[int64]int64 `json:"txns,omitempty"`
}

const (
	snapshotName    = "producer-state.snapshot"
	snapshotMagic   = "STPS"
	snapshotVersion = 1
)

// errBadSnapshot marks an unreadable snapshot; Open then rebuilds from the
// log.
var errBadSnapshot = errors.New("partition: bad producer snapshot")

func (p *Partition) readSnapshot() (snapshot, error) {
	b, err := atomicfile.ReadBytes(p.fs, filepath.Join(p.log.Dir(), snapshotName), 64<<20)
	if err != nil {
		return snapshot{}, err
	}
	return decodeSnapshot(b)
}

// decodeSnapshot parses a snapshot file (fuzzed by FuzzDecodeSnapshot).
func decodeSnapshot(b []byte) (snapshot, error) {
	var s snapshot
	v, payload, err := atomicfile.Decode(b, snapshotMagic)
	if err != nil || v != snapshotVersion {
		return s, errBadSnapshot
	}
	if err := json.Unmarshal(payload, &s); err != nil {
		return s, errBadSnapshot
	}
	for pid, pr := range s.Producers {
		if pr == nil || len(pr.Batches) > cachedBatches {
			delete(s.Producers, pid)
		}
	}
	return s, nil
}

// producerExpiry is Kafka's producer.id.expiration.ms default.
const producerExpiry = 24 * time.Hour

// Snapshot writes the producer state atomically when it changed since the
// last one or the log grew past what the last one covers (even with no
// producers: the next start then reads no batch headers), dropping
// producers idle for longer than a day.
func (p *Partition) Snapshot() error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	p.mu.Lock()
	if !p.dirty && p.snapEnd == p.log.EndOffset() {
		p.mu.Unlock()
		return nil
	}
	cutoff := p.now().Add(-producerExpiry).UnixMilli()
	s := snapshot{Offset: p.log.EndOffset(), Producers: make(map[int64]*producer, len(p.producers))}
	for pid, pr := range p.producers {
		if pr.LastSeen < cutoff {
			delete(p.producers, pid)
			continue
		}
		c := *pr
		c.Batches = append([]batchMeta(nil), pr.Batches...)
		s.Producers[pid] = &c
	}
	if len(p.txns) > 0 {
		s.Txns = make(map[int64]int64, len(p.txns))
		for pid, first := range p.txns {
			s.Txns[pid] = first
		}
	}
	p.pruneAbortedLocked()
	p.amu.RLock()
	aborted := append([]AbortedTxn(nil), p.aborted...)
	p.amu.RUnlock()
	p.dirty = false
	prevEnd := p.snapEnd
	p.snapEnd = s.Offset
	p.mu.Unlock()
	// The snapshot must not describe batches a crash could still take
	// away: make everything below its offset durable first.
	var err error
	if s.Offset > 0 {
		err = p.log.WaitDurable(context.Background(), s.Offset-1)
	}
	if err == nil {
		// The index files first: the snapshot's offset tells the next
		// Open which of their entries to trust.
		err = p.writeTxnIndexes(aborted)
	}
	if err == nil {
		payload, _ := json.Marshal(s)
		err = atomicfile.Write(p.fs, filepath.Join(p.log.Dir(), snapshotName), snapshotMagic, snapshotVersion, payload)
	}
	if err != nil {
		p.mu.Lock()
		p.dirty = true
		p.snapEnd = prevEnd
		p.mu.Unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return nil // the partition was deleted meanwhile
		}
		return fmt.Errorf("partition %s-%d: snapshot: %w", p.Topic, p.Index, err)
	}
	return nil
}

// TruncateTo removes every batch whose base offset is >= offset (see
// seglog's Log.TruncateTo: a batch boundary, at or above the start offset;
// durable on return) and rebuilds the idempotent producer state from what
// remains, so that a retry of a removed batch is never answered as a
// duplicate with the offsets it no longer has: it is appended again, or
// refused as out of order. Waiters are woken.
//
// Cost: the state is rebuilt as Open builds it, from the producer snapshot
// when it covers only kept batches (it is written at checkpoints, so the
// replay reads about a checkpoint interval of batch headers), otherwise
// from the log start: a read of every batch header of the partition
// (walked in 64 KiB chunks, so about the whole log once), with appends to
// the partition waiting. A snapshot that covers removed batches is deleted
// (durably) before the log is cut, so no crash can bring it back to
// describe batches that are gone.
func (p *Partition) TruncateTo(offset int64) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if offset >= p.log.EndOffset() || offset < p.log.StartOffset() {
		return p.log.TruncateTo(offset) // a no-op, or the log's refusal
	}
	// (An offset inside a batch is refused only below, after this: the
	// snapshot is then rewritten at the next checkpoint.)
	if p.snapEnd < 0 || p.snapEnd > offset {
		if err := p.removeSnapshot(); err != nil {
			return err
		}
	}
	terr := p.log.TruncateTo(offset)
	if terr != nil && (!errors.Is(terr, ErrFailed) || p.log.EndOffset() != offset) {
		return terr // nothing was removed
	}
	// Removed batches' producers are rebuilt even when the truncation
	// failed halfway (the log is then Failed, but still read).
	if err := p.loadProducers(); err != nil && terr == nil {
		terr = err
	}
	p.dirty = true
	p.notify()
	p.wakeCut()
	return terr
}

// removeSnapshot deletes the producer snapshot file durably; p.mu held.
func (p *Partition) removeSnapshot() error {
	path := filepath.Join(p.log.Dir(), snapshotName)
	err := p.fs.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		p.snapEnd = -1
		return nil
	}
	if err == nil {
		p.snapEnd = -1
		err = p.fs.SyncDir(p.log.Dir())
	}
	if err != nil {
		return fmt.Errorf("partition %s-%d: remove producer snapshot: %w", p.Topic, p.Index, err)
	}
	return nil
}
