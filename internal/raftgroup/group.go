package raftgroup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"

	"github.com/stromhq/strom/internal/raftlog"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// StateMachine is what a group replicates. Its methods are called on the
// group's goroutine only, one at a time, so they must not call the Group's
// waiting methods (Propose, Status, TransferLeadership: they would wait for
// themselves). Apply must be deterministic: every node applies the same
// payloads in the same order and must reach the same state.
type StateMachine interface {
	// Apply applies one committed proposal's payload at index; its result
	// goes to the Propose waiting for it on this node (if any). The payload
	// aliases a buffer the group reuses: copy what is kept.
	Apply(index uint64, payload []byte) any
	// Snapshot returns the state as of the last index applied.
	Snapshot() ([]byte, error)
	// Restore replaces the state by a snapshot's: at Start when the group
	// has one, and when the leader sends one to a follower that fell behind
	// its log. index is the last index the snapshot covers.
	Restore(index uint64, data []byte) error
}

// Config configures a Group. Group, ID, Dir, FS, SM and Send are
// required; zero durations and counts take the defaults given.
type Config struct {
	Group uint64 // group id (0 = the metadata quorum), for logs and Status
	ID    uint64 // this node's raft id (node.id + 1; etcd raft reserves 0)
	// Voters are the initial voters, used only to bootstrap an empty group
	// directory; a directory that holds a log or a snapshot ignores them.
	// Every node must bootstrap the same set (see the package doc).
	Voters []uint64
	Dir    string // the group's directory (segments, raft-state, snapshot); its parent must exist durably
	FS     vfs.FS
	SM     StateMachine
	// Send hands messages to the transport. It is called on the group's
	// goroutine and must not block (drop what cannot be queued: raft
	// retries). It must not keep m past the call if it modifies it.
	Send func(msgs []*raftpb.Message)

	TickInterval   time.Duration // 100ms
	ElectionTicks  int           // 10 (an election timeout of 1 s at the default interval)
	HeartbeatTicks int           // 1
	// Tick, when set, replaces the group's own ticker: each value received
	// is one tick (tests drive time with it; a scheduler of many groups
	// could too). TickInterval is then unused.
	Tick <-chan time.Time

	// SnapshotEntries: take a snapshot and compact the log every so many
	// applied entries (10,000).
	SnapshotEntries uint64
	// KeepEntries: entries kept below a snapshot when compacting, so that a
	// follower a little behind catches up from the log rather than a
	// snapshot (1,000, at most SnapshotEntries).
	KeepEntries uint64
	// ProposalTimeoutTicks: a proposal not applied within so many ticks
	// fails with ErrProposalTimeout, even when its context has no deadline
	// (10 × ElectionTicks).
	ProposalTimeoutTicks int
	// MaxPayload is the largest payload Propose takes (1 MiB).
	MaxPayload int
	// InboxSize bounds the messages Step queues for the goroutine; more
	// are dropped and counted (4096).
	InboxSize int
	// SegmentBytes is the size at which the group's log rolls a segment
	// (16 MiB); compaction frees whole segments only.
	SegmentBytes int64
	Logger       *slog.Logger // slog.Default() when nil
}

func (c Config) withDefaults() (Config, error) {
	switch {
	case c.ID == 0:
		return c, errors.New("raftgroup: Config.ID is 0 (raft ids are node.id + 1)")
	case c.Dir == "" || c.FS == nil || c.SM == nil || c.Send == nil:
		return c, errors.New("raftgroup: Config needs Dir, FS, SM and Send")
	}
	seen := map[uint64]bool{}
	for _, v := range c.Voters {
		if v == 0 || seen[v] {
			return c, fmt.Errorf("raftgroup: Config.Voters %v: ids must be non-zero and distinct", c.Voters)
		}
		seen[v] = true
	}
	if c.TickInterval <= 0 {
		c.TickInterval = 100 * time.Millisecond
	}
	if c.ElectionTicks <= 0 {
		c.ElectionTicks = 10
	}
	if c.HeartbeatTicks <= 0 {
		c.HeartbeatTicks = 1
	}
	if c.HeartbeatTicks >= c.ElectionTicks {
		return c, fmt.Errorf("raftgroup: HeartbeatTicks %d must be below ElectionTicks %d", c.HeartbeatTicks, c.ElectionTicks)
	}
	if c.SnapshotEntries == 0 {
		c.SnapshotEntries = 10_000
	}
	if c.KeepEntries == 0 {
		c.KeepEntries = 1_000
	}
	c.KeepEntries = min(c.KeepEntries, c.SnapshotEntries)
	if c.ProposalTimeoutTicks <= 0 {
		c.ProposalTimeoutTicks = 10 * c.ElectionTicks
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = 1 << 20
	}
	if c.InboxSize <= 0 {
		c.InboxSize = 4096
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 16 << 20
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.Logger = c.Logger.With("raft_group", c.Group, "raft_id", c.ID)
	return c, nil
}

var (
	// ErrStopped: the group was stopped (or failed) before the call got
	// its answer.
	ErrStopped = errors.New("raftgroup: stopped")
	// ErrProposalDropped: the proposal will never be applied: there was no
	// leader to take it, raft refused it (a leadership transfer, too many
	// uncommitted bytes), or another entry was committed at the index it
	// had been appended at (a leader change). It is raft's own error
	// value, so errors.Is works with either name.
	ErrProposalDropped = raft.ErrProposalDropped
	// ErrProposalTimeout: no result within Config.ProposalTimeoutTicks.
	// The proposal may still be applied later (its forwarding may have
	// been lost, or the quorum is unreachable): its outcome is unknown.
	ErrProposalTimeout = errors.New("raftgroup: proposal timed out; its outcome is unknown")
	// ErrLeaderLost: the leader this node forwarded the proposal to was
	// lost (none known, or another elected) before the proposal showed
	// in this node's log. Its outcome is unknown, as after a timeout (the
	// old leader may have replicated it before it went), but known sooner.
	ErrLeaderLost = errors.New("raftgroup: the leader was lost before the proposal reached this node's log; its outcome is unknown")
	// ErrResultLost: this node learned the state that may include the
	// proposal from a snapshot, so it cannot tell whether it was applied.
	ErrResultLost = errors.New("raftgroup: proposal overtaken by a snapshot; its outcome is unknown")
	// ErrTooLarge: a payload over Config.MaxPayload.
	ErrTooLarge = errors.New("raftgroup: payload too large")
	// ErrPanicked: the group's goroutine panicked (raft found a broken
	// invariant, such as a log that lost acknowledged entries, or the
	// state machine did) and the group stopped.
	ErrPanicked = errors.New("raftgroup: panicked")
	// ErrDamaged: the group directory holds a state no crash of this
	// package leaves (entries past a bootstrap's with no hard state).
	ErrDamaged = errors.New("raftgroup: group directory damaged")
	// ErrSnapshotBehindLog: the group's snapshot ends before its log
	// starts, so the entries between were lost; the group refuses to start.
	ErrSnapshotBehindLog = errors.New("raftgroup: snapshot ends before the log starts")
)

// Status is a group's state as this node sees it.
type Status struct {
	Group, ID     uint64
	State         string // raft's: StateFollower, StateCandidate, StateLeader, StatePreCandidate
	Term          uint64
	Leader        uint64 // 0 when unknown
	Commit        uint64
	Applied       uint64
	FirstIndex    uint64 // of the log on this node
	LastIndex     uint64
	SnapshotIndex uint64 // of the group's latest snapshot on this node (0: none)
	Voters        []uint64
	// Match is each voter's match index; only the leader knows it (nil on
	// others).
	Match map[uint64]uint64
	// Active, on the leader, says which voters it heard from within the
	// last election timeout (raft's RecentActive, which CheckQuorum
	// resets every election timeout); nil on others.
	Active map[uint64]bool
	// LastContact and CaughtUp, on the leader, say when each voter last
	// answered an append or heartbeat, and when it last did so with its
	// log as long as the leader's (the leader itself: now); a voter not
	// heard from since this node became leader is absent. nil on others.
	LastContact, CaughtUp map[uint64]time.Time
	DroppedMessages       uint64 // messages Step dropped (inbox full)
	LeaderChanges         uint64 // times this node learned of a new leader since Start
	Err                   error  // the failure that stopped the group, if any
}

// Group runs one raft group on this node: one goroutine drives its
// RawNode (the package doc has its contract).
type Group struct {
	cfg         Config
	incarnation uint64
	seq         atomic.Uint64
	log         *seglog.Log
	st          *raftlog.Storage

	inbox  chan *raftpb.Message
	propc  chan *proposal
	reqc   chan func()
	stopc  chan struct{}
	done   chan struct{}
	stopMu sync.Once

	leader        atomic.Uint64
	leaderChanges atomic.Uint64
	dropped       atomic.Uint64
	errv          atomic.Pointer[error]
	changed       struct {
		sync.Mutex
		ch chan struct{} // closed and replaced when the leader changes
	}

	loopState // owned by the goroutine (loop.go)
}

type result struct {
	v   any
	err error
}

type proposal struct {
	id       proposalID
	data     []byte
	res      chan result // buffered(1): the goroutine never blocks on it
	deadline int         // tick count after which it times out
	indexes  []uint64    // where this node saw it appended (usually one)
}

// Start opens (creating) the group's directory, restores its snapshot,
// bootstraps an empty group with cfg.Voters, and starts the group's
// goroutine. Stop ends it.
func Start(cfg Config) (*Group, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	l, err := seglog.Open(cfg.FS, cfg.Dir, seglog.Config{
		SegmentBytes:  cfg.SegmentBytes,
		RetentionMs:   -1,
		MaxBatchBytes: cfg.MaxPayload + 1024,
	}, seglog.State{})
	if err != nil {
		return nil, fmt.Errorf("raftgroup %d: open log: %w", cfg.Group, err)
	}
	g := &Group{
		cfg:         cfg,
		incarnation: rand.Uint64(),
		log:         l,
		inbox:       make(chan *raftpb.Message, cfg.InboxSize),
		propc:       make(chan *proposal, 256),
		reqc:        make(chan func()),
		stopc:       make(chan struct{}),
		done:        make(chan struct{}),
	}
	g.changed.ch = make(chan struct{})
	if err := g.open(); err != nil {
		l.Close()
		return nil, err
	}
	go g.run()
	return g, nil
}

// Propose replicates payload and waits until this node has applied it,
// returning the state machine's result. It fails with ErrProposalDropped
// when the proposal will not be applied, ErrProposalTimeout or the
// context's error when its outcome is unknown, ErrStopped when the group
// stops first.
func (g *Group) Propose(ctx context.Context, payload []byte) (any, error) {
	if len(payload) > g.cfg.MaxPayload {
		return nil, fmt.Errorf("raftgroup %d: %d bytes, at most %d: %w", g.cfg.Group, len(payload), g.cfg.MaxPayload, ErrTooLarge)
	}
	id := proposalID{node: g.cfg.ID, incarnation: g.incarnation, seq: g.seq.Add(1)}
	data, err := frame(id, payload, time.Now())
	if err != nil {
		return nil, err
	}
	p := &proposal{id: id, data: data, res: make(chan result, 1)}
	select {
	case g.propc <- p:
	case <-ctx.Done():
		return nil, fmt.Errorf("raftgroup %d: propose: %w", g.cfg.Group, ctx.Err())
	case <-g.done:
		return nil, g.stoppedErr()
	}
	select {
	case r := <-p.res:
		return r.v, r.err
	case <-ctx.Done():
		// The goroutine forgets it at its deadline at the latest.
		return nil, fmt.Errorf("raftgroup %d: propose: %w", g.cfg.Group, ctx.Err())
	case <-g.done:
		// The goroutine answers every pending proposal before it ends.
		select {
		case r := <-p.res:
			return r.v, r.err
		default:
			return nil, g.stoppedErr()
		}
	}
}

// Step hands a message from the transport to the group. It never blocks:
// when the inbox is full the message is dropped and counted (raft
// retries). m must not be modified after the call.
func (g *Group) Step(m *raftpb.Message) {
	select {
	case g.inbox <- m:
	default:
		g.dropped.Add(1)
	}
}

// Leader returns the leader's raft id as this node last learned it, 0 when
// unknown.
func (g *Group) Leader() uint64 { return g.leader.Load() }

// leaderChanged returns a channel closed at the next leader change.
func (g *Group) leaderChanged() <-chan struct{} {
	g.changed.Lock()
	defer g.changed.Unlock()
	return g.changed.ch
}

func (g *Group) setLeader(id uint64) {
	if g.leader.Swap(id) == id {
		return
	}
	if id != 0 {
		g.leaderChanges.Add(1)
	}
	g.changed.Lock()
	close(g.changed.ch)
	g.changed.ch = make(chan struct{})
	g.changed.Unlock()
}

// WaitLeader returns once a leader is known (nil), or the context's error,
// or ErrStopped.
func (g *Group) WaitLeader(ctx context.Context) error {
	return g.waitLeader(ctx, func(l uint64) bool { return l != 0 })
}

func (g *Group) waitLeader(ctx context.Context, ok func(uint64) bool) error {
	for {
		ch := g.leaderChanged()
		if ok(g.Leader()) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("raftgroup %d: wait for leader: %w", g.cfg.Group, ctx.Err())
		case <-g.done:
			return g.stoppedErr()
		}
	}
}

// TransferLeadership asks the leader to hand leadership to voter to (from
// any node: a follower forwards the request to the leader it knows) and
// waits until this node sees to as the leader, or the context ends (raft
// gives up a transfer the target does not take within an election
// timeout). The leader drops proposals while a transfer is under way.
func (g *Group) TransferLeadership(ctx context.Context, to uint64) error {
	if err := g.do(ctx, func() { g.rn.TransferLeader(to) }); err != nil {
		return err
	}
	return g.waitLeader(ctx, func(l uint64) bool { return l == to })
}

// Status returns the group's state; after Stop, what Leader and the
// counters say, with Err.
func (g *Group) Status() Status {
	var st Status
	if err := g.do(context.Background(), func() { st = g.statusLocked() }); err != nil {
		st = Status{Group: g.cfg.Group, ID: g.cfg.ID, Leader: g.Leader(), DroppedMessages: g.dropped.Load(), LeaderChanges: g.leaderChanges.Load(), Err: g.Err()}
	}
	return st
}

// Done is closed once the group's goroutine has ended: after Stop, or a
// failure (Err says which).
func (g *Group) Done() <-chan struct{} { return g.done }

// Err returns the failure (storage, or a panic) that stopped the group,
// or nil.
func (g *Group) Err() error {
	if p := g.errv.Load(); p != nil {
		return *p
	}
	return nil
}

func (g *Group) stoppedErr() error {
	if err := g.Err(); err != nil {
		return fmt.Errorf("raftgroup %d: %w: %w", g.cfg.Group, ErrStopped, err)
	}
	return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, ErrStopped)
}

// do runs f on the group's goroutine and waits for it.
func (g *Group) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case g.reqc <- func() { f(); close(ran) }:
	case <-ctx.Done():
		return fmt.Errorf("raftgroup %d: %w", g.cfg.Group, ctx.Err())
	case <-g.done:
		return g.stoppedErr()
	}
	select {
	case <-ran: // the goroutine runs f as soon as it takes it
		return nil
	case <-g.done: // f panicked, or the group failed right after it ran
		select {
		case <-ran:
			return nil
		default:
			return g.stoppedErr()
		}
	}
}

// Stop ends the group's goroutine and closes its log; pending proposals
// fail with ErrStopped. It returns once the goroutine is gone, and may be
// called more than once.
func (g *Group) Stop() {
	g.stopMu.Do(func() { close(g.stopc) })
	<-g.done
}
