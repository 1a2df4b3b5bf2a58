package group

import (
	"fmt"
	"time"
)

// State is a classic group's state (see doc.go for the transitions).
type State int8

// The states of a classic group, named as Kafka names them in
// DescribeGroups and ListGroups.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

func (s State) String() string {
	switch s {
	case Empty:
		return "Empty"
	case PreparingRebalance:
		return "PreparingRebalance"
	case CompletingRebalance:
		return "CompletingRebalance"
	case Stable:
		return "Stable"
	case Dead:
		return "Dead"
	}
	return fmt.Sprintf("State(%d)", int8(s))
}

// Protocol is one (name, metadata) a joining member supports, in its order
// of preference.
type Protocol struct {
	Name     string
	Metadata []byte
}

// JoinRequest is a JoinGroup.
type JoinRequest struct {
	Group      string
	MemberID   string // "" for a new member
	InstanceID string // group.instance.id of a static member; "" if dynamic
	ClientID   string
	ClientHost string
	// ProtocolType is "consumer" for consumers, "connect" for Connect...
	ProtocolType string
	Protocols    []Protocol
	// SessionTimeout must be within the broker's bounds; RebalanceTimeout
	// is how long the rebalance waits for this member to rejoin (v0: the
	// session timeout).
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	// RequireKnownMemberID (v4+): a new dynamic member is given an id and
	// ErrMemberIDRequired, and must join again with it.
	RequireKnownMemberID bool
	// SupportsSkipAssignment (v9+): a restarted static leader can be told
	// to skip the assignment (KIP-814) rather than being given the old
	// leader id.
	SupportsSkipAssignment bool
	Reason                 string
}

// JoinMember is one member in the leader's JoinGroup answer.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte
}

// JoinResult answers a JoinGroup. On error, MemberID is the id to use next
// (the new id with ErrMemberIDRequired) and Generation is -1.
type JoinResult struct {
	Err          error
	MemberID     string
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	// Members is set for the leader only: every member with its metadata
	// for the chosen protocol.
	Members []JoinMember
	// SkipAssignment tells a restarted static leader of a Stable group that
	// the assignment stands (KIP-814): it syncs without assigning.
	SkipAssignment bool
}

// SyncRequest is a SyncGroup.
type SyncRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol (v5+) must match the group's when set.
	ProtocolType, Protocol string
	// Assignments is the leader's: member id -> assignment.
	Assignments map[string][]byte
}

// SyncResult answers a SyncGroup.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// HeartbeatRequest is a Heartbeat.
type HeartbeatRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
}

// LeaveMember is one member leaving (LeaveGroup v3+ batches them). With
// MemberID "" a static member is found by its InstanceID.
type LeaveMember struct {
	MemberID   string
	InstanceID string
	Reason     string
}

// LeaveResult answers a LeaveGroup: Err for the whole group, or one error
// per member (nil: left).
type LeaveResult struct {
	Err     error
	Members []error
}

// CommitOffset is one partition of an OffsetCommit.
type CommitOffset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32 // -1: unknown
	Metadata    string
	// Timestamp (v1 only) is the commit time in unix ms; -1: now.
	Timestamp int64
}

// CommitRequest is an OffsetCommit. Generation -1 with no member id is a
// commit from outside group management (admin tools, assign()ed
// consumers, OffsetCommit v0): allowed while the group is empty.
type CommitRequest struct {
	Group      string
	MemberID   string
	InstanceID string
	Generation int32
	// Retention (v2-v4 RetentionTimeMillis) sets an explicit expiry; <= 0
	// (the -1 default) leaves expiry to offsets.retention.minutes.
	Retention time.Duration
	Offsets   []CommitOffset
	// Version is the OffsetCommit version (0: unknown). Members of KIP-848
	// groups must commit with v9+, whose Generation is their member epoch.
	Version int16

	// txnApply marks the commit of a committed transaction's offsets
	// (CommitTxnOffsets): already checked at TxnOffsetCommit, applied
	// whoever is in the group now.
	txnApply bool
}

// CommitResult answers an OffsetCommit: Err for the whole request, else one
// error per offset (nil: committed and durable).
type CommitResult struct {
	Err  error
	Errs []error
}

// Offset is a committed offset as OffsetFetch returns it. Offset -1 means
// none committed.
type Offset struct {
	Topic       string
	Partition   int32
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	// Pending: a transaction not yet ended holds offsets of this
	// partition (TxnOffsetCommit); OffsetFetch with require_stable
	// answers UNSTABLE_OFFSET_COMMIT for it (KIP-447).
	Pending bool
}

// FetchAs names the KIP-848 member an OffsetFetch v9+ comes from; its
// epoch must be current.
type FetchAs struct {
	MemberID    string
	MemberEpoch int32
}

// FetchResult answers an OffsetFetch for one group.
type FetchResult struct {
	Err     error
	Offsets []Offset
}

// MemberDescription is one member in DescribeGroups.
type MemberDescription struct {
	MemberID   string
	InstanceID string
	ClientID   string
	ClientHost string
	Metadata   []byte
	Assignment []byte
}

// Description answers DescribeGroups for one group. A group that does not
// exist is described as Dead with no members, as Kafka does. State is the
// state's name (a KIP-848 group's states are described too).
type Description struct {
	Err          error
	Group        string
	State        string
	ProtocolType string
	Protocol     string
	Members      []MemberDescription
}

// DeleteOffsetsResult answers an OffsetDelete: Err for the group, else one
// error per partition.
type DeleteOffsetsResult struct {
	Err  error
	Errs []error
}

// PartitionLag is one partition's committed offset and lag.
type PartitionLag struct {
	TopicPartition
	Committed     int64
	HighWatermark int64
	// Lag is HighWatermark - Committed, or -1 when the high watermark is
	// unknown (the topic is gone).
	Lag int64
}

// JoinGroup joins (or rejoins) a member. The call completes when the
// rebalance it started or joined completes, or at once on error.
func (c *Coordinator) JoinGroup(req JoinRequest) *Call[JoinResult] {
	call := newCall[JoinResult]()
	fail := func(err error) *Call[JoinResult] {
		call.reply(JoinResult{Err: err, MemberID: req.MemberID, Generation: -1})
		return call
	}
	if err := validGroupID(req.Group); err != nil {
		return fail(err)
	}
	for _, s := range []string{req.MemberID, req.InstanceID, req.ClientID, req.ClientHost, req.ProtocolType} {
		if len(s) > maxString {
			return fail(fmt.Errorf("%w: a string of %d bytes", ErrInvalidRequest, len(s)))
		}
	}
	for _, p := range req.Protocols {
		if len(p.Name) > maxString {
			return fail(fmt.Errorf("%w: a protocol name of %d bytes", ErrInvalidRequest, len(p.Name)))
		}
	}
	if req.SessionTimeout < c.cfg.MinSessionTimeout || req.SessionTimeout > c.cfg.MaxSessionTimeout {
		return fail(fmt.Errorf("%w: %v not within [%v, %v]", ErrInvalidSessionTimeout, req.SessionTimeout, c.cfg.MinSessionTimeout, c.cfg.MaxSessionTimeout))
	}
	if req.RebalanceTimeout <= 0 {
		req.RebalanceTimeout = req.SessionTimeout
	}
	c.joinOn(req, call)
	return call
}

func (c *Coordinator) joinOn(req JoinRequest, call *Call[JoinResult]) {
	err := c.dispatch(req.Group, true, func(g *group) {
		if g.state == Dead {
			c.joinOn(req, call)
			return
		}
		g.join(req, call)
	})
	if err != nil {
		call.reply(JoinResult{Err: err, MemberID: req.MemberID, Generation: -1})
	}
}

// SyncGroup delivers the leader's assignment, or waits for it.
func (c *Coordinator) SyncGroup(req SyncRequest) *Call[SyncResult] {
	call := newCall[SyncResult]()
	if err := validGroupID(req.Group); err != nil {
		call.reply(SyncResult{Err: err})
		return call
	}
	c.onGroup(req.Group, func(err error) { call.reply(SyncResult{Err: err}) }, func(g *group) { g.sync(req, call) })
	return call
}

// Heartbeat keeps a member's session alive and tells it whether it must
// rejoin (ErrRebalanceInProgress).
func (c *Coordinator) Heartbeat(req HeartbeatRequest) *Call[error] {
	call := newCall[error]()
	if err := validGroupID(req.Group); err != nil {
		call.reply(err)
		return call
	}
	c.onGroup(req.Group, func(err error) { call.reply(err) }, func(g *group) { call.reply(g.heartbeat(req)) })
	return call
}

// LeaveGroup removes members.
func (c *Coordinator) LeaveGroup(id string, members []LeaveMember) *Call[LeaveResult] {
	call := newCall[LeaveResult]()
	if err := validGroupID(id); err != nil {
		call.reply(LeaveResult{Err: err})
		return call
	}
	unknown := func(err error) {
		if err != ErrUnknownMemberID {
			call.reply(LeaveResult{Err: err})
			return
		}
		errs := make([]error, len(members))
		for i := range errs {
			errs[i] = ErrUnknownMemberID
		}
		call.reply(LeaveResult{Members: errs})
	}
	c.onGroup(id, unknown, func(g *group) { call.reply(g.leave(members)) })
	return call
}

// onGroup runs fn on an existing group; missing (or dead) groups get
// ErrUnknownMemberID, a closing coordinator ErrNotCoordinator.
func (c *Coordinator) onGroup(id string, fail func(error), fn func(g *group)) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.onGroup(id, fail, fn)
			return
		}
		fn(g)
	})
	switch {
	case err == errGroupMissing:
		fail(ErrUnknownMemberID)
	case err != nil:
		fail(err)
	}
}

// CommitOffsets commits offsets; the call completes once they are durable.
// A group that does not exist is created by a commit from outside group
// management (Generation < 0); any other commit to it gets
// ErrGroupIDNotFound (OffsetCommit before v9 says ILLEGAL_GENERATION).
func (c *Coordinator) CommitOffsets(req CommitRequest) *Call[CommitResult] {
	call := newCall[CommitResult]()
	if err := validGroupID(req.Group); err != nil {
		call.reply(CommitResult{Err: err})
		return call
	}
	for _, o := range req.Offsets {
		if len(o.Topic) > maxString {
			call.reply(CommitResult{Err: fmt.Errorf("%w: topic name of %d bytes", ErrInvalidRequest, len(o.Topic))})
			return call
		}
	}
	c.commitOn(req, call)
	return call
}

func (c *Coordinator) commitOn(req CommitRequest, call *Call[CommitResult]) {
	err := c.dispatch(req.Group, req.Generation < 0, func(g *group) {
		if g.state == Dead {
			c.commitOn(req, call)
			return
		}
		g.commit(req, call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(CommitResult{Err: ErrGroupIDNotFound})
	case err != nil:
		call.reply(CommitResult{Err: err})
	}
}

// FetchOffsets returns a group's committed offsets: for the given
// partitions (nil: every partition it has committed). Partitions without a
// commit, and every partition of a group that does not exist, answer
// offset -1 with no error, as Kafka does. The answer includes every commit
// the group acknowledged before the call.
func (c *Coordinator) FetchOffsets(group string, partitions []TopicPartition) *Call[FetchResult] {
	return c.FetchOffsetsAs(group, partitions, nil)
}

// FetchOffsetsAs is FetchOffsets for a KIP-848 member (OffsetFetch v9+ with
// a member id and epoch): ErrUnknownMemberID or ErrStaleMemberEpoch unless
// the member is in the group at that epoch. as nil: anyone.
func (c *Coordinator) FetchOffsetsAs(group string, partitions []TopicPartition, as *FetchAs) *Call[FetchResult] {
	call := newCall[FetchResult]()
	if err := validGroupID(group); err != nil {
		call.reply(FetchResult{Err: err})
		return call
	}
	c.fetchOn(group, partitions, as, call)
	return call
}

func (c *Coordinator) fetchOn(id string, partitions []TopicPartition, as *FetchAs, call *Call[FetchResult]) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.fetchOn(id, partitions, as, call)
			return
		}
		g.fetch(partitions, as, call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(FetchResult{Offsets: noOffsets(partitions)})
	case err != nil:
		call.reply(FetchResult{Err: err})
	}
}

func noOffsets(partitions []TopicPartition) []Offset {
	out := make([]Offset, 0, len(partitions))
	for _, tp := range partitions {
		out = append(out, Offset{Topic: tp.Topic, Partition: tp.Partition, Offset: -1, LeaderEpoch: -1})
	}
	return out
}

// DescribeGroup describes a group.
func (c *Coordinator) DescribeGroup(group string) *Call[Description] {
	call := newCall[Description]()
	if err := validGroupID(group); err != nil {
		call.reply(Description{Err: err, Group: group, State: Dead.String()})
		return call
	}
	c.describeOn(group, call)
	return call
}

func (c *Coordinator) describeOn(id string, call *Call[Description]) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.describeOn(id, call)
			return
		}
		call.reply(g.describe())
	})
	switch {
	case err == errGroupMissing:
		call.reply(Description{Group: id, State: Dead.String()})
	case err != nil:
		call.reply(Description{Err: err, Group: id, State: Dead.String()})
	}
}

// DeleteGroup deletes an empty group and its offsets.
func (c *Coordinator) DeleteGroup(group string) *Call[error] {
	call := newCall[error]()
	if err := validGroupID(group); err != nil {
		call.reply(err)
		return call
	}
	c.deleteOn(group, call)
	return call
}

func (c *Coordinator) deleteOn(id string, call *Call[error]) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.deleteOn(id, call)
			return
		}
		g.delete(call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(ErrGroupIDNotFound)
	case err != nil:
		call.reply(err)
	}
}

// DeleteOffsets deletes committed offsets of a group (OffsetDelete).
func (c *Coordinator) DeleteOffsets(group string, partitions []TopicPartition) *Call[DeleteOffsetsResult] {
	call := newCall[DeleteOffsetsResult]()
	if err := validGroupID(group); err != nil {
		call.reply(DeleteOffsetsResult{Err: err})
		return call
	}
	c.deleteOffsetsOn(group, partitions, call)
	return call
}

func (c *Coordinator) deleteOffsetsOn(id string, partitions []TopicPartition, call *Call[DeleteOffsetsResult]) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.deleteOffsetsOn(id, partitions, call)
			return
		}
		g.deleteOffsets(partitions, call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(DeleteOffsetsResult{Err: ErrGroupIDNotFound})
	case err != nil:
		call.reply(DeleteOffsetsResult{Err: err})
	}
}

// Lag returns, for every partition the group has committed, the committed
// offset, the partition's high watermark and their difference.
func (c *Coordinator) Lag(group string) *Call[[]PartitionLag] {
	call := newCall[[]PartitionLag]()
	res := c.FetchOffsets(group, nil)
	go func() {
		r, _ := res.Wait(c.ctx)
		out := make([]PartitionLag, 0, len(r.Offsets))
		for _, o := range r.Offsets {
			pl := PartitionLag{TopicPartition: TopicPartition{o.Topic, o.Partition}, Committed: o.Offset, HighWatermark: -1, Lag: -1}
			if c.cfg.HighWatermark != nil {
				if hw, ok := c.cfg.HighWatermark(o.Topic, o.Partition); ok {
					pl.HighWatermark, pl.Lag = hw, max(hw-o.Offset, 0)
				}
			}
			out = append(out, pl)
		}
		call.reply(out)
	}()
	return call
}
