package txn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/partition"
	rec "github.com/stromhq/strom/internal/record"
)

// State is a transaction's state, named as Kafka names it in
// DescribeTransactions and ListTransactions.
type State int8

// The states of a transaction (see doc.go for the transitions).
const (
	Empty State = iota
	Ongoing
	PrepareCommit
	PrepareAbort
	CompleteCommit
	CompleteAbort
)

var stateNames = [...]string{"Empty", "Ongoing", "PrepareCommit", "PrepareAbort", "CompleteCommit", "CompleteAbort"}

func (s State) String() string {
	if s.valid() {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

func (s State) valid() bool { return s >= Empty && s <= CompleteAbort }

// ParseState is the inverse of String.
func ParseState(s string) (State, bool) {
	for i, n := range stateNames {
		if n == s {
			return State(i), true
		}
	}
	return 0, false
}

// Config is what the coordinator needs of the broker.
type Config struct {
	// Log returns the transaction log's partition (partition 0 of
	// __transaction_state), creating the topic when create is set; (nil,
	// nil) when it does not exist. Nil: nothing is persisted (tests).
	Log func(create bool) (*partition.Partition, error)
	// Partition returns a data partition this broker leads; false when it
	// does not exist or another broker leads it.
	Partition func(topic string, index int32) (*partition.Partition, bool)
	// Exists reports whether a partition exists anywhere in the cluster
	// (nil: where Partition finds it). A partition that exists but that
	// Partition does not return gets its markers through Markers.
	Exists func(topic string, index int32) bool
	// Markers writes the markers of partitions led by other brokers; nil
	// on a single node (a transaction with such a partition then cannot
	// complete, and is retried).
	Markers MarkerSender
	// Coordinates returns nil when this broker is the transaction
	// coordinator (it leads the transaction log), else why not: wrapping
	// ErrNotCoordinator (another broker is) or ErrCoordinatorNotAvailable.
	// Nil: always this broker.
	Coordinates func() error
	// AllocateProducerID hands out a producer id never used before.
	AllocateProducerID func() (int64, error)
	// CommitOffsets applies a committed transaction's offsets to a group
	// (through the group coordinator) and returns once they are durable.
	// Legacy: only for records of __transaction_state that hold offsets,
	// written before TxnOffsetCommit wrote them to the offsets log.
	CommitOffsets func(ctx context.Context, group string, offsets []PendingOffset) error
	// OffsetsPartition names the partition of the offsets topic that
	// holds a group's offsets (AddOffsets adds it to the transaction).
	// Nil: partition 0 of group.OffsetsTopic.
	OffsetsPartition func(group string) (topic string, index int32)
	// MarkerWritten, when not nil, is told of every marker this
	// coordinator wrote in process, once committed (the group
	// coordinator ends a transaction's offsets at its marker).
	MarkerWritten func(tp TopicPartition, pid int64, commit bool, offset int64)
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes).
	MaxTimeout time.Duration
	// CheckInterval is how often timed-out transactions are aborted and
	// unfinished completions retried (Kafka's
	// transaction.abort.timed.out.transaction.cleanup.interval.ms, 10 s).
	CheckInterval time.Duration
	// CompactBytes is the log size from which the coordinator compacts
	// the log when at most half of it is live (compact.go; default 64
	// MiB, -1: never).
	CompactBytes int64
	// Checkpoint persists log start offsets (after a compaction).
	Checkpoint func() error
	// FollowLeader makes the coordinator serve only while this broker
	// leads the transaction log, loading it each time it takes the lead
	// (a cluster, where the log may be a raft group: follow.go).
	FollowLeader bool
	// LeaderPoll is how often the leadership is checked when following
	// (default 50 ms).
	LeaderPoll time.Duration
	// CompletionWait bounds how long a request that starts the id's next
	// transaction (or an InitProducerId) waits for the previous one's
	// markers before it is answered ErrConcurrentTransactions (default 2
	// s; complete.go).
	CompletionWait time.Duration
	// MarkerSyncDelay is how long the completion of a transaction whose
	// next one need not wait for it (complete.go: a single node,
	// transactions v2) leaves its markers to be made durable by the
	// partitions' next fsyncs before it forces them (default 20 ms); a
	// request that waits for that completion cuts it short.
	MarkerSyncDelay time.Duration
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// MarkerSender writes transaction markers to partitions that other
// brokers lead (the broker's implementation sends WriteTxnMarkers to
// their leaders); the coordinator itself knows no protocol.
type MarkerSender interface {
	// WriteMarkers writes a COMMIT (commit) or ABORT marker of producer
	// pid at epoch to every partition of parts on its leader, retrying
	// what fails until each is acknowledged durable or ctx ends, and
	// returns nil only when every one is. A partition deleted meanwhile
	// counts as written (nothing is left to end). parts is not kept.
	WriteMarkers(ctx context.Context, pid int64, epoch int16, commit bool, coordinatorEpoch int32, parts []TopicPartition) error
}

// Coordinator is the transaction coordinator of this broker.
type Coordinator struct {
	cfg Config
	log *slog.Logger

	mu   sync.Mutex      // guards txns, pids and every txn's cur
	txns map[string]*txn // by transactional id
	pids map[int64]*txn  // by current producer id

	smu       sync.Mutex // serializes appends to the log; guards p, live, liveBytes
	p         *partition.Partition
	live      map[string][]byte // latest value of every key (compact.go)
	liveBytes int64
	compactCh chan struct{} // asks the loop for a compaction
	// loaded is the transaction log's leader epoch the state was loaded
	// in when following (-1: none); guarded by mu (written with smu too).
	loaded int32
	// stateCtx ends when the state loaded is dropped (following: the
	// lead lost) or the Coordinator closes; the completers of that state
	// stop with it (the next leader completes what they leave). mu.
	stateCtx    context.Context
	stateCancel context.CancelFunc
	leadCh      chan struct{} // asks the loop to check the leadership now

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the timeout loop and the completers (complete.go)
	gmu    sync.Mutex     // guards closed against wg.Add
	closed bool
}

// txn is one transactional id. op serializes the operations on it (held
// across the log writes and the markers, so a transaction's steps never
// interleave); cur is its state, written with both op and the
// coordinator's mu held, so the op holder reads it freely and others
// (Verify, Describe) under mu.
type txn struct {
	id  string
	op  sync.Mutex
	cur record
	// prevEpoch is the epoch a timeout abort bumped away from (-1: none):
	// a request still at it is INVALID_PRODUCER_EPOCH, not fenced.
	prevEpoch int16
	// ended is the last end of a transactions-v2 EndTxn (tv2.go); t.op.
	ended *endedTxn
	// completing is closed when the completer of the id's last end is
	// done (complete.go); nil when none runs. The id's next transaction
	// may begin before (then the state is no longer Prepare*). t.op.
	completing chan struct{}
	// overlap is set while the last end's completer runs and the next
	// transaction may begin without waiting for it: every marker is in
	// its log, on a partition of this broker that is not replicated, at
	// an epoch above the transaction's batches (complete.go). t.op.
	overlap bool
	// lastMarkers are the local markers of the last end whose completer
	// started (dropDurablePrev). t.op.
	lastMarkers *endMarkers
	// hurry, closed by a request that waits for the last end's completer
	// (settle), cuts its MarkerSyncDelay short; nil once closed. t.op.
	hurry chan struct{}
}

// Open replays the transaction log (if it exists), finishes every
// transaction that was preparing its commit or abort, and starts the
// timeout checks.
func Open(cfg Config) (*Coordinator, error) {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 10 * time.Second
	}
	if cfg.OffsetsPartition == nil {
		cfg.OffsetsPartition = group.GroupPartition
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.CompactBytes == 0 {
		cfg.CompactBytes = 64 << 20
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Log == nil {
		cfg.Log = func(bool) (*partition.Partition, error) { return nil, nil }
	}
	if cfg.Exists == nil {
		part := cfg.Partition
		cfg.Exists = func(topic string, index int32) bool { _, ok := part(topic, index); return ok }
	}
	if cfg.Coordinates == nil {
		cfg.Coordinates = func() error { return nil }
	}
	if cfg.LeaderPoll <= 0 {
		cfg.LeaderPoll = 50 * time.Millisecond
	}
	if cfg.CompletionWait <= 0 {
		cfg.CompletionWait = defaultCompletionWait
	}
	if cfg.MarkerSyncDelay <= 0 {
		cfg.MarkerSyncDelay = defaultMarkerSyncDelay
	}
	c := &Coordinator{cfg: cfg, log: cfg.Logger, txns: map[string]*txn{}, pids: map[int64]*txn{},
		live: map[string][]byte{}, compactCh: make(chan struct{}, 1), loaded: -1, leadCh: make(chan struct{}, 1)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.stateCtx, c.stateCancel = c.ctx, func() {}
	if cfg.FollowLeader {
		// The loop loads the log when this broker leads it (follow.go).
		c.wg.Add(1)
		go c.loop()
		return c, nil
	}
	if err := c.load(); err != nil {
		c.cancel()
		return nil, err
	}
	c.completePreparing("a restart")
	c.wg.Add(1)
	go c.loop()
	return c, nil
}

// Close stops the timeout checks and the completions running and waits
// for them; operations in flight give up their waits with
// ErrNotCoordinator. A completion cut short is done again at the next
// start (its Prepare* record is durable).
func (c *Coordinator) Close() error {
	c.gmu.Lock()
	c.closed = true
	c.gmu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

func (c *Coordinator) loop() {
	defer c.wg.Done()
	tick := time.NewTicker(c.cfg.CheckInterval)
	defer tick.Stop()
	var lead <-chan time.Time // nil unless following
	if c.cfg.FollowLeader {
		t := time.NewTicker(c.cfg.LeaderPoll)
		defer t.Stop()
		lead = t.C
		c.checkLeadership()
	}
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-lead:
			c.checkLeadership()
		case <-c.leadCh:
			c.checkLeadership()
		case <-tick.C:
			c.CheckTimeouts()
		case <-c.compactCh:
			if err := c.compact(c.ctx); err != nil {
				c.log.Warn("transaction log: compaction failed", "err", err)
			}
		}
	}
}

// snapshot lists the transactional ids.
func (c *Coordinator) snapshot() []*txn {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]*txn, 0, len(c.txns))
	for _, t := range c.txns {
		out = append(out, t)
	}
	return out
}

// load rebuilds the state from the log: the latest record of every id.
func (c *Coordinator) load() error {
	p, err := c.cfg.Log(false)
	if err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	if p == nil {
		return nil
	}
	c.p = p
	start := time.Now()
	n := 0
	err = p.Replay(64<<20, func(offset int64, err error) {
		c.log.Warn("transaction log: skipping undecodable batch", "offset", offset, "err", err)
	}, func(key, value []byte) {
		n++
		c.apply(key, value)
	})
	if err != nil {
		return fmt.Errorf("transaction log: %w", err)
	}
	c.log.Info("loaded transactions", "transactional_ids", len(c.txns), "records", n, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (c *Coordinator) apply(key, value []byte) {
	c.noteLiveLocked(key, value)
	id, err := decodeKey(key)
	if err != nil {
		c.log.Warn("transaction log: skipping record", "err", err)
		return
	}
	if value == nil {
		if t := c.txns[id]; t != nil {
			delete(c.pids, t.cur.ProducerID)
			delete(c.txns, id)
		}
		return
	}
	r, err := decodeRecord(value)
	if err != nil {
		c.log.Warn("transaction log: skipping record", "transactional_id", id, "err", err)
		return
	}
	t := c.txns[id]
	if t == nil {
		t = &txn{id: id, prevEpoch: -1, cur: record{ProducerID: -1}}
		c.txns[id] = t
	}
	c.setLocked(t, r)
}

// setLocked installs t's new state; c.mu held (or c not yet shared).
func (c *Coordinator) setLocked(t *txn, r record) {
	if old := t.cur.ProducerID; old != r.ProducerID && old >= 0 && c.pids[old] == t {
		delete(c.pids, old)
	}
	t.cur = r
	c.pids[r.ProducerID] = t
}

// write makes r t's state: appended to the log as one batch, durable,
// then installed. t.op held.
func (c *Coordinator) write(ctx context.Context, t *txn, r record) error {
	r.UpdateMs = c.cfg.Now().UnixMilli()
	if err := c.persist(ctx, txnKey(t.id), encodeRecord(r)); err != nil {
		return err
	}
	c.mu.Lock()
	c.setLocked(t, r)
	c.mu.Unlock()
	return nil
}

// writeNoWait is write without waiting for the fsync: for records whose
// loss a restart repairs (a completion: the restart completes again).
func (c *Coordinator) writeNoWait(t *txn, r record) error {
	r.UpdateMs = c.cfg.Now().UnixMilli()
	if _, _, _, err := c.appendRecord(txnKey(t.id), encodeRecord(r)); err != nil {
		return err
	}
	c.mu.Lock()
	c.setLocked(t, r)
	c.mu.Unlock()
	return nil
}

// persist appends one record and waits until it is durable (on a
// replicated log: committed).
func (c *Coordinator) persist(ctx context.Context, key, value []byte) error {
	p, last, epoch, err := c.appendRecord(key, value)
	if err != nil || p == nil {
		return err
	}
	if err := p.WaitCommitted(ctx, last, epoch); err != nil {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("%w: %v", ErrNotCoordinator, err)
		}
		return fmt.Errorf("%w: transaction log: %v", ErrCoordinatorNotAvailable, err)
	}
	return nil
}

// appendRecord appends one record (creating the log if needed) and
// returns the log, the record's offset and the leader epoch it was
// appended in; a nil log means nothing is persisted (no log configured).
// When following, the log is the one loaded, and a record that lands in
// another leader epoch is ErrNotCoordinator.
func (c *Coordinator) appendRecord(key, value []byte) (*partition.Partition, int64, int32, error) {
	c.smu.Lock()
	defer c.smu.Unlock()
	if c.p == nil {
		if c.cfg.FollowLeader {
			return nil, 0, 0, fmt.Errorf("%w: the transaction log is not loaded", ErrCoordinatorLoading)
		}
		p, err := c.cfg.Log(true)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("%w: create the transaction log: %v", ErrCoordinatorNotAvailable, err)
		}
		if p == nil {
			return nil, 0, 0, nil // in memory only
		}
		c.p = p
	}
	last, epoch, err := c.appendLocked(key, value)
	if err != nil {
		return nil, 0, 0, err
	}
	if c.cfg.FollowLeader {
		c.mu.Lock()
		loaded := c.loaded
		c.mu.Unlock()
		if c.p.Replicated() && epoch != loaded {
			c.wakeLeadership()
			return nil, 0, 0, fmt.Errorf("%w: the transaction log moved to leader epoch %d (loaded in %d)", ErrNotCoordinator, epoch, loaded)
		}
	}
	c.noteLiveLocked(key, value)
	c.maybeCompactLocked()
	return c.p, last, epoch, nil
}

// appendLocked appends one record as one batch and returns its offset and
// leader epoch; smu held, c.p set.
func (c *Coordinator) appendLocked(key, value []byte) (int64, int32, error) {
	batch, err := rec.AppendBatch(nil, rec.BatchSpec{
		PartitionLeaderEpoch: -1, BaseTimestamp: c.cfg.Now().UnixMilli(),
		ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1,
	}, []rec.Record{{Key: key, Value: value}})
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %v", ErrCoordinatorNotAvailable, err)
	}
	res, err := c.p.Append(batch, partition.AppendRules{})
	switch {
	case errors.Is(err, partition.ErrClosed), errors.Is(err, partition.ErrNotLeader):
		return 0, 0, fmt.Errorf("%w: %v", ErrNotCoordinator, err)
	case err != nil:
		return 0, 0, fmt.Errorf("%w: transaction log: %v", ErrCoordinatorNotAvailable, err)
	}
	return res.LastOffset, res.LeaderEpoch, nil
}

// CheckTimeouts aborts every ongoing transaction older than its timeout
// (bumping the producer's epoch, so the stopped producer is fenced) and
// retries completions that failed. The loop calls it every CheckInterval.
func (c *Coordinator) CheckTimeouts() {
	now := c.cfg.Now().UnixMilli()
	for _, t := range c.snapshot() {
		c.mu.Lock()
		r := t.cur
		c.mu.Unlock()
		switch {
		case r.State == Ongoing && r.StartMs >= 0 && now-r.StartMs > int64(r.TimeoutMs):
			c.abortTimedOut(t, now)
		case r.State == PrepareCommit || r.State == PrepareAbort:
			c.completeIfPreparing(t, "a failed completion")
		}
	}
}

// completePreparing completes every transaction found preparing its
// commit or abort, after a restart or on taking the lead of the log,
// after repairing the markers of a previous end its record carries
// (Prev: first, so that a marker of the later end cannot close the
// earlier end's batches).
func (c *Coordinator) completePreparing(after string) {
	for _, t := range c.snapshot() {
		c.mu.Lock()
		s, prev := t.cur.State, t.cur.Prev != nil
		c.mu.Unlock()
		if prev {
			c.repairPrev(t, after)
		}
		if s == PrepareCommit || s == PrepareAbort {
			c.completeIfPreparing(t, after)
		}
	}
}

// repairPrev writes again, where they were lost, the markers of the
// previous end that t's record carries (complete.go), waits for them,
// and records t's state without them.
func (c *Coordinator) repairPrev(t *txn, after string) {
	t.op.Lock()
	defer t.op.Unlock()
	pm := t.cur.Prev
	if pm == nil || t.completing != nil {
		return
	}
	for _, tp := range pm.Partitions {
		p, ok := c.cfg.Partition(tp.Topic, tp.Partition)
		if !ok {
			if c.cfg.Exists(tp.Topic, tp.Partition) {
				c.log.Warn("transaction: the previous markers of a partition led by another broker cannot be repaired here", "transactional_id", t.id, "topic", tp.Topic, "partition", tp.Partition)
				return
			}
			continue // deleted since: nothing left to mark
		}
		res, wrote, err := p.RepairMarker(pm.ProducerID, pm.Epoch, pm.Commit, coordinatorEpoch)
		if err == nil && wrote {
			err = p.WaitCommitted(c.ctx, res.Offset, res.LeaderEpoch)
			if err == nil && c.cfg.MarkerWritten != nil {
				c.cfg.MarkerWritten(tp, pm.ProducerID, pm.Commit, res.Offset)
			}
		}
		if err != nil {
			c.log.Warn("transaction: repairing the previous markers after "+after+" failed; retried at the next start", "transactional_id", t.id, "topic", tp.Topic, "partition", tp.Partition, "err", err)
			return
		}
	}
	r := t.cur
	r.Prev = nil
	if err := c.write(c.ctx, t, r); err != nil {
		c.log.Warn("transaction: recording the repaired markers after "+after+" failed", "transactional_id", t.id, "err", err)
	}
}

// completeIfPreparing completes t if it is still preparing once its op
// lock is held: a request may have completed it since its state was read
// (completing it again would take a commit for an abort). A completer
// running in the background is left to finish.
func (c *Coordinator) completeIfPreparing(t *txn, after string) {
	t.op.Lock()
	defer t.op.Unlock()
	if !t.preparing() || t.completing != nil {
		return
	}
	if err := c.complete(c.ctx, t); err != nil {
		c.log.Warn("transaction: completing after "+after+" failed; retried later", "transactional_id", t.id, "err", err)
	}
}

func (c *Coordinator) abortTimedOut(t *txn, now int64) {
	t.op.Lock()
	defer t.op.Unlock()
	r := t.cur
	if r.State != Ongoing || now-r.StartMs <= int64(r.TimeoutMs) {
		return
	}
	c.log.Info("aborting a timed-out transaction", "transactional_id", t.id, "producer_id", r.ProducerID, "epoch", r.Epoch)
	old := r.Epoch
	if err := c.end(c.ctx, t, false, true); err != nil {
		c.log.Warn("transaction: timeout abort failed; retried later", "transactional_id", t.id, "err", err)
		return
	}
	c.mu.Lock()
	t.prevEpoch = old
	c.mu.Unlock()
}
