package group

import (
	"fmt"
	"sort"
)

// Transactional offset commits (TxnOffsetCommit), Kafka's design: the
// group coordinator checks the committer (KIP-447: the member and
// generation, so a zombie of an older generation cannot commit) and writes
// the offsets to the offsets log as a transactional batch of the producer
// (its id and epoch, no sequence). They wait there, per producer, until
// the transaction's marker lands in the offsets partition: the transaction
// coordinator added that partition to the transaction at AddOffsetsToTxn
// and writes its COMMIT or ABORT marker there as to any other partition
// (in process, or WriteTxnMarkers from another broker). The marker, once
// committed, is handed to TxnMarker: a commit makes the producer's pending
// offsets the group's committed ones, an abort drops them. Loading the log
// replays the same (rebuild).
//
// Whether the producer's transaction includes the offsets partition is
// checked by the partition itself, as for any transactional batch
// (KIP-890 part 1: TxnCommitRequest.VerifyTxn asks the transaction
// coordinator, in process or at its broker, before the producer's first
// batch of a transaction here), so it holds wherever the coordinators are.

// OffsetsTopic is the internal topic of the offsets log (the cluster
// creates it under this name); GroupPartition names a group's partition
// of it.
const OffsetsTopic = "__consumer_offsets"

// GroupPartition is the partition of OffsetsTopic that holds a group's
// offsets and to which a transaction with the group's offsets writes its
// marker: partition 0 (the topic has one partition).
func GroupPartition(string) (topic string, index int32) { return OffsetsTopic, 0 }

// TxnCommitRequest is a TxnOffsetCommit: the group's member (generation
// -1 with no member id: not checked, clients before KIP-447) commits
// Offsets in producer ProducerID's transaction at ProducerEpoch.
type TxnCommitRequest struct {
	Group         string
	MemberID      string
	InstanceID    string
	Generation    int32
	ProducerID    int64
	ProducerEpoch int16
	Offsets       []CommitOffset
	// VerifyTxn asks the transaction coordinator whether the producer's
	// ongoing transaction at that epoch includes the offsets partition
	// (partition.AppendRules.VerifyTxn: called under the partition's lock
	// for the producer's first batch of a transaction there). Nil refuses
	// such a batch (ErrTxnNotVerified).
	VerifyTxn func(pid int64, epoch int16) error
}

// TxnCommit checks a TxnOffsetCommit's sender and writes its offsets in
// the producer's transaction; the call completes once the batch is
// committed in the offsets log. The offsets are pending until the
// transaction's marker (TxnMarker). Unlike OffsetCommit, a group completing
// a rebalance is no reason to refuse; a member's group that does not
// exist is ErrIllegalGeneration. Metadata over offset.metadata.max.bytes
// refuses the whole request (ErrOffsetMetadataTooLarge): the transaction
// commits all of it or nothing.
func (c *Coordinator) TxnCommit(req TxnCommitRequest) *Call[error] {
	call := newCall[error]()
	if err := validGroupID(req.Group); err != nil {
		call.reply(err)
		return call
	}
	if req.ProducerID < 0 || req.ProducerEpoch < 0 {
		call.reply(fmt.Errorf("%w: producer %d epoch %d", ErrInvalidRequest, req.ProducerID, req.ProducerEpoch))
		return call
	}
	for _, o := range req.Offsets {
		if len(o.Metadata) > c.cfg.MaxMetadataBytes {
			call.reply(fmt.Errorf("%w: %d bytes (offset.metadata.max.bytes %d)", ErrOffsetMetadataTooLarge, len(o.Metadata), c.cfg.MaxMetadataBytes))
			return call
		}
		if len(o.Topic) > maxString {
			call.reply(fmt.Errorf("%w: topic name of %d bytes", ErrInvalidRequest, len(o.Topic)))
			return call
		}
	}
	c.txnCommitOn(req, call)
	return call
}

func (c *Coordinator) txnCommitOn(req TxnCommitRequest, call *Call[error]) {
	anonymous := req.Generation < 0 && req.MemberID == "" && req.InstanceID == ""
	err := c.dispatch(req.Group, anonymous, func(g *group) {
		if g.state == Dead {
			c.txnCommitOn(req, call)
			return
		}
		g.txnCommit(req, anonymous, call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(ErrIllegalGeneration)
	case err != nil:
		call.reply(err)
	}
}

func (g *group) txnCommit(req TxnCommitRequest, anonymous bool, call *Call[error]) {
	if !anonymous {
		if err := g.validateTxnCommit(req); err != nil {
			call.reply(err)
			g.maybeCloseMailbox()
			return
		}
	}
	if len(req.Offsets) == 0 {
		call.reply(nil)
		g.maybeDieEmpty()
		return
	}
	now := g.c.clock.Now().UnixMilli()
	recs := make([]kv, len(req.Offsets))
	vals := make(map[TopicPartition]committed, len(req.Offsets))
	for i, o := range req.Offsets {
		v := committed{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: now, ExpireTime: -1}
		recs[i] = kv{key: offsetKey(g.id, o.Topic, o.Partition), value: encodeOffset(v)}
		vals[TopicPartition{o.Topic, o.Partition}] = v
	}
	own := batchOwner{pid: req.ProducerID, epoch: req.ProducerEpoch, verify: req.VerifyTxn}
	// Pending from the append on: the marker comes after the batch in the
	// log, so it finds them here even if it is handed over before this
	// batch's commit wait returns.
	g.persistAs(recs, own, func(at int64) {
		for tp, v := range vals {
			v.logOffset = at
			g.addPending(req.ProducerID, tp, v)
		}
		g.c.notePendingTxn(req.ProducerID, g)
	}, func(err error) {
		call.reply(err)
		if err != nil {
			g.maybeDieEmpty()
		}
	})
}

func (g *group) validateTxnCommit(req TxnCommitRequest) error {
	if g.state == Dead {
		return ErrCoordinatorNotAvailable
	}
	if g.cg != nil {
		return g.validateConsumerCommit(CommitRequest{Group: req.Group, MemberID: req.MemberID, InstanceID: req.InstanceID, Generation: req.Generation})
	}
	if _, err := g.validateMember(req.MemberID, req.InstanceID); err != nil {
		return err
	}
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	return nil
}

// addPending records v as producer pid's pending offset of tp.
func (g *group) addPending(pid int64, tp TopicPartition, v committed) {
	if g.pendingTxn == nil {
		g.pendingTxn = map[int64]map[TopicPartition]committed{}
	}
	m := g.pendingTxn[pid]
	if m == nil {
		m = map[TopicPartition]committed{}
		g.pendingTxn[pid] = m
	}
	m[tp] = v
}

// dropPendingOf drops every transaction's pending offsets of tps, whose
// tombstones are durable: loading the log does the same at a tombstone.
func (g *group) dropPendingOf(tps []TopicPartition) {
	for pid, m := range g.pendingTxn {
		for _, tp := range tps {
			delete(m, tp)
		}
		if len(m) == 0 {
			delete(g.pendingTxn, pid)
			g.c.dropPendingTxn(pid, g)
		}
	}
}

// txnPending reports whether a transaction holds offsets of tp.
func (g *group) txnPending(tp TopicPartition) bool {
	for _, m := range g.pendingTxn {
		if _, ok := m[tp]; ok {
			return true
		}
	}
	return false
}

// endTxn applies producer pid's marker at offset at: a commit makes its
// pending offsets written before the marker committed ones (unless a
// commit later in the log is there), an abort drops them. Offsets written
// after the marker belong to the producer's next transaction and stay.
func endTxn(pending map[int64]map[TopicPartition]committed, offsets map[TopicPartition]committed, pid int64, commit bool, at int64) {
	m := pending[pid]
	for tp, v := range m {
		if v.logOffset >= at && at > 0 {
			continue
		}
		if commit {
			if cur, ok := offsets[tp]; !ok || cur.logOffset <= v.logOffset {
				offsets[tp] = v
			}
		}
		delete(m, tp)
	}
	if len(m) == 0 {
		delete(pending, pid)
	}
}

// TxnMarker hands the group coordinator a COMMIT (commit) or ABORT marker
// of producer pid committed at offset of the offsets partition (by the
// transaction coordinator in process, or by WriteTxnMarkers): the groups
// holding that producer's pending offsets commit or drop them. Following
// the leader, a marker that lands while the log is being loaded is kept
// and applied once the groups are (the replay may have ended before it);
// one that lands while this broker does not serve the groups is left to
// the next load's replay.
func (c *Coordinator) TxnMarker(pid int64, commit bool, offset int64) {
	c.mu.Lock()
	if c.cfg.FollowLeader && c.loading {
		c.lateMarkers = append(c.lateMarkers, txnMarker{pid, commit, offset})
		c.mu.Unlock()
		return
	}
	if c.closing || c.cfg.FollowLeader && !c.serving {
		c.mu.Unlock()
		return
	}
	groups := c.txnGroupsLocked(pid)
	c.mu.Unlock()
	for _, g := range groups {
		g.mb.post(func() {
			endTxn(g.pendingTxn, g.offsets, pid, commit, offset)
			if len(g.pendingTxn[pid]) == 0 {
				c.dropPendingTxn(pid, g)
			}
			if g.state == Dead {
				g.maybeCloseMailbox()
				return
			}
			g.maybeDieEmpty()
		})
	}
}

// txnMarker is a marker handed over while the groups were loading.
type txnMarker struct {
	pid    int64
	commit bool
	offset int64
}

// notePendingTxn indexes group g as holding producer pid's pending
// offsets, for TxnMarker.
func (c *Coordinator) notePendingTxn(pid int64, g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	id := g.id
	if c.groups[id] != g {
		return // dropped meanwhile: a load rebuilds the index
	}
	if c.txnGroups == nil {
		c.txnGroups = map[int64]map[string]bool{}
	}
	if c.txnGroups[pid] == nil {
		c.txnGroups[pid] = map[string]bool{}
	}
	c.txnGroups[pid][id] = true
}

// dropPendingTxn unindexes group g for producer pid: it holds none of
// its offsets any more (called on the group's actor, which also indexes,
// so the two never cross). A group no longer in the map (dropped, or
// replaced by a load) leaves the index alone.
func (c *Coordinator) dropPendingTxn(pid int64, g *group) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.groups[g.id] != g {
		return
	}
	delete(c.txnGroups[pid], g.id)
	if len(c.txnGroups[pid]) == 0 {
		delete(c.txnGroups, pid)
	}
}

// txnGroupsLocked returns the groups indexed for producer pid (those
// still in the map). mu must be held.
func (c *Coordinator) txnGroupsLocked(pid int64) []*group {
	ids := make([]string, 0, len(c.txnGroups[pid]))
	for id := range c.txnGroups[pid] {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make([]*group, 0, len(ids))
	for _, id := range ids {
		if g := c.groups[id]; g != nil {
			out = append(out, g)
		}
	}
	return out
}

// indexPendingLocked rebuilds the producer index from loaded groups (not
// yet shared with their actors). mu must be held.
func (c *Coordinator) indexPendingLocked(groups map[string]*group) {
	c.txnGroups = map[int64]map[string]bool{}
	for id, g := range groups {
		for pid := range g.pendingTxn {
			if c.txnGroups[pid] == nil {
				c.txnGroups[pid] = map[string]bool{}
			}
			c.txnGroups[pid][id] = true
		}
	}
}

// CommitLegacyTxnOffsets applies offsets kept in a transaction's record of
// __transaction_state, as Strom wrote them before the offsets went to the
// offsets log (legacy: the transaction coordinator applies them when a
// restart finds such a transaction committing); the call completes once
// they are durable.
func (c *Coordinator) CommitLegacyTxnOffsets(groupID string, offsets []CommitOffset) *Call[CommitResult] {
	req := CommitRequest{Group: groupID, Generation: -1, Offsets: offsets, txnApply: true}
	for i := range req.Offsets {
		req.Offsets[i].Timestamp = -1
	}
	call := newCall[CommitResult]()
	if err := validGroupID(groupID); err != nil {
		call.reply(CommitResult{Err: err})
		return call
	}
	c.commitOn(req, call)
	return call
}
