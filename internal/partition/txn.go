package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// ErrTxnNotVerified: a transactional batch from a producer with no ongoing
// transaction on this partition that the transaction coordinator did not
// confirm (KIP-890 part 1). The handlers map it to INVALID_TXN_STATE.
var ErrTxnNotVerified = errors.New("partition: transactional batch for a partition not in the producer's ongoing transaction")

// ErrTxnVerifyUnavailable: the transaction coordinator could not be asked
// (on another broker that is down or moving); a VerifyTxn error wrapping
// it is returned as it is, not as ErrTxnNotVerified, so the producer
// retries instead of aborting. The handlers map it to NOT_ENOUGH_REPLICAS,
// as Kafka does for the same case.
var ErrTxnVerifyUnavailable = errors.New("partition: the transaction coordinator could not verify the write")

// AbortedTxn is one aborted transaction on this partition, in Kafka's
// aborted-transaction index terms: the producer, the offset of its first
// batch here, the offset of its abort marker, and the last stable offset
// when the marker was written.
type AbortedTxn struct {
	ProducerID       int64 `json:"pid"`
	FirstOffset      int64 `json:"first"`
	LastOffset       int64 `json:"last"`
	LastStableOffset int64 `json:"lso"`
}

// Control record types (Kafka's ControlRecordType): the key of the one
// record of a control batch is (version int16 = 0, type int16).
const (
	controlAbort  = 0
	controlCommit = 1
)

// MarkerResult describes an appended transaction marker: its offset,
// and on a replicated partition the raft term it was appended in (0 on a
// single copy), for WaitCommitted.
type MarkerResult struct {
	Offset      int64
	LeaderEpoch int32
}

// LastStableOffset is the offset below which every transaction is decided
// (Kafka's LSO): the first offset of the oldest ongoing transaction, or
// the high watermark when none is ongoing; never below the log start (a
// DeleteRecords past an open transaction's first batch leaves nothing
// below the start to wait for). read_committed consumers read below it.
//
// The high watermark is read before the first unstable offset: a
// transaction opens (firstUnstable) before its first batch is appended,
// and an abort is indexed before it closes, so a high watermark that
// covers a batch was read after its transaction opened, and the first
// unstable offset read after it says whether that transaction is still
// open. Read the other way round, a reader could see no open transaction,
// then a high watermark past a batch whose transaction had just opened,
// and serve it with no abort to drop it by (seen once in CI under load).
func (p *Partition) LastStableOffset() int64 {
	hw := p.HighWatermark()
	if lsoBetweenReads != nil {
		lsoBetweenReads()
	}
	if f := p.firstUnstable.Load(); f >= 0 {
		return min(max(f, p.StartOffset()), hw)
	}
	return hw
}

// lsoBetweenReads, when set (tests only), runs between LastStableOffset's
// two reads, to make a writer's step land there.
var lsoBetweenReads func()

// ReadCommitted is Read for a read_committed consumer: whole batches from
// offset that start below the last stable offset.
func (p *Partition) ReadCommitted(offset int64, maxBytes int, minOne bool) (ReadResult, error) {
	lso := p.LastStableOffset()
	rr, err := p.log.Read(offset, maxBytes, minOne)
	if err != nil {
		return rr, err
	}
	b := rr.Data
	n := 0
	for n < len(b) {
		h, err := record.ReadBatchHeader(b[n:])
		if err != nil || h.Size() > len(b)-n || h.BaseOffset >= lso {
			break
		}
		n += h.Size()
	}
	rr.Data = b[:n]
	return rr, nil
}

// AbortedTxns returns the aborted transactions that may hold records in
// [from, to]: those whose marker is at or after from and whose first
// batch is at or before to, ordered by marker offset.
func (p *Partition) AbortedTxns(from, to int64) []AbortedTxn {
	p.amu.RLock()
	defer p.amu.RUnlock()
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range p.aborted[i:] {
		if a.FirstOffset <= to {
			out = append(out, a)
		}
	}
	if len(out) > 0 && p.log.Compaction().Enabled {
		// The log cleaner removes an aborted transaction's marker once
		// its records are gone (package cleaner). An entry whose marker
		// is gone is not answered: a read_committed client would drop the
		// producer's later transactional batches, waiting for an abort
		// marker that never comes (Kafka's cleaner drops the entry from
		// the cleaned segment's index).
		out = slices.DeleteFunc(out, func(a AbortedTxn) bool { return !p.markerAt(a.LastOffset) })
	}
	return out
}

// markerAt reports whether the log still holds the control batch at off
// (true when it cannot tell: the entry is then answered, as before).
func (p *Partition) markerAt(off int64) bool {
	found := true
	_ = p.log.WalkHeaders(off, func(h record.BatchHeader) bool {
		found = h.BaseOffset <= off && h.IsControl()
		return false
	})
	return found
}

// OngoingTxn is a producer's open transaction on this partition.
type OngoingTxn struct {
	ProducerID  int64
	Epoch       int16
	FirstOffset int64
}

// ProducerState is one producer's state as DescribeProducers shows it.
type ProducerState struct {
	ProducerID    int64
	Epoch         int16
	LastSequence  int32
	LastTimestamp int64
	TxnStart      int64 // first offset of its ongoing transaction, or -1
}

// TxnOngoing reports whether producer pid has a transaction open on this
// partition at epoch (a batch of it written, no marker yet): its next
// batch needs no verification (verifyTxnLocked), so a leader need not ask
// the transaction coordinator to add the partition again (transactions v2
// in a cluster). A hint read under p.mu and stale at once: the append's
// own check under the lock is the guard.
func (p *Partition) TxnOngoing(pid int64, epoch int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, open := p.txns[pid]
	pr := p.producers[pid]
	return open && pr != nil && pr.Epoch == epoch
}

// Producers describes the producers this partition knows, by id.
func (p *Partition) Producers() []ProducerState {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ProducerState, 0, len(p.producers))
	for pid, pr := range p.producers {
		s := ProducerState{ProducerID: pid, Epoch: pr.Epoch, LastSequence: -1, LastTimestamp: -1, TxnStart: -1}
		if n := len(pr.Batches); n > 0 {
			s.LastSequence, s.LastTimestamp = pr.Batches[n-1].LastSeq, pr.Batches[n-1].Timestamp
		}
		if f, ok := p.txns[pid]; ok {
			s.TxnStart = f
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ProducerID < out[j].ProducerID })
	return out
}

// AppendMarker writes a transaction marker (a control batch of one record:
// COMMIT or ABORT, with the coordinator's epoch) for producer pid at
// epoch, ending its transaction on this partition: the last stable offset
// moves past it, and an abort is added to the aborted-transaction index.
// Only the transaction coordinator calls it. A marker for a producer with
// no ongoing transaction here is still written (Kafka writes one to every
// partition of the transaction). An epoch older than the producer's is
// ErrProducerFenced; a newer one becomes the producer's epoch. The marker
// is durable (on a replica: committed) once WaitCommitted with the
// result's offset and epoch returns.
func (p *Partition) AppendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32) (MarkerResult, error) {
	res, _, err := p.appendMarker(pid, epoch, commit, coordinatorEpoch, false)
	return res, err
}

// RepairMarker writes the marker AppendMarker would, but only when
// producer pid has a transaction open here at an epoch older than epoch,
// and reports whether it wrote one. The transaction coordinator calls it
// at a restart for the markers of a transaction that ended with an epoch
// bump (transactions v2: the ended transaction's batches are at an older
// epoch than its markers and than the next transaction's batches) and
// that it did not know durable when the next transaction began: the log
// keeps a prefix of what was appended, so either the marker survived and
// whatever is open at epoch is the next transaction's (left alone), or it
// was lost together with everything after it and what is open is the
// ended transaction's, older than epoch (ended now). Single copy only:
// ErrNotLeader on a replica of a raft group, where the coordinator never
// leaves markers to repair.
func (p *Partition) RepairMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32) (MarkerResult, bool, error) {
	if p.repl.Load() != nil {
		return MarkerResult{}, false, fmt.Errorf("partition %s-%d: repair a marker on a replica: %w", p.Topic, p.Index, ErrNotLeader)
	}
	return p.appendMarker(pid, epoch, commit, coordinatorEpoch, true)
}

// appendMarker is AppendMarker, or RepairMarker when onlyOlderOpen is set.
func (p *Partition) appendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, onlyOlderOpen bool) (MarkerResult, bool, error) {
	typ := int16(controlAbort)
	if commit {
		typ = controlCommit
	}
	key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
	val := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint16(nil, 0), uint32(coordinatorEpoch))
	batch, err := record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, Transactional: true, Control: true,
		BaseTimestamp: p.now().UnixMilli(), ProducerID: pid, ProducerEpoch: epoch, BaseSequence: -1,
	}, []record.Record{{Key: key, Value: val}})
	if err != nil {
		return MarkerResult{}, false, fmt.Errorf("partition %s-%d: marker: %w", p.Topic, p.Index, err)
	}
	if rs := p.repl.Load(); rs != nil {
		res, err := p.appendMarkerReplicated(rs, pid, epoch, batch)
		return res, err == nil, err
	}
	hdrs, err := p.log.Validate(batch)
	if err != nil {
		return MarkerResult{}, false, fmt.Errorf("partition %s-%d: marker: %w", p.Topic, p.Index, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if onlyOlderOpen {
		_, open := p.txns[pid]
		if pr := p.producers[pid]; !open || pr == nil || pr.Epoch >= epoch {
			return MarkerResult{Offset: -1}, false, nil
		}
	}
	if err := p.markerFencedLocked(pid, epoch); err != nil {
		return MarkerResult{}, false, err
	}
	res, err := p.log.AppendValidated(batch, hdrs, seglog.AppendOptions{LeaderEpoch: p.LeaderEpoch()})
	if err != nil {
		return MarkerResult{}, false, err
	}
	p.applyMarkerLocked(res.Batches[0], commit)
	p.dirty = true
	p.notify()
	return MarkerResult{Offset: res.LastOffset}, true, nil
}

// markerFencedLocked refuses a marker at an epoch older than producer
// pid's (ErrProducerFenced); p.mu held.
func (p *Partition) markerFencedLocked(pid int64, epoch int16) error {
	if pr := p.producers[pid]; pr != nil && epoch < pr.Epoch {
		return fmt.Errorf("%w: marker epoch %d < %d", ErrProducerFenced, epoch, pr.Epoch)
	}
	return nil
}

// applyMarkerLocked ends pid's transaction at the marker h; p.mu held.
func (p *Partition) applyMarkerLocked(h record.BatchHeader, commit bool) {
	pr := p.producers[h.ProducerID]
	if pr == nil {
		pr = &producer{Epoch: h.ProducerEpoch}
		p.producers[h.ProducerID] = pr
	}
	if h.ProducerEpoch > pr.Epoch {
		pr.Epoch, pr.Batches = h.ProducerEpoch, pr.Batches[:0]
	}
	first, ok := p.txns[h.ProducerID]
	if !ok {
		return
	}
	if !commit {
		// The aborted entry goes in before the last stable offset moves
		// past the transaction: a read_committed fetch that can read its
		// records must find them in AbortedTxns. Its LSO is the one right
		// after the marker: the oldest transaction still open, or the
		// offset after the marker (as a replay of the log computes it,
		// whatever came after).
		lso := h.LastOffset() + 1
		for pid, f := range p.txns {
			if pid != h.ProducerID && f < lso {
				lso = f
			}
		}
		p.amu.Lock()
		p.aborted = append(p.aborted, AbortedTxn{ProducerID: h.ProducerID, FirstOffset: first, LastOffset: h.BaseOffset, LastStableOffset: lso})
		p.amu.Unlock()
	}
	delete(p.txns, h.ProducerID)
	p.updateUnstableLocked()
}

// beginTxnLocked notes a transactional data batch (replay); p.mu held.
func (p *Partition) beginTxnLocked(h record.BatchHeader) {
	if _, ok := p.txns[h.ProducerID]; ok {
		return
	}
	p.txns[h.ProducerID] = h.BaseOffset
	p.updateUnstableLocked()
}

// openTxnsLocked opens the transactions whose first batch is among hdrs,
// about to be appended at the log's end, before they are appended: the
// last stable offset must stop at such a batch from the moment readers
// can see it. It returns the producers it opened, for closeTxnsLocked if
// the append fails. p.mu held (so the log's end cannot move meanwhile).
func (p *Partition) openTxnsLocked(hdrs []record.BatchHeader) []int64 {
	var opened []int64
	next := p.log.EndOffset()
	for _, h := range hdrs {
		if h.IsTransactional() && !h.IsControl() {
			if _, ok := p.txns[h.ProducerID]; !ok {
				p.txns[h.ProducerID] = next
				opened = append(opened, h.ProducerID)
			}
		}
		next += int64(h.LastOffsetDelta) + 1
	}
	if len(opened) > 0 {
		p.updateUnstableLocked()
	}
	return opened
}

// closeTxnsLocked undoes openTxnsLocked after a failed append; p.mu held.
func (p *Partition) closeTxnsLocked(opened []int64) {
	for _, pid := range opened {
		delete(p.txns, pid)
	}
	if len(opened) > 0 {
		p.updateUnstableLocked()
	}
}

func (p *Partition) updateUnstableLocked() {
	first := int64(-1)
	for _, f := range p.txns {
		if first < 0 || f < first {
			first = f
		}
	}
	p.firstUnstable.Store(first)
}

// verifyTxnLocked checks the transactional batches of an append: a
// producer that has no ongoing transaction here must be confirmed by the
// coordinator (KIP-890 part 1), so that a late write from a transaction
// that has ended cannot open a new one. p.mu held: a marker cannot land
// between the check and the append.
func (p *Partition) verifyTxnLocked(h record.BatchHeader, rules AppendRules) error {
	if !h.IsTransactional() {
		return nil
	}
	if h.ProducerID < 0 {
		return fmt.Errorf("%w: a transactional batch without a producer id", record.ErrInvalidRecord)
	}
	if _, ok := p.txns[h.ProducerID]; ok {
		return nil
	}
	if rules.VerifyTxn == nil {
		return fmt.Errorf("%w: producer %d", ErrTxnNotVerified, h.ProducerID)
	}
	if err := rules.VerifyTxn(h.ProducerID, h.ProducerEpoch); errors.Is(err, ErrTxnVerifyUnavailable) {
		return fmt.Errorf("producer %d epoch %d: %w", h.ProducerID, h.ProducerEpoch, err)
	} else if err != nil {
		return fmt.Errorf("%w: producer %d epoch %d: %w", ErrTxnNotVerified, h.ProducerID, h.ProducerEpoch, err)
	}
	return nil
}

// controlType reads the type of the control batch at offset (the key of
// its one record); ok is false when it cannot be read.
func (p *Partition) controlType(h record.BatchHeader) (int16, bool) {
	rr, err := p.log.Read(h.BaseOffset, h.Size(), true)
	if err != nil || len(rr.Data) < h.Size() {
		return 0, false
	}
	b := rr.Data
	for len(b) > 0 {
		bh, err := record.ReadBatchHeader(b)
		if err != nil || bh.Size() > len(b) {
			return 0, false
		}
		if bh.BaseOffset == h.BaseOffset {
			_, recs, err := record.Records(b[:bh.Size()], 1<<20)
			if err != nil || len(recs) == 0 || len(recs[0].Key) < 4 {
				return 0, false
			}
			return int16(binary.BigEndian.Uint16(recs[0].Key[2:])), true
		}
		b = b[bh.Size():]
	}
	return 0, false
}

// replayTxns applies the transactional batches and markers among hdrs (in
// log order) to the transaction state; loadProducers calls it after its
// walk, with p.mu held or p not yet shared.
func (p *Partition) replayTxns(hdrs []record.BatchHeader) {
	for _, h := range hdrs {
		if !h.IsControl() {
			p.beginTxnLocked(h)
			continue
		}
		typ, ok := p.controlType(h)
		if !ok || (typ != controlAbort && typ != controlCommit) {
			continue // another control type (raft's), or unreadable
		}
		p.applyMarkerLocked(h, typ == controlCommit)
	}
}

// pruneAbortedLocked forgets aborted transactions wholly below the log
// start; p.mu held.
func (p *Partition) pruneAbortedLocked() {
	start := p.log.StartOffset()
	p.amu.Lock()
	i := sort.Search(len(p.aborted), func(i int) bool { return p.aborted[i].LastOffset >= start })
	if i > 0 {
		p.aborted = append([]AbortedTxn(nil), p.aborted[i:]...)
	}
	p.amu.Unlock()
}
