package group

import (
	"fmt"
	"sort"
)

// persistOp is one append to the offsets log whose effect waits for
// durability.
type persistOp struct {
	done bool
	err  error
	then func(err error)
}

type fetchWaiter struct {
	seq uint64
	fn  func()
}

// persist appends recs to the offsets log and calls then on the actor once
// they are durable (or failed). Effects apply in the order the appends were
// made, whatever order the fsyncs complete in, and nothing is visible to
// readers before it is durable: an acknowledged commit survives a crash,
// an unacknowledged one is never seen.
func (g *group) persist(recs []kv, then func(err error)) {
	g.persistAs(recs, coordinatorBatch, nil, then)
}

// persistAs is persist for a batch of own's; appended, when not nil, runs
// right after the append (before any effect applies) with the batch's last
// offset (0 without a log).
func (g *group) persistAs(recs []kv, own batchOwner, appended func(offset int64), then func(err error)) {
	op := &persistOp{then: then}
	g.persists = append(g.persists, op)
	g.persistSeq++
	finish := func(err error) {
		op.done, op.err = true, err
		g.drainPersists()
	}
	p, last, epoch, err := g.c.store.append(recs, own)
	if err == nil && appended != nil {
		appended(last)
	}
	if err != nil || p == nil {
		finish(err)
		return
	}
	ctx := g.c.termContext()
	started := g.c.goWorker(func() {
		err := wait(ctx, p, last, epoch)
		g.mb.post(func() { finish(err) })
	})
	if !started {
		finish(ErrNotCoordinator)
	}
}

// drainPersists applies the finished appends at the head of the queue.
func (g *group) drainPersists() {
	for len(g.persists) > 0 && g.persists[0].done {
		op := g.persists[0]
		g.persists[0] = nil
		g.persists = g.persists[1:]
		g.appliedSeq++
		op.then(op.err)
	}
	for len(g.fetchWaiters) > 0 && g.fetchWaiters[0].seq <= g.appliedSeq {
		w := g.fetchWaiters[0]
		g.fetchWaiters = g.fetchWaiters[1:]
		w.fn()
	}
	g.maybeCloseMailbox()
}

// afterPersists runs fn once every append started so far has applied.
func (g *group) afterPersists(fn func()) {
	if g.appliedSeq >= g.persistSeq {
		fn()
		return
	}
	g.fetchWaiters = append(g.fetchWaiters, fetchWaiter{seq: g.persistSeq, fn: fn})
}

// ---- OffsetCommit ----

// validateCommit is Kafka's check of who may commit: anyone while the
// group is empty and the commit comes from outside group management
// (generation < 0); otherwise a member of the current generation.
func (g *group) validateCommit(req CommitRequest) (*member, error) {
	if req.txnApply || req.Generation < 0 && g.state == Empty {
		return nil, nil
	}
	if g.cg != nil {
		return nil, g.validateConsumerCommit(req)
	}
	var m *member
	if req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "" {
		var err error
		if m, err = g.validateMember(req.MemberID, req.InstanceID); err != nil {
			return nil, err
		}
		if req.Generation != g.generation {
			return nil, ErrIllegalGeneration
		}
	} else if g.state != Empty {
		return nil, ErrUnknownMemberID
	}
	if g.state == CompletingRebalance {
		// The member has its new generation but not yet its assignment.
		return nil, ErrRebalanceInProgress
	}
	return m, nil
}

func (g *group) commit(req CommitRequest, call *Call[CommitResult]) {
	m, err := g.validateCommit(req)
	if err != nil {
		call.reply(CommitResult{Err: err})
		return
	}
	if m != nil && m.joinCall == nil && m.syncCall == nil {
		g.startSession(m)
	}
	now := g.c.clock.Now().UnixMilli()
	errs := make([]error, len(req.Offsets))
	var recs []kv
	var vals []committed
	var idx []int
	for i, o := range req.Offsets {
		if len(o.Metadata) > g.c.cfg.MaxMetadataBytes {
			errs[i] = fmt.Errorf("%w: %d bytes (offset.metadata.max.bytes %d)", ErrOffsetMetadataTooLarge, len(o.Metadata), g.c.cfg.MaxMetadataBytes)
			continue
		}
		v := committed{Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTime: now, ExpireTime: -1}
		if o.Timestamp >= 0 {
			v.CommitTime = o.Timestamp
		}
		if req.Retention > 0 {
			v.ExpireTime = now + req.Retention.Milliseconds()
		}
		recs = append(recs, kv{key: offsetKey(g.id, o.Topic, o.Partition), value: encodeOffset(v)})
		vals = append(vals, v)
		idx = append(idx, i)
	}
	if len(recs) == 0 {
		call.reply(CommitResult{Errs: errs})
		g.maybeDieEmpty()
		return
	}
	var at int64
	g.persistAs(recs, coordinatorBatch, func(offset int64) { at = offset }, func(err error) {
		for j, i := range idx {
			if err != nil {
				errs[i] = err
				continue
			}
			o := req.Offsets[i]
			v := vals[j]
			v.logOffset = at
			g.setOffset(TopicPartition{o.Topic, o.Partition}, v)
		}
		call.reply(CommitResult{Errs: errs})
		if err != nil {
			g.maybeDieEmpty()
		}
	})
}

// setOffset makes v tp's committed offset unless the one there is later
// in the offsets log (a transaction's offsets apply at its marker, which
// may come after a plain commit appended later than them).
func (g *group) setOffset(tp TopicPartition, v committed) {
	if cur, ok := g.offsets[tp]; ok && cur.logOffset > v.logOffset {
		return
	}
	g.offsets[tp] = v
}

// maybeDieEmpty removes a group that holds nothing: no members, no
// offsets, no metadata ever written (a commit-only group whose commits all
// failed), no transaction's offsets waiting for their marker.
func (g *group) maybeDieEmpty() {
	if g.state == Empty && g.protocolType == "" && len(g.offsets) == 0 && len(g.persists) == 0 && g.generation == 0 && len(g.pendingTxn) == 0 {
		g.die()
	}
}

// ---- OffsetFetch ----

func (g *group) fetch(partitions []TopicPartition, as *FetchAs, call *Call[FetchResult]) {
	if as != nil {
		if err := g.validateConsumerFetch(as.MemberID, as.MemberEpoch); err != nil {
			call.reply(FetchResult{Err: err})
			return
		}
	}
	// Answer after the commits already acknowledged to anyone (and those
	// in flight from the same connection, which come before this fetch).
	g.afterPersists(func() {
		if partitions == nil {
			out := make([]Offset, 0, len(g.offsets))
			for tp, o := range g.offsets {
				out = append(out, Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, Pending: g.txnPending(tp)})
			}
			sort.Slice(out, func(i, j int) bool {
				if out[i].Topic != out[j].Topic {
					return out[i].Topic < out[j].Topic
				}
				return out[i].Partition < out[j].Partition
			})
			call.reply(FetchResult{Offsets: out})
			return
		}
		out := make([]Offset, 0, len(partitions))
		for _, tp := range partitions {
			o, ok := g.offsets[tp]
			if !ok {
				out = append(out, Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, LeaderEpoch: -1, Pending: g.txnPending(tp)})
				continue
			}
			out = append(out, Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, Pending: g.txnPending(tp)})
		}
		call.reply(FetchResult{Offsets: out})
	})
}

// ---- DeleteGroups, OffsetDelete ----

// delete deletes an Empty group: its committed offsets and, as Kafka's
// group coordinator does (KAFKA-14505), the offsets its open transactions
// hold pending. Each gets a tombstone, so the transaction's COMMIT marker
// later commits nothing, after a restart as live (loading drops a
// partition's pending offsets at its tombstone), and the log's cleaner
// keeps the tombstone over the transactional record instead of letting
// the committed record bring the group back once the group's tombstone is
// cleaned away.
func (g *group) delete(call *Call[error]) {
	if g.state != Empty {
		call.reply(ErrNonEmptyGroup)
		return
	}
	recs := g.tombstones(nil)
	recs = append(recs, kv{key: groupKey(g.id)})
	g.offsets = map[TopicPartition]committed{}
	for pid := range g.pendingTxn {
		g.c.dropPendingTxn(pid, g)
	}
	g.pendingTxn = nil
	g.persist(recs, func(err error) { call.reply(err) })
	g.die()
}

// tombstones returns deletions for the given offsets (nil: every
// committed one and every one a transaction holds pending), sorted.
func (g *group) tombstones(tps []TopicPartition) []kv {
	if tps == nil {
		seen := map[TopicPartition]bool{}
		for tp := range g.offsets {
			seen[tp] = true
		}
		for _, m := range g.pendingTxn {
			for tp := range m {
				seen[tp] = true
			}
		}
		for tp := range seen {
			tps = append(tps, tp)
		}
		sortTPs(tps)
	}
	out := make([]kv, 0, len(tps)+1)
	for _, tp := range tps {
		out = append(out, kv{key: offsetKey(g.id, tp.Topic, tp.Partition)})
	}
	return out
}

func sortTPs(tps []TopicPartition) {
	sort.Slice(tps, func(i, j int) bool {
		if tps[i].Topic != tps[j].Topic {
			return tps[i].Topic < tps[j].Topic
		}
		return tps[i].Partition < tps[j].Partition
	})
}

func (g *group) deleteOffsets(partitions []TopicPartition, call *Call[DeleteOffsetsResult]) {
	errs := make([]error, len(partitions))
	var subscribed map[string]bool
	if g.state != Empty {
		if g.protocolType != "consumer" {
			call.reply(DeleteOffsetsResult{Err: ErrNonEmptyGroup})
			return
		}
		subscribed = g.subscribedTopics()
	}
	var del []TopicPartition
	for i, tp := range partitions {
		if subscribed[tp.Topic] {
			errs[i] = ErrGroupSubscribedToTopic
			continue
		}
		// As Kafka: a partition only a transaction holds pending gets its
		// tombstone too, and loses the pending offset.
		if _, ok := g.offsets[tp]; ok || g.txnPending(tp) {
			del = append(del, tp)
		}
	}
	if len(del) == 0 {
		call.reply(DeleteOffsetsResult{Errs: errs})
		return
	}
	g.persist(g.tombstones(del), func(err error) {
		if err != nil {
			call.reply(DeleteOffsetsResult{Err: err})
			return
		}
		for _, tp := range del {
			delete(g.offsets, tp)
		}
		g.dropPendingOf(del)
		call.reply(DeleteOffsetsResult{Errs: errs})
	})
}

// subscribedTopics returns the topics the members subscribe to, read from
// their consumer-protocol metadata; nil if unknown (a protocol other than
// "consumer", or metadata that does not parse).
func (g *group) subscribedTopics() map[string]bool {
	if g.cg != nil {
		subs, _ := g.resolveSubscriptions()
		out := map[string]bool{}
		for _, m := range g.cg.members {
			for _, t := range subs[m.id] {
				out[t] = true
			}
			for _, t := range m.topics {
				out[t] = true
			}
		}
		return out
	}
	if g.protocolType != "consumer" || len(g.members) == 0 {
		return nil
	}
	out := map[string]bool{}
	for _, m := range g.members {
		topics, ok := subscriptionTopics(m.metadata(g.protocol))
		if !ok {
			return nil
		}
		for _, t := range topics {
			out[t] = true
		}
	}
	return out
}

// subscriptionTopics reads the topics of a consumer protocol subscription
// (ConsumerProtocolSubscription: version int16, then an int32 count of
// int16-length topic names; later fields are not needed).
func subscriptionTopics(b []byte) ([]string, bool) {
	r := reader{b: b}
	if v := r.int16(); v < 0 {
		return nil, false
	}
	n := r.int32()
	if n < 0 || int(n) > len(r.b)/2 {
		return nil, false
	}
	out := make([]string, 0, n)
	for i := int32(0); i < n && !r.bad; i++ {
		out = append(out, r.str())
	}
	return out, !r.bad
}

// ---- expiry ----

// expireOffsets removes offsets past their retention and offsets of
// deleted topics, and deletes the group if that leaves it empty with
// nothing stored (Kafka's offset expiration, KIP-211):
//
//   - an explicit expiry (OffsetCommit v2-v4 retention) wins;
//   - a group with a protocol type that is Empty: all its offsets, once
//     offsets.retention.minutes have passed since it became Empty;
//   - a Stable consumer group: offsets of topics it no longer subscribes
//     to, that long after their commit;
//   - a group without a protocol type (commits only): each offset that long
//     after its commit.
func (g *group) expireOffsets() {
	if g.state == Dead {
		return
	}
	now := g.c.clock.Now()
	retention := g.c.cfg.OffsetsRetention.Milliseconds()
	var subscribed map[string]bool
	if g.state == Stable {
		subscribed = g.subscribedTopics()
	}
	var expired []TopicPartition
	for tp, o := range g.offsets {
		gone := g.c.cfg.TopicExists != nil && !g.c.cfg.TopicExists(tp.Topic)
		var exp bool
		switch {
		case gone:
			exp = true
		case o.ExpireTime >= 0:
			exp = now.UnixMilli() >= o.ExpireTime
		case g.protocolType != "" && g.state == Empty:
			exp = now.Sub(g.since).Milliseconds() >= retention
		case g.protocolType == "consumer" && g.state == Stable && subscribed != nil:
			exp = !subscribed[tp.Topic] && now.UnixMilli()-o.CommitTime >= retention
		case g.protocolType == "":
			exp = now.UnixMilli()-o.CommitTime >= retention
		}
		// Kafka: an offset a transaction is about to replace does not
		// expire (its tombstone would drop the pending one too).
		if exp && !g.txnPending(tp) {
			expired = append(expired, tp)
		}
	}
	if len(expired) == 0 {
		g.maybeDeleteEmpty()
		return
	}
	sortTPs(expired)
	g.c.log.Info("expiring committed offsets", "group", g.id, "partitions", len(expired))
	g.removeOffsets(expired, g.maybeDeleteEmpty)
}

// maybeDeleteEmpty deletes an Empty group that has no offsets left (and no
// append in flight).
func (g *group) maybeDeleteEmpty() {
	if g.state != Empty || len(g.offsets) > 0 || len(g.persists) > 0 || len(g.pendingTxn) > 0 {
		return
	}
	g.c.log.Info("deleting empty group without offsets", "group", g.id)
	g.persist([]kv{{key: groupKey(g.id)}}, func(error) {})
	g.die()
}

// removeOffsets deletes offsets with tombstones; memory follows once they
// are durable (in log order, like commits), then then runs.
func (g *group) removeOffsets(tps []TopicPartition, then func()) {
	g.persist(g.tombstones(tps), func(err error) {
		if err != nil {
			return
		}
		for _, tp := range tps {
			delete(g.offsets, tp)
		}
		g.dropPendingOf(tps)
		if then != nil {
			then()
		}
	})
}

// dropTopic removes every offset of a deleted topic.
func (g *group) dropTopic(topic string) {
	if g.state == Dead {
		return
	}
	seen := map[TopicPartition]bool{}
	for tp := range g.offsets {
		if tp.Topic == topic {
			seen[tp] = true
		}
	}
	for _, m := range g.pendingTxn {
		for tp := range m {
			if tp.Topic == topic {
				seen[tp] = true
			}
		}
	}
	if len(seen) == 0 {
		return
	}
	tps := make([]TopicPartition, 0, len(seen))
	for tp := range seen {
		tps = append(tps, tp)
	}
	sortTPs(tps)
	g.removeOffsets(tps, nil)
}

// validateConsumerCommit checks a commit to a KIP-848 group: from a member,
// with OffsetCommit v9+ (whose generation is the member epoch). The current
// epoch may commit anything; an older one only partitions the member still
// owns (KIP-1251), which lets a member commit what it is about to release.
func (g *group) validateConsumerCommit(req CommitRequest) error {
	m := g.cg.members[req.MemberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	if req.InstanceID != "" && req.InstanceID != m.instanceID {
		return ErrFencedInstanceID
	}
	if req.Version > 0 && req.Version < 9 {
		return fmt.Errorf("%w: members of KIP-848 groups commit with OffsetCommit v9+", ErrUnsupportedVersion)
	}
	switch {
	case req.Generation > m.epoch:
		return fmt.Errorf("%w: epoch %d, the member is at %d", ErrFencedMemberEpoch, req.Generation, m.epoch)
	case req.Generation < m.epoch:
		for _, o := range req.Offsets {
			if !m.owns([]TopicPartition{{o.Topic, o.Partition}}) {
				return fmt.Errorf("%w: epoch %d, the member is at %d", ErrStaleMemberEpoch, req.Generation, m.epoch)
			}
		}
	}
	return nil
}

// validateConsumerFetch checks an OffsetFetch v9+ that names a member of a
// KIP-848 group: it must be in the group at that epoch.
func (g *group) validateConsumerFetch(memberID string, epoch int32) error {
	if g.cg == nil {
		return nil // classic groups do not check (Kafka does not either)
	}
	m := g.cg.members[memberID]
	if m == nil {
		return ErrUnknownMemberID
	}
	if epoch != m.epoch {
		return fmt.Errorf("%w: epoch %d, the member is at %d", ErrStaleMemberEpoch, epoch, m.epoch)
	}
	return nil
}
