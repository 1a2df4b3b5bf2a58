package partition

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// Errors of a replicated partition (a raft group's replica).
var (
	// ErrNotLeader: this replica is not its group's leader (or has not yet
	// committed an entry in its term), so it takes no writes.
	ErrNotLeader = errors.New("partition: this replica is not the leader")
	// ErrNotEnoughReplicas: acks=all with fewer in-sync replicas than
	// min.insync.replicas.
	ErrNotEnoughReplicas = errors.New("partition: fewer in-sync replicas than min.insync.replicas")
	// ErrNotReplicatedYet: an operation a replicated partition does not
	// support yet (transactions; DeleteRecords with a replicator that
	// cannot move the start).
	ErrNotReplicatedYet = errors.New("partition: not supported on a replicated partition yet")
	// ErrStartBlocked: DeleteRecords on a replica could not move the log
	// start there now: a configuration change of the raft group lies
	// between it and the applied index (the snapshot's configuration
	// must be the one as of the start). A later call, once the start may
	// pass the change, succeeds.
	ErrStartBlocked = errors.New("partition: the log start cannot move below a configuration change yet")
)

// StartMover is what a Replicator that can move the log start through
// its group implements (internal/replica): DeleteRecords on a replica.
type StartMover interface {
	// MoveStart replicates "the log start is offset" (offset at most the
	// high watermark) and returns the start once this replica, the
	// leader, has applied it: the base offset of the batch holding offset
	// or more (the start moves by whole batches, never past offset).
	// ErrNotLeader on a follower, ErrStartBlocked when the group refused.
	MoveStart(ctx context.Context, offset int64) (int64, error)
}

// deleteRecordsTimeout bounds a replica's DeleteRecords: one commit.
const deleteRecordsTimeout = 30 * time.Second

// replicaLogConfig is the log config of a replica, from the topic's:
//   - no retention in the log: a replicated partition's log start must
//     move through raft's storage (the anchor in raft-state first), and
//     seglog's own retention would make the next open fail
//     (raftlog.ErrStartMoved). The topic's retention is kept here instead:
//     the replica asks RetentionOffset where to move the start, and moves
//     it through raftlog below its applied index (internal/replica);
//   - no LogAppendTime stamping by the log: every replica would stamp its
//     own clock into the same entry and the copies would differ; the
//     leader stamps the batch before proposing it (appendTime);
//   - compaction and compression.type stay: the segments are the raft
//     log, one batch per entry, but the cleaner only rewrites segments
//     below raft's anchor, which the replica moves above the log start
//     for it (internal/replica, compaction.go; the bound package cluster
//     gives the cleaner), and raft's storage stores an entry as it is
//     (raftlog's Append skips the log's own write rules), so the
//     leader recompresses a batch before proposing it (Append's
//     Recompress, before appendReplicated) and every replica stores the
//     same bytes. The compacted topic's rule on keys is the leader's too
//     (Validate, before the proposal).
func (rs *replState) logConfig(cfg Config) Config {
	rs.appendTime.Store(cfg.LogAppendTime)
	ms := cfg.RetentionMs
	if ms == 0 {
		ms = 7 * 24 * time.Hour // retention.ms's default, as seglog's
	}
	rs.retentionMs.Store(int64(ms))
	rs.retentionBytes.Store(cfg.RetentionBytes)
	cfg.RetentionMs, cfg.RetentionBytes = -1, 0
	cfg.LogAppendTime = false
	return cfg
}

// Replicator is what a replicated partition hands its writes to: the raft
// group of its replicas (internal/replica). The partition keeps the checks
// (validation, produce rules, idempotent sequences) and the Kafka view;
// the replicator orders batches.
type Replicator interface {
	// Propose replicates one validated batch (data, one v2 batch) and
	// returns once this replica, which must be the leader, has appended it
	// to its log: its offsets and the raft term it was appended in.
	// ErrNotLeader when this replica does not lead.
	Propose(data []byte) (first, last int64, term int32, err error)
	// TermAt is the raft term of the batch holding offset, false when the
	// log does not hold it.
	TermAt(offset int64) (int32, bool)
	// LeaderEpoch is the term this replica leads in once it committed an
	// entry in it, -1 when it does not lead.
	LeaderEpoch() int32
	// WaitLeadershipSettled waits while this replica's leadership is
	// changing (it is becoming the leader: a candidate, or a leader whose
	// epoch is not confirmed yet; or it leads and hands leadership over),
	// at most max, and reports whether a change was under way; it returns
	// false at once otherwise.
	WaitLeadershipSettled(max time.Duration) bool
	// InSync is how many voters are in sync (the ISR's size), known on the
	// leader only (0 elsewhere).
	InSync() int
	// KnownLeader is the group's leader (raft id, 0: none known) and the
	// term it leads in, as this replica last learned them; while none is
	// known, the likely one (the candidate it voted for; on a leader
	// handing over, the transferee and the next term).
	KnownLeader() (lead, term uint64)
	// ConfirmedLeader is KnownLeader's leader once this replica saw an
	// entry of its term committed (its epoch confirmed); lead 0 before,
	// and never a guess.
	ConfirmedLeader() (lead, term uint64)
}

// replState is a replicated partition's: its replicator, the high
// watermark (the commit index, translated) and what waits for it to move.
type replState struct {
	r     Replicator
	mu    sync.Mutex
	hw    int64
	moved chan struct{} // closed and replaced when hw moves or the log is cut
	// appendTime: the topic uses LogAppendTime (the leader stamps).
	appendTime atomic.Bool
	// retentionMs and retentionBytes are the topic's retention (its log
	// keeps none of its own): RetentionOffset reads them.
	retentionMs, retentionBytes atomic.Int64
	// stopped: the replicator ended (the broker stops, the partition is
	// removed); waits for commit end with ErrNotLeader.
	stopped bool
	// pidMu serializes the proposals of one idempotent producer (striped
	// by producer id): the sequence check of its next batch must see the
	// previous one in the producer state, which is updated when the entry
	// reaches the log (Appended). Batches of other producers, and those
	// without a producer id, are proposed concurrently and share the
	// leader's fsyncs.
	pidMu [64]sync.Mutex
}

// Replicated reports whether the partition is a replica of a raft group.
func (p *Partition) Replicated() bool { return p.repl.Load() != nil }

// SetReplicator makes p a replica: from now on Append proposes through r,
// the high watermark is what SetHighWatermark says (hw, the commit index
// translated, at first), reads stop there, and WaitCommitted waits for
// it. Called once, before the partition is shared.
func (p *Partition) SetReplicator(r Replicator, hw int64) {
	rs := &replState{r: r, hw: hw, moved: make(chan struct{})}
	p.log.SetConfig(rs.logConfig(p.log.Config()))
	p.repl.Store(rs)
}

// Log is the partition's segment log, for its replicator only (raft's
// storage is built over it; internal/replica): every other caller goes
// through the partition.
func (p *Partition) Log() *seglog.Log { return p.log }

// SetHighWatermark moves the high watermark of a replicated partition
// (the replicator calls it when the commit index moves); it never moves
// back.
func (p *Partition) SetHighWatermark(hw int64) {
	rs := p.repl.Load()
	rs.mu.Lock()
	if hw <= rs.hw {
		rs.mu.Unlock()
		return
	}
	rs.hw = hw
	close(rs.moved)
	rs.moved = make(chan struct{})
	rs.mu.Unlock()
	p.notify()
}

// Appended tells the partition that batches from offset on were appended
// to its log by its replicator (on the leader its own proposals, on a
// follower the leader's): their idempotent producer state is recorded, so
// every replica rebuilds the state from the batches in its log.
//
// Transactions too: a transactional batch opens its producer's
// transaction here (the last stable offset stops at it), a COMMIT or
// ABORT marker ends it (an abort goes into the aborted-transaction list),
// in log order, as a restart's replay of the log would.
func (p *Partition) Appended(from int64) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now().UnixMilli()
	var txnHdrs []record.BatchHeader
	err := p.log.WalkHeaders(from, func(h record.BatchHeader) bool {
		if h.BaseOffset < from || h.ProducerID < 0 {
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
		return fmt.Errorf("partition %s-%d: producer state after append at %d: %w", p.Topic, p.Index, from, err)
	}
	if len(txnHdrs) > 0 {
		p.replayTxns(txnHdrs)
		p.dirty = true
	}
	return nil
}

// ReplicatorStopped tells the partition its replicator ended: a wait for
// commit fails at once (ErrNotLeader, so the client retries elsewhere)
// instead of running into its deadline.
func (p *Partition) ReplicatorStopped() {
	rs := p.repl.Load()
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.stopped = true
	close(rs.moved)
	rs.moved = make(chan struct{})
	rs.mu.Unlock()
}

// wakeCut wakes WaitCommitted calls after a truncation (their batch may be
// gone).
func (p *Partition) wakeCut() {
	rs := p.repl.Load()
	if rs == nil {
		return
	}
	rs.mu.Lock()
	close(rs.moved)
	rs.moved = make(chan struct{})
	rs.mu.Unlock()
}

func (rs *replState) state() (int64, <-chan struct{}) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.hw, rs.moved
}

func (rs *replState) isStopped() bool {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return rs.stopped
}

// appendReplicated is Append on a replica: the checks, then the proposal.
//
// A transactional batch is checked as on a single copy (KIP-890's
// verification when its producer has no transaction open here); the
// transaction opens on every replica when the batch reaches its log
// (Appended), before the high watermark can pass it, so the last stable
// offset holds read_committed readers back from the start. The producer's
// lock (pidMu) is held from the check to the local append, and markers
// take it too (AppendMarker): a marker cannot land between a batch's check
// and its append.
func (p *Partition) appendReplicated(rs *replState, data []byte, hdrs []record.BatchHeader, rules AppendRules) (AppendResult, error) {
	if len(hdrs) != 1 {
		// One entry is one batch: the client's batch is the entry.
		return AppendResult{}, fmt.Errorf("%w: %d record batches; a replicated partition takes one per produce", record.ErrInvalidRecord, len(hdrs))
	}
	h := hdrs[0]
	if h.IsTransactional() && h.ProducerID < 0 {
		return AppendResult{}, fmt.Errorf("%w: a transactional batch without a producer id", record.ErrInvalidRecord)
	}
	if h.ProducerID >= 0 {
		mu := rs.pidLock(h.ProducerID)
		mu.Lock()
		defer mu.Unlock()
	}
	if rs.r.LeaderEpoch() < 0 {
		return AppendResult{}, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, ErrNotLeader)
	}
	if h.ProducerID >= 0 {
		p.mu.Lock()
		dup, isDup, err := p.producers[h.ProducerID].check(h)
		if err == nil && !isDup {
			err = p.verifyTxnLocked(h, rules)
		}
		p.mu.Unlock()
		if err != nil {
			return AppendResult{}, err
		}
		if isDup {
			term, ok := rs.r.TermAt(dup.LastOffset)
			if !ok {
				return AppendResult{}, fmt.Errorf("partition %s-%d: duplicate of a batch no longer in the log: %w", p.Topic, p.Index, ErrTruncated)
			}
			return AppendResult{BaseOffset: dup.FirstOffset, LastOffset: dup.LastOffset, LogAppendTime: record.NoTimestamp, Duplicate: true, LeaderEpoch: term}, nil
		}
	}
	appendTime := record.NoTimestamp
	if rs.appendTime.Load() {
		// Stamped once, here, so that every replica stores the same bytes.
		appendTime = p.now().UnixMilli()
		record.SetLogAppendTime(data, appendTime)
	}
	first, last, term, err := rs.r.Propose(data)
	if err != nil {
		return AppendResult{}, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
	}
	return AppendResult{BaseOffset: first, LastOffset: last, LogAppendTime: appendTime, LeaderEpoch: term}, nil
}

// pidLock is the lock that serializes the proposals of producer pid.
func (rs *replState) pidLock(pid int64) *sync.Mutex {
	return &rs.pidMu[uint64(pid)%uint64(len(rs.pidMu))]
}

// appendMarkerReplicated is AppendMarker on a replica: the leader proposes
// the marker batch and returns once it is in its own log, where Appended
// ends the transaction; every replica does the same when the marker
// reaches its log. The caller waits for commit (WaitCommitted with the
// result's epoch).
func (p *Partition) appendMarkerReplicated(rs *replState, pid int64, epoch int16, batch []byte) (MarkerResult, error) {
	mu := rs.pidLock(pid)
	mu.Lock()
	defer mu.Unlock()
	if rs.r.LeaderEpoch() < 0 {
		return MarkerResult{}, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, ErrNotLeader)
	}
	p.mu.Lock()
	err := p.markerFencedLocked(pid, epoch)
	p.mu.Unlock()
	if err != nil {
		return MarkerResult{}, err
	}
	_, last, term, err := rs.r.Propose(batch)
	if err != nil {
		return MarkerResult{}, fmt.Errorf("partition %s-%d: marker: %w", p.Topic, p.Index, err)
	}
	return MarkerResult{Offset: last, LeaderEpoch: term}, nil
}

// WaitCommitted returns once the batch ending at lastOffset, appended in
// leader epoch epoch (AppendResult's), is below the high watermark: on a
// replica, committed (fsynced on a majority); on a single node, fsynced.
// ErrTruncated when a leader change replaced it (another batch, of
// another term, now holds the offset).
func (p *Partition) WaitCommitted(ctx context.Context, lastOffset int64, epoch int32) error {
	rs := p.repl.Load()
	if rs == nil {
		return p.WaitDurable(ctx, lastOffset)
	}
	for {
		hw, moved := rs.state()
		term, ok := rs.r.TermAt(lastOffset)
		if !ok || term != epoch {
			return fmt.Errorf("partition %s-%d: offset %d of epoch %d: %w", p.Topic, p.Index, lastOffset, epoch, ErrTruncated)
		}
		if hw > lastOffset {
			return nil
		}
		if rs.isStopped() {
			return fmt.Errorf("partition %s-%d: replication stopped before offset %d was committed: %w", p.Topic, p.Index, lastOffset, ErrNotLeader)
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return fmt.Errorf("partition %s-%d: wait for commit of %d: %w", p.Topic, p.Index, lastOffset, ctx.Err())
		}
	}
}

// EpochEnd answers OffsetForLeaderEpoch for an epoch older than the
// current one on a replicated partition, as Kafka's
// LeaderEpochFileCache.endOffsetFor: the start offset of the first batch
// of a later epoch, with the latest epoch at or below the one asked (the
// one asked when the log holds none that old); (-1, -1) when no later
// epoch is in the log. A batch's leader epoch is the raft term it was
// appended in, and terms never decrease along a raft log, so a binary
// search over offsets with the replicator's TermAt finds it. ok is false
// on a single copy (one epoch, 0).
func (p *Partition) EpochEnd(epoch int32) (int32, int64, bool) {
	rs := p.repl.Load()
	if rs == nil {
		return 0, 0, false
	}
	start, end := p.log.StartOffset(), p.log.EndOffset()
	n := sort.Search(int(end-start), func(k int) bool {
		t, ok := rs.r.TermAt(start + int64(k))
		return !ok || t > epoch
	})
	first := start + int64(n)
	if first >= end {
		return -1, -1, true
	}
	if first == start {
		return epoch, first, true
	}
	floor, ok := rs.r.TermAt(first - 1)
	if !ok {
		floor = epoch
	}
	return floor, first, true
}

// WaitLeadershipSettled waits, on a replicated partition, while its
// replica here is becoming the group's leader or handing leadership over,
// at most max, and reports whether a change was under way (false at
// once otherwise; Replicator.WaitLeadershipSettled).
func (p *Partition) WaitLeadershipSettled(max time.Duration) bool {
	if rs := p.repl.Load(); rs != nil {
		return rs.r.WaitLeadershipSettled(max)
	}
	return false
}

// KnownLeader is, on a replicated partition, its group's leader (raft
// id) and that leader's term as this replica last learned them, or the
// likely leader (Replicator.KnownLeader); ok is false when none is known
// or the partition is not replicated.
func (p *Partition) KnownLeader() (raftID uint64, term int32, ok bool) {
	if rs := p.repl.Load(); rs != nil {
		lead, t := rs.r.KnownLeader()
		return lead, int32(t), lead != 0
	}
	return 0, 0, false
}

// ConfirmedLeader is, on a replicated partition, its group's leader
// (raft id) and term once this replica knows the leader's epoch
// confirmed (Replicator.ConfirmedLeader); ok false otherwise.
func (p *Partition) ConfirmedLeader() (raftID uint64, term int32, ok bool) {
	if rs := p.repl.Load(); rs != nil {
		lead, t := rs.r.ConfirmedLeader()
		return lead, int32(t), lead != 0
	}
	return 0, 0, false
}

// InSyncReplicas is the ISR's size on a replicated partition's leader (0
// on a follower), 1 on a single replica.
func (p *Partition) InSyncReplicas() int {
	if rs := p.repl.Load(); rs != nil {
		return rs.r.InSync()
	}
	return 1
}

// capRead cuts a read at the high watermark: only whole batches below it.
func capRead(res ReadResult, hw int64) ReadResult {
	data := res.Data
	off := 0
	for off < len(data) {
		h, err := record.ReadBatchHeader(data[off:])
		if err != nil || h.BaseOffset >= hw || h.Size() > len(data)-off {
			break
		}
		off += h.Size()
	}
	res.Data = data[:off]
	return res
}

// RetentionOffset is, on a replicated partition, where the topic's
// retention (retention.ms, retention.bytes) would move the log start: the
// base offset of the first segment it would keep (seglog.RetentionOffset).
// Its replicator moves the start there (or less far); the partition's own
// log deletes nothing by itself. ok is false on a single replica, whose
// log applies retention itself.
func (p *Partition) RetentionOffset(now time.Time) (offset int64, ok bool, err error) {
	rs := p.repl.Load()
	if rs == nil {
		return 0, false, nil
	}
	off, err := p.log.RetentionOffset(now, time.Duration(rs.retentionMs.Load()), rs.retentionBytes.Load())
	if err != nil {
		return 0, true, fmt.Errorf("partition %s-%d: %w", p.Topic, p.Index, err)
	}
	return off, true, nil
}

// StartMoved wakes the partition's waiters after its replicator moved the
// log start (a fetch below it now answers OFFSET_OUT_OF_RANGE).
func (p *Partition) StartMoved() { p.notify() }
