package group

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/partition"
)

// MaxGroupIDLen is the longest group id accepted (Kafka stores group ids
// as int16-length strings in its offsets topic, as this package does).
const MaxGroupIDLen = 32767

// maxString bounds the other strings a group stores (member, instance and
// client ids, protocol names): the record layout's uint16 lengths.
const maxString = 65535

// Config configures Open. Zero values take Kafka's defaults.
type Config struct {
	// FollowLeader makes the coordinator serve only while this broker leads
	// the offsets partition (a cluster's): OffsetsLog(false) returns it
	// when this broker leads it, nil otherwise (its LeaderEpoch tells the
	// leadership of a replicated one). On taking the leadership the
	// coordinator replays the log up to the high watermark before
	// answering (ErrCoordinatorLoading meanwhile); on losing it it drops
	// its groups and answers ErrNotCoordinator (follow.go). The topic is
	// never created from here: FindCoordinator creates it.
	FollowLeader bool
	// LeaderPoll is how often the leadership is checked when following
	// (50 ms); a request that finds the epoch moved also triggers a check.
	LeaderPoll time.Duration
	// OffsetsLog returns the partition of the internal offsets topic,
	// creating the topic when create is set; with create unset it returns
	// (nil, nil) if the topic does not exist yet. It is called at Open and
	// again on the first write. Nil keeps everything in memory (tests).
	OffsetsLog func(create bool) (*partition.Partition, error)
	// TopicExists reports whether a topic exists; the retention check
	// removes the offsets of topics that no longer do. Nil: never.
	TopicExists func(topic string) bool
	// HighWatermark returns a partition's high watermark, for Lag.
	HighWatermark func(topic string, partition int32) (int64, bool)

	Clock  Clock
	Logger *slog.Logger

	// InitialRebalanceDelay is group.initial.rebalance.delay.ms (Kafka's
	// default is 3 s; zero here means none): how long the first rebalance
	// of an empty group waits for more members.
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout and MaxSessionTimeout are
	// group.min.session.timeout.ms (6 s) and group.max.session.timeout.ms
	// (30 min).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention is offsets.retention.minutes (7 days).
	OffsetsRetention time.Duration
	// RetentionCheckInterval is offsets.retention.check.interval.ms
	// (10 min).
	RetentionCheckInterval time.Duration
	// MaxMetadataBytes is offset.metadata.max.bytes (4096).
	MaxMetadataBytes int
	// NewMemberID makes a member id from a client id (or an instance id
	// for static members); Kafka's "<client id>-<UUID>" by default.
	NewMemberID func(prefix string) string

	// Topics returns the topics KIP-848 members may subscribe to, with
	// their partition counts (internal topics included, as Kafka's regex
	// resolution does). Nil: none.
	Topics func() map[string]int32
	// ConsumerSessionTimeout and ConsumerHeartbeatInterval are Kafka's
	// group.consumer.session.timeout.ms (45 s) and
	// group.consumer.heartbeat.interval.ms (5 s), for KIP-848 groups.
	ConsumerSessionTimeout    time.Duration
	ConsumerHeartbeatInterval time.Duration
}

func (cfg *Config) defaults() {
	if cfg.Clock == nil {
		cfg.Clock = SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.InitialRebalanceDelay < 0 {
		cfg.InitialRebalanceDelay = 0
	}
	if cfg.MinSessionTimeout <= 0 {
		cfg.MinSessionTimeout = 6 * time.Second
	}
	if cfg.MaxSessionTimeout <= 0 {
		cfg.MaxSessionTimeout = 30 * time.Minute
	}
	if cfg.OffsetsRetention <= 0 {
		cfg.OffsetsRetention = 7 * 24 * time.Hour
	}
	if cfg.RetentionCheckInterval <= 0 {
		cfg.RetentionCheckInterval = 10 * time.Minute
	}
	if cfg.LeaderPoll <= 0 {
		cfg.LeaderPoll = 50 * time.Millisecond
	}
	if cfg.MaxMetadataBytes <= 0 {
		cfg.MaxMetadataBytes = 4096
	}
	if cfg.ConsumerSessionTimeout <= 0 {
		cfg.ConsumerSessionTimeout = 45 * time.Second
	}
	if cfg.ConsumerHeartbeatInterval <= 0 {
		cfg.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = func(prefix string) string {
			var u [16]byte
			rand.Read(u[:])
			u[6] = u[6]&0x0f | 0x40
			u[8] = u[8]&0x3f | 0x80
			h := hex.EncodeToString(u[:])
			return prefix + "-" + h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
		}
	}
}

// Coordinator owns every consumer group of the broker. Each group is an
// actor: its state is touched only by closures run one at a time by its
// mailbox. The coordinator's own lock guards only the map of groups.
//
// Every request method returns at once with a Call; the work happens on the
// group's actor, and the Call completes when the answer is known (for
// JoinGroup and SyncGroup, when the rebalance reaches that point; for
// commits, once the offsets are durable in the offsets log).
type Coordinator struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	store *store

	mu       sync.Mutex
	groups   map[string]*group
	closing  bool
	stopping bool // StopWaiting was called: joins and syncs answer at once

	// Following the leader (follow.go): guarded by mu.
	serving      bool                 // groups are loaded for the leadership below
	loading      bool                 // a leadership is being loaded
	servingP     *partition.Partition // the offsets partition served
	servingEpoch int32                // its leader epoch at load
	term         context.Context      // of the leadership served (c.ctx when not following)
	endTerm      context.CancelFunc
	lateMarkers  []txnMarker // handed to TxnMarker while loading (txn.go)

	// txnGroups indexes the groups holding a producer's pending
	// transactional offsets (txn.go); guarded by mu.
	txnGroups map[int64]map[string]bool

	ctx     context.Context // cancelled by Close: fsync waits give up
	cancel  context.CancelFunc
	actors  sync.WaitGroup // mailbox runners
	workers sync.WaitGroup // fsync waiters
	watcher sync.WaitGroup // the leadership watcher (follow.go)
	wake    chan struct{}  // asks the watcher to check now
	ticker  Timer
}

// Open replays the offsets log (if it exists) into groups and starts the
// retention checks.
func Open(cfg Config) (*Coordinator, error) {
	cfg.defaults()
	c := &Coordinator{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, groups: map[string]*group{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	open := cfg.OffsetsLog
	if open == nil {
		open = memoryLog()
	}
	c.term, c.endTerm = c.ctx, func() {}
	c.store = &store{
		open: open, follow: cfg.FollowLeader, maxDecomp: 64 << 20, log: cfg.Logger,
		now: func() int64 { return c.clock.Now().UnixMilli() },
	}
	if cfg.FollowLeader {
		if cfg.OffsetsLog == nil {
			c.cancel()
			return nil, errors.New("group coordinator: FollowLeader needs OffsetsLog")
		}
		c.startWatcher()
	} else if err := c.load(); err != nil {
		c.cancel()
		return nil, err
	}
	c.scheduleRetention()
	return c, nil
}

// load rebuilds the groups from the offsets log (not following: at Open).
func (c *Coordinator) load() error {
	groups, err := c.rebuild(c.store.load)
	if errors.Is(err, errNoLog) {
		return nil
	}
	if err != nil {
		return err
	}
	c.groups = groups
	c.indexPendingLocked(groups)
	return nil
}

// replayFunc replays an offsets log: apply for every record, marker for
// every transaction marker, in log order.
type replayFunc func(apply func(b partition.ReplayedBatch, key, value []byte), marker func(b partition.ReplayedBatch, commit bool)) error

// rebuild makes the groups that replaying a log gives. A transaction's
// offsets (records of a transactional batch) are pending for their
// producer until its marker: a COMMIT makes them committed (unless a
// commit later in the log is there already), an ABORT drops them; those
// with no marker yet stay pending, for the marker the transaction
// coordinator has still to write.
func (c *Coordinator) rebuild(replay replayFunc) (map[string]*group, error) {
	type loading struct {
		meta     *groupRecord    // a classic group's metadata
		consumer *consumerRecord // or a KIP-848 group's
		offsets  map[TopicPartition]committed
		pending  map[int64]map[TopicPartition]committed
	}
	state := map[string]*loading{}
	get := func(id string) *loading {
		l := state[id]
		if l == nil {
			l = &loading{offsets: map[TopicPartition]committed{}, pending: map[int64]map[TopicPartition]committed{}}
			state[id] = l
		}
		return l
	}
	byPID := map[int64]map[string]bool{} // groups with a producer's pending offsets
	start := time.Now()
	n := 0
	marker := func(b partition.ReplayedBatch, commit bool) {
		for id := range byPID[b.ProducerID] {
			if l := state[id]; l != nil {
				endTxn(l.pending, l.offsets, b.ProducerID, commit, b.BaseOffset)
			}
		}
		delete(byPID, b.ProducerID)
	}
	err := replay(func(b partition.ReplayedBatch, key, value []byte) {
		n++
		k, err := decodeKey(key)
		if err != nil {
			c.log.Warn("offsets log: skipping record", "err", err)
			return
		}
		switch k.kind {
		case keyOffset:
			tp := TopicPartition{k.topic, k.partition}
			if value == nil {
				// As Kafka's replay: a tombstone also drops what open
				// transactions hold pending for the partition (a group
				// deleted, OffsetDelete), so their markers commit nothing.
				if l := state[k.group]; l != nil {
					delete(l.offsets, tp)
					for pid, m := range l.pending {
						delete(m, tp)
						if len(m) == 0 {
							delete(l.pending, pid)
						}
					}
				}
				return
			}
			o, err := decodeOffset(value)
			if err != nil {
				c.log.Warn("offsets log: skipping record", "group", k.group, "err", err)
				return
			}
			o.logOffset = b.BaseOffset
			l := get(k.group)
			if b.Transactional && b.ProducerID >= 0 {
				if l.pending[b.ProducerID] == nil {
					l.pending[b.ProducerID] = map[TopicPartition]committed{}
				}
				l.pending[b.ProducerID][tp] = o
				if byPID[b.ProducerID] == nil {
					byPID[b.ProducerID] = map[string]bool{}
				}
				byPID[b.ProducerID][k.group] = true
				return
			}
			l.offsets[tp] = o
		case keyGroup:
			if value == nil {
				// A deleted group: its offsets were tombstoned before it.
				delete(state, k.group)
				return
			}
			l := get(k.group)
			if groupValueVersion(value) == valueConsumerGroup {
				cr, err := decodeConsumerGroup(value)
				if err != nil {
					c.log.Warn("offsets log: skipping record", "group", k.group, "err", err)
					return
				}
				l.meta, l.consumer = nil, &cr
				return
			}
			g, err := decodeGroup(value)
			if err != nil {
				c.log.Warn("offsets log: skipping record", "group", k.group, "err", err)
				return
			}
			l.meta, l.consumer = &g, nil
		}
	}, marker)
	if err != nil {
		return nil, err
	}
	groups := map[string]*group{}
	for id, l := range state {
		if l.meta == nil && l.consumer == nil && len(l.offsets) == 0 && len(l.pending) == 0 {
			continue
		}
		g := c.newGroup(id)
		g.restore(l.meta, l.offsets)
		if len(l.pending) > 0 {
			g.pendingTxn = l.pending
		}
		if l.consumer != nil {
			g.restoreConsumer(l.consumer)
		}
		groups[id] = g
	}
	c.log.Info("loaded consumer groups", "groups", len(groups), "records", n, "took", time.Since(start).Round(time.Millisecond))
	return groups, nil
}

// memoryLog is the OffsetsLog of a coordinator without one: nothing is
// persisted (a nil partition makes persist complete at once).
func memoryLog() func(bool) (*partition.Partition, error) {
	return func(bool) (*partition.Partition, error) { return nil, nil }
}

func (c *Coordinator) newGroup(id string) *group {
	g := &group{
		id: id, c: c,
		mb: mailbox{wg: &c.actors},
		classicGroup: classicGroup{
			members:   map[string]*member{},
			pending:   map[string]*gtimer{},
			instances: map[string]string{},
		},
		offsets: map[TopicPartition]committed{},
		since:   c.clock.Now(),
	}
	g.publish()
	return g
}

// Close stops the coordinator: pending joins and syncs are answered with
// ErrNotCoordinator, in-flight commits finish, and every group goroutine
// exits. Call it after the Kafka listener has stopped.
func (c *Coordinator) Close() error {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return nil
	}
	c.closing = true
	c.stopping = true
	groups := c.sortedGroupsLocked()
	if c.ticker != nil {
		c.ticker.Stop()
	}
	c.mu.Unlock()
	c.stopWatcher()
	// Let fsync waits finish (their closures still run on the groups).
	c.workers.Wait()
	for _, g := range groups {
		g.mb.post(g.shutdown)
		g.mb.close()
	}
	c.actors.Wait()
	c.cancel()
	return nil
}

// StopWaiting makes every pending JoinGroup and SyncGroup answer now
// (NOT_COORDINATOR) and later ones answer at once, so that a graceful
// shutdown need not wait out rebalance timeouts. Commits and fetches keep
// working until Close.
func (c *Coordinator) StopWaiting() {
	c.mu.Lock()
	c.stopping = true
	groups := c.sortedGroupsLocked()
	c.mu.Unlock()
	for _, g := range groups {
		g.mb.post(g.releaseWaiters)
	}
}

func (c *Coordinator) isStopping() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stopping
}

func (c *Coordinator) sortedGroupsLocked() []*group {
	out := make([]*group, 0, len(c.groups))
	for _, g := range c.groups {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// validGroupID checks a group id for the APIs that need one.
func validGroupID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: empty", ErrInvalidGroupID)
	}
	if len(id) > MaxGroupIDLen {
		return fmt.Errorf("%w: %d bytes (at most %d)", ErrInvalidGroupID, len(id), MaxGroupIDLen)
	}
	return nil
}

// errGroupMissing is dispatch's answer for a group that does not exist
// when it must not be created.
var errGroupMissing = errors.New("group: no such group")

// dispatch runs fn on the group's actor, creating the group if create is
// set. It fails with ErrNotCoordinator once the coordinator is closing and
// with errGroupMissing when the group does not exist and create is unset.
func (c *Coordinator) dispatch(id string, create bool, fn func(g *group)) error {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return ErrNotCoordinator
		}
		if err := c.notServingLocked(); err != nil {
			c.mu.Unlock()
			return err
		}
		g := c.groups[id]
		if g == nil {
			if !create {
				c.mu.Unlock()
				return errGroupMissing
			}
			g = c.newGroup(id)
			c.groups[id] = g
		}
		c.mu.Unlock()
		if g.mb.post(func() { fn(g) }) {
			return nil
		}
		// The group died between the lookup and the post: look again.
	}
}

// goWorker runs fn on a tracked goroutine unless the coordinator is
// closing (then it reports false and fn does not run).
func (c *Coordinator) goWorker(fn func()) bool {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return false
	}
	c.workers.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.workers.Done()
		fn()
	}()
	return true
}

// scheduleRetention arms the next offset-expiry pass.
func (c *Coordinator) scheduleRetention() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return
	}
	c.ticker = c.clock.AfterFunc(c.cfg.RetentionCheckInterval, func() {
		c.ExpireOffsets()
		c.scheduleRetention()
	})
}

// ExpireOffsets runs one offset-expiry pass now (it also runs every
// RetentionCheckInterval): offsets past offsets.retention.minutes and
// offsets of deleted topics are removed, and empty groups left without
// offsets are deleted.
func (c *Coordinator) ExpireOffsets() {
	c.mu.Lock()
	groups := c.sortedGroupsLocked()
	c.mu.Unlock()
	for _, g := range groups {
		g.mb.post(g.expireOffsets)
	}
}

// TopicDeleted removes every group's committed offsets for topic (the
// cluster calls it when a topic is deleted).
func (c *Coordinator) TopicDeleted(topic string) {
	c.mu.Lock()
	groups := c.sortedGroupsLocked()
	c.mu.Unlock()
	for _, g := range groups {
		g.mb.post(func() { g.dropTopic(topic) })
	}
}

// GroupListing is one group as ListGroups shows it.
type GroupListing struct {
	Group        string
	ProtocolType string
	// State is the state's name: a classic group's (Empty,
	// PreparingRebalance, CompletingRebalance, Stable) or a KIP-848
	// group's (Empty, Assigning, Reconciling, Stable).
	State string
	// Type is "classic" or "consumer" (KIP-848).
	Type string
}

// ListGroups lists every group, sorted by id (none while following a
// leader elsewhere). The states are a snapshot
// each group publishes after every change, so listing never waits on a
// group.
func (c *Coordinator) ListGroups() []GroupListing {
	c.mu.Lock()
	if c.notServingLocked() != nil {
		// Following the leader: only the coordinator lists its groups.
		c.mu.Unlock()
		return []GroupListing{}
	}
	groups := c.sortedGroupsLocked()
	c.mu.Unlock()
	out := make([]GroupListing, 0, len(groups))
	for _, g := range groups {
		l := g.listing.Load()
		if l == nil || l.State == Dead.String() {
			continue
		}
		out = append(out, *l)
	}
	return out
}

// Call is the pending answer of a coordinator request.
type Call[T any] struct {
	ch chan T
}

func newCall[T any]() *Call[T] { return &Call[T]{ch: make(chan T, 1)} }

// Done returns a Call already answered with v.
func Done[T any](v T) *Call[T] {
	c := newCall[T]()
	c.ch <- v
	return c
}

// reply answers the call; only the first answer counts.
func (c *Call[T]) reply(v T) {
	select {
	case c.ch <- v:
	default:
	}
}

// Wait returns the answer, or ctx's error if ctx ends first.
func (c *Call[T]) Wait(ctx context.Context) (T, error) {
	select {
	case v := <-c.ch:
		c.ch <- v // keep it for another Wait
		return v, nil
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
