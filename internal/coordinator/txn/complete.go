package txn

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// Ending a transaction, as Kafka does: EndTxn is answered once the
// PrepareCommit or PrepareAbort record is durable (the outcome is decided
// then), and the markers and the completion record follow in the
// background. Every marker is written before the answer: appended to this
// broker's partitions (a cheap append to each file) and sent to the other
// brokers' (WriteTxnMarkers, as before), so once the producer hears of the
// end no partition takes a late write at the ended epoch into the ended
// transaction (KIP-890 part 2 holds at the answer, in a cluster too). The
// fsyncs of the local markers and the Complete* record are left to a
// completer goroutine the Coordinator owns (t.completing); so are the
// other brokers' markers when sending them failed (retried there), and
// local markers whose append failed (a full disk): the decision is durable,
// so the end is still answered as done, and until the completion's retry
// writes that marker its partition keeps the transaction open, as every
// partition of a Kafka transaction does until its marker arrives
// (TestDiskFullDuringTransactions in internal/broker).
//
// Until the completion record is in the log the transactional id stays
// Prepare*: a new transaction of the id (AddPartitionsToTxn, an implicit
// add of Produce v12+, AddOffsetsToTxn) or an InitProducerId waits for the
// completer, up to Config.CompletionWait, and is answered
// ErrConcurrentTransactions if it is still running then (the markers of a
// broker that is down): CONCURRENT_TRANSACTIONS, which clients retry
// (franz-go after 20 ms, rising to 1 s the longer it lasts; the Java
// client after 20 ms on AddPartitionsToTxn, KAFKA-5477; librdkafka after
// retry.backoff.ms; KafkaJS fails the send on AddPartitionsToTxn,
// kafkajs#1315), and for a produce's implicit add NOT_ENOUGH_REPLICAS
// (retried with the producer's backoff). Waiting here first, as Kafka 4.0 retries a
// produce's add on the broker (KAFKA-18654), spares the client a backoff
// per transaction: the markers usually take one fsync, far less than any
// client's backoff.
//
// Crash safety is the one of the synchronous end: the Prepare* record is
// durable before the answer, so a coordinator that restarts (or a new
// leader of the transaction log) finds it and writes the markers again.

// Overlapping the next transaction with this completion (a single node,
// an end that bumped the epoch: transactions v2, and every marker
// appended to a partition of this broker that is not replicated): the id's
// next transaction begins at once, without waiting for the markers'
// fsyncs, and its records carry the ended transaction's markers (record.Prev)
// until they are known durable. So the markers need no fsync of their
// own: the partitions' next fsyncs, which the next transaction's acks=all
// writes ask for anyway, take them along (the completer waits
// Config.MarkerSyncDelay before it forces them, or less if a request
// waits for it: settle closes t.hurry). This keeps the
// guarantees: on each partition the marker precedes every batch of the
// next transaction (it was appended before EndTxn's answer), a partition's
// log survives a crash as a prefix of what was appended, and a restart
// finding Prev repairs those markers with partition.RepairMarker, which
// writes one only where the producer's open transaction is older than the
// markers' epoch: the ended transaction's batches, whose marker was lost,
// never the next transaction's, whose batches follow a marker that
// survived. (With transactions v1 the next transaction's batches have
// the markers' epoch, so the two cannot be told apart: it waits, as in a
// cluster, where the markers of other brokers' partitions are not in this
// broker's logs.) A record carries the markers of one previous end at
// most: an end whose own record still carries some is not overlapped.

// defaultMarkerSyncDelay is Config.MarkerSyncDelay's default.
const defaultMarkerSyncDelay = 20 * time.Millisecond

// defaultCompletionWait bounds how long a request of a new transaction
// waits for the previous one's completion before it is answered
// ErrConcurrentTransactions.
const defaultCompletionWait = 2 * time.Second

// preparing reports whether t's transaction is decided but not completed;
// t.op held (or c.mu).
func (t *txn) preparing() bool {
	return t.cur.State == PrepareCommit || t.cur.State == PrepareAbort
}

// end prepares t's ongoing transaction, makes the decision durable and
// starts its completion in the background; fence bumps the epoch first (a
// timeout, a new instance, or transactions v2). t.op held. Once the
// prepare record is durable the outcome is decided: end returns nil, and a
// completion that fails is retried by the timeout loop (or the next start,
// or the next request of the id).
func (c *Coordinator) end(ctx context.Context, t *txn, commit, fence bool) error {
	c.dropDurablePrev(t)
	r := t.cur
	if fence {
		var err error
		if r, err = c.bump(r); err != nil {
			return err
		}
	}
	r.State = PrepareAbort
	if commit {
		r.State = PrepareCommit
	}
	if !commit {
		r.Offsets = nil
	}
	if err := c.write(ctx, t, r); err != nil {
		return err
	}
	c.startCompleting(ctx, t, fence)
	return nil
}

// endMarkers are the local markers of an end, for dropDurablePrev.
type endMarkers struct {
	pid   int64
	epoch int16
	local []markerWait
}

// dropDurablePrev forgets the previous end's markers (t.cur.Prev) when
// each is durable already (the next transaction's acks=all writes fsynced
// their partitions), so the record about to be written need not carry
// them. t.op held.
func (c *Coordinator) dropDurablePrev(t *txn) {
	pm, last := t.cur.Prev, t.lastMarkers
	if pm == nil || last == nil || last.pid != pm.ProducerID || last.epoch != pm.Epoch {
		return
	}
	for _, w := range last.local {
		if w.p.DurableOffset() <= w.off {
			return
		}
	}
	c.mu.Lock()
	t.cur.Prev = nil
	c.mu.Unlock()
}

// markersDurable notes that the markers of the end r are durable: a
// record carrying them (Prev) need not any more. t.op held.
func (c *Coordinator) markersDurable(t *txn, r record) {
	pm := t.cur.Prev
	if pm == nil || pm.ProducerID != r.ProducerID || pm.Epoch != r.Epoch || pm.Commit != (r.State == PrepareCommit) {
		return
	}
	c.mu.Lock()
	t.cur.Prev = nil
	c.mu.Unlock()
}

// startCompleting appends t's local markers, sends those of partitions
// other brokers lead (within ctx, the request's), and hands the rest of
// the completion to a goroutine of the Coordinator; t.op held, t preparing
// and no completer of this end running (one of an earlier end may be). A
// failure leaves t preparing with no completer: the timeout loop, or the
// id's next request (settle), completes it. fenced says the end bumped
// the epoch (its markers' epoch is above its batches'): the next
// transaction may then overlap the completion (see above).
func (c *Coordinator) startCompleting(ctx context.Context, t *txn, fenced bool) {
	// An earlier end's completer may still run with overlap set: this
	// end's markers are not in their logs yet, so nothing may overlap
	// until they are (set below, once they are).
	t.overlap = false
	r := t.cur
	mw, err := c.appendMarkers(r)
	if err != nil {
		c.log.Warn("transaction: writing the markers failed; retried later", "transactional_id", t.id, "err", err)
		return
	}
	if len(mw.remote) > 0 {
		if err := c.sendMarkers(ctx, r, mw.remote); err != nil {
			c.log.Warn("transaction: markers to other brokers failed; the completion retries them", "transactional_id", t.id, "err", err)
		} else {
			mw.remote = nil
		}
	}
	overlap := fenced && !c.cfg.FollowLeader && len(mw.remote) == 0 && r.Prev == nil
	for _, w := range mw.local {
		overlap = overlap && !w.p.Replicated()
	}
	// Nothing waits for an overlapped completion but the offsets of a
	// group (MarkerWritten): give the partitions' next fsyncs a moment
	// to take the markers along.
	var delay time.Duration
	if overlap && len(r.Groups) == 0 {
		delay = c.cfg.MarkerSyncDelay
	}
	done, hurry := make(chan struct{}), make(chan struct{})
	c.mu.Lock()
	sctx := c.stateCtx
	c.mu.Unlock()
	started := c.goOwned(func() {
		if delay > 0 {
			tm := time.NewTimer(delay)
			select {
			case <-tm.C:
			case <-hurry: // a request waits for this completion (settle)
			case <-sctx.Done():
			}
			tm.Stop()
		}
		err := c.awaitMarkers(sctx, r, mw)
		t.op.Lock()
		defer t.op.Unlock()
		if err == nil {
			c.markersDurable(t, r)
			err = c.completion(t, r)
		}
		if t.completing == done {
			t.completing, t.overlap = nil, false
		}
		close(done)
		if err != nil && sctx.Err() == nil {
			c.log.Warn("transaction: completion failed; retried later", "transactional_id", t.id, "err", err)
		}
	})
	if started {
		t.completing, t.overlap, t.hurry = done, overlap, hurry
		t.lastMarkers = &endMarkers{pid: r.ProducerID, epoch: r.Epoch, local: mw.local}
	}
}

// goOwned runs f on a goroutine the Coordinator owns (Close waits for it);
// false, and f not run, once the Coordinator is closing.
func (c *Coordinator) goOwned(f func()) bool {
	c.gmu.Lock()
	defer c.gmu.Unlock()
	if c.closed {
		return false
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		f()
	}()
	return true
}

// settle waits until t's previous transaction is completed; t.op held on
// entry and on return, released while waiting, so the caller checks the
// producer's id and epoch again afterwards. A completion running is waited
// for up to Config.CompletionWait (or ctx); a transaction that nothing is
// completing (its completion failed, or a load found it) is completed
// here. ErrConcurrentTransactions when it is still preparing.
func (c *Coordinator) settle(ctx context.Context, t *txn) error {
	var timeout <-chan time.Time
	for t.preparing() {
		done := t.completing
		if done == nil {
			if err := c.complete(ctx, t); err != nil {
				return fmt.Errorf("%w: %v", ErrConcurrentTransactions, err)
			}
			continue
		}
		if timeout == nil {
			tm := time.NewTimer(c.cfg.CompletionWait)
			defer tm.Stop()
			timeout = tm.C
		}
		if t.hurry != nil {
			// Someone waits: the markers' fsyncs are not left to the
			// next transaction's writes any longer (MarkerSyncDelay).
			close(t.hurry)
			t.hurry = nil
		}
		t.op.Unlock()
		var err error
		select {
		case <-done:
		case <-timeout:
			err = fmt.Errorf("%w: the markers of the previous transaction are still being written", ErrConcurrentTransactions)
		case <-ctx.Done():
			err = fmt.Errorf("%w: %v", ErrConcurrentTransactions, ctx.Err())
		}
		t.op.Lock()
		if err != nil {
			return err
		}
	}
	return nil
}

// complete writes t's markers (and a legacy commit's offsets) and waits
// for them, then the completion record: the synchronous form, for a load
// and for retries. t.op held; t preparing, no completer running. Every
// step may be repeated: a marker written twice ends nothing more, and
// offsets are committed again with the same values.
func (c *Coordinator) complete(ctx context.Context, t *txn) error {
	r := t.cur
	mw, err := c.appendMarkers(r)
	if err != nil {
		return err
	}
	if err := c.awaitMarkers(ctx, r, mw); err != nil {
		return err
	}
	return c.completion(t, r)
}

// markerWait is a marker appended to a local partition, to be waited for.
type markerWait struct {
	p     *partition.Partition
	tp    TopicPartition
	off   int64
	epoch int32
}

// markerWrites are the markers of one end: the local ones appended, the
// partitions other brokers lead still to be sent.
type markerWrites struct {
	local  []markerWait
	remote []TopicPartition
}

// appendMarkers appends the COMMIT or ABORT marker of r (a Prepare*
// state) to every partition of the transaction this broker leads, without
// waiting for them, and lists the partitions other brokers lead.
func (c *Coordinator) appendMarkers(r record) (markerWrites, error) {
	commit := r.State == PrepareCommit
	var mw markerWrites
	for _, tp := range r.Partitions {
		p, ok := c.cfg.Partition(tp.Topic, tp.Partition)
		if !ok {
			if c.cfg.Exists(tp.Topic, tp.Partition) {
				mw.remote = append(mw.remote, tp) // led by another broker
			}
			continue // or deleted since: nothing left to mark
		}
		res, err := p.AppendMarker(r.ProducerID, r.Epoch, commit, coordinatorEpoch)
		if err != nil {
			return mw, fmt.Errorf("marker to %s-%d: %w", tp.Topic, tp.Partition, err)
		}
		mw.local = append(mw.local, markerWait{p, tp, res.Offset, res.LeaderEpoch})
	}
	return mw, nil
}

// sendMarkers writes r's markers to parts, partitions other brokers lead,
// through the MarkerSender; nil once every one is acknowledged durable.
func (c *Coordinator) sendMarkers(ctx context.Context, r record, parts []TopicPartition) error {
	if c.cfg.Markers == nil {
		return fmt.Errorf("markers to %d partitions led by other brokers: no marker sender", len(parts))
	}
	return c.cfg.Markers.WriteMarkers(ctx, r.ProducerID, r.Epoch, r.State == PrepareCommit, coordinatorEpoch, parts)
}

// awaitMarkers waits until every marker of mw is durable (the local
// partitions fsync their files in parallel while the other brokers write
// theirs), tells MarkerWritten of the local ones, and applies a legacy
// commit's offsets.
func (c *Coordinator) awaitMarkers(ctx context.Context, r record, mw markerWrites) error {
	commit := r.State == PrepareCommit
	errs := make(chan error, len(mw.local)+1)
	for _, w := range mw.local {
		go func() {
			if err := w.p.WaitCommitted(ctx, w.off, w.epoch); err != nil {
				errs <- fmt.Errorf("marker to %s-%d: %w", w.tp.Topic, w.tp.Partition, err)
				return
			}
			if c.cfg.MarkerWritten != nil {
				c.cfg.MarkerWritten(w.tp, r.ProducerID, commit, w.off)
			}
			errs <- nil
		}()
	}
	n := len(mw.local)
	if len(mw.remote) > 0 {
		n++
		go func() { errs <- c.sendMarkers(ctx, r, mw.remote) }()
	}
	var werr error
	for range n {
		if err := <-errs; err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return werr
	}
	if commit && len(r.Offsets) > 0 {
		// Legacy: a record written before the offsets went to the
		// offsets log (AddOffsets) holds them itself; applied through
		// the group coordinator in process, as then.
		if c.cfg.CommitOffsets == nil {
			return errors.New("no group coordinator for the transaction's offsets")
		}
		for i := 0; i < len(r.Offsets); {
			j := i
			for j < len(r.Offsets) && r.Offsets[j].Group == r.Offsets[i].Group {
				j++
			}
			if err := c.cfg.CommitOffsets(ctx, r.Offsets[i].Group, r.Offsets[i:j]); err != nil {
				return fmt.Errorf("offsets of group %q: %w", r.Offsets[i].Group, err)
			}
			i = j
		}
	}
	return nil
}

// completion appends the Complete* record of r, whose markers are all
// durable, unless t moved on meanwhile or is no longer the id's state
// (only a completer that lost a race finds that). t.op held. Not waited for: until it is durable a restart
// finds Prepare* and completes again (nothing changes), and every later
// record of this id, waited for, is behind it in the log.
func (c *Coordinator) completion(t *txn, r record) error {
	cur := t.cur
	if cur.ProducerID != r.ProducerID || cur.Epoch != r.Epoch || cur.State != r.State {
		return nil
	}
	c.mu.Lock()
	current := c.txns[t.id] == t
	c.mu.Unlock()
	if !current {
		// The state was dropped or reloaded (the log's leadership
		// moved): the loader completes the transaction it found.
		return nil
	}
	if r.State == PrepareCommit {
		r.State = CompleteCommit
	} else {
		r.State = CompleteAbort
	}
	r.StartMs = -1
	r.Partitions, r.Groups, r.Offsets = nil, nil, nil
	r.Prev = cur.Prev // an earlier end's markers, if still not known durable
	return c.writeNoWait(t, r)
}
