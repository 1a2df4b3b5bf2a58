package group

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"
)

// The next-generation consumer group protocol (KIP-848): members send
// ConsumerGroupHeartbeat with their subscription and the partitions they
// own, and the coordinator computes the assignment ("server-side
// assignor") and hands each member its share, epoch by epoch.
//
// The group epoch moves whenever the members or what they subscribe to
// change (a member joins or leaves, a subscription changes, a subscribed
// topic gains partitions or a regex matches a new topic); the target
// assignment is recomputed for it at once. Each member then converges on
// its target in steps that never let two members own a partition at once:
//
//  1. Partitions it owns that are no longer its target are taken from its
//     assignment; it keeps its epoch until it reports (in a heartbeat's
//     owned partitions) that it released them. It must do so within its
//     rebalance timeout, or it is removed from the group.
//  2. With nothing left to release, it moves to the target epoch and is
//     given the target partitions that nobody owns; the others (still
//     being released by their previous owner) follow in later heartbeats.
//
// A member commits offsets with its member epoch (OffsetCommit v9+). A
// commit with an older epoch is accepted only for partitions the member
// still owns (KIP-1251), so a member that has not caught up with the
// group can still commit what it is about to release.

// consumerGroup is a KIP-848 group's state; the group actor owns it.
type consumerGroup struct {
	epoch       int32 // the group epoch
	targetEpoch int32 // the epoch the target assignment was computed for
	assignor    string
	members     map[string]*cmember
	instances   map[string]string // static members: instance id -> member id
	target      map[string]map[TopicPartition]bool
	// owner says which member owns (or is releasing) each partition.
	owner map[TopicPartition]string
	// signature describes the subscriptions and partition counts the
	// target was computed from; a heartbeat that finds them changed moves
	// the group epoch.
	signature string
}

// cmember is one KIP-848 member.
type cmember struct {
	id, instanceID, rackID string
	clientID, host         string
	epoch, prevEpoch       int32 // epoch -2: a static member that left for now
	topics                 []string
	regex                  string
	re                     *regexp.Regexp
	assignor               string
	rebalanceTimeout       time.Duration
	assigned               map[TopicPartition]bool // what it may consume
	revoking               map[TopicPartition]bool // what it must release
	session                *gtimer
	revokeTimer            *gtimer
}

// ConsumerHeartbeat is a ConsumerGroupHeartbeat. Nil pointers and slices
// mean "unchanged since the last heartbeat", as on the wire.
type ConsumerHeartbeat struct {
	Group       string
	MemberID    string // "" at epoch 0 (v0): the coordinator makes one
	MemberEpoch int32  // 0 joins, -1 leaves, -2 leaves for now (static)
	InstanceID  *string
	RackID      *string
	ClientID    string
	ClientHost  string
	// RebalanceTimeout is how long the member may take to release
	// partitions; < 0: unchanged.
	RebalanceTimeout time.Duration
	SubscribedTopics []string
	SubscribedRegex  *string
	ServerAssignor   *string
	// Owned are the partitions the member owns now.
	Owned []TopicPartition
}

// ConsumerHeartbeatResult answers a ConsumerGroupHeartbeat.
type ConsumerHeartbeatResult struct {
	Err               error
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	// Assignment is set (HasAssignment) when the member's assignment
	// changed or the request was a full one; otherwise it is unchanged.
	HasAssignment bool
	Assignment    []TopicPartition
}

// ConsumerMemberDescription is one member in ConsumerGroupDescribe.
type ConsumerMemberDescription struct {
	MemberID, InstanceID, RackID string
	MemberEpoch                  int32
	ClientID, ClientHost         string
	SubscribedTopics             []string
	SubscribedRegex              string
	Assignment, TargetAssignment []TopicPartition
}

// ConsumerDescription answers ConsumerGroupDescribe for one group.
type ConsumerDescription struct {
	Err             error
	Group           string
	State           string
	Epoch           int32
	AssignmentEpoch int32
	Assignor        string
	Members         []ConsumerMemberDescription
}

// ConsumerGroupHeartbeat handles a KIP-848 heartbeat.
func (c *Coordinator) ConsumerGroupHeartbeat(req ConsumerHeartbeat) *Call[ConsumerHeartbeatResult] {
	call := newCall[ConsumerHeartbeatResult]()
	fail := func(err error) *Call[ConsumerHeartbeatResult] {
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
		return call
	}
	if req.Group == "" {
		return fail(fmt.Errorf("%w: GroupId can't be empty", ErrInvalidRequest))
	}
	if err := validGroupID(req.Group); err != nil {
		return fail(err)
	}
	if err := validConsumerHeartbeat(req); err != nil {
		return fail(err)
	}
	c.consumerHeartbeatOn(req, call)
	return call
}

func (c *Coordinator) consumerHeartbeatOn(req ConsumerHeartbeat, call *Call[ConsumerHeartbeatResult]) {
	// Joining creates the group; any other heartbeat needs it.
	err := c.dispatch(req.Group, req.MemberEpoch == 0, func(g *group) {
		if g.state == Dead {
			c.consumerHeartbeatOn(req, call)
			return
		}
		g.consumerHeartbeat(req, call)
	})
	switch {
	case err == errGroupMissing:
		call.reply(ConsumerHeartbeatResult{Err: ErrUnknownMemberID, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
	case err != nil:
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
	}
}

// validConsumerHeartbeat applies Kafka's request checks.
func validConsumerHeartbeat(req ConsumerHeartbeat) error {
	bad := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidRequest, msg) }
	if req.InstanceID != nil && *req.InstanceID == "" {
		return bad("InstanceId can't be empty")
	}
	if req.RackID != nil && *req.RackID == "" {
		return bad("RackId can't be empty")
	}
	for _, s := range []string{req.MemberID, req.ClientID, req.ClientHost} {
		if len(s) > maxString {
			return bad("a string is too long")
		}
	}
	switch e := req.MemberEpoch; {
	case e == 0:
		if req.RebalanceTimeout < 0 {
			return bad("RebalanceTimeoutMs must be provided in first request")
		}
		if req.Owned == nil || len(req.Owned) > 0 {
			return bad("TopicPartitions must be empty when (re-)joining")
		}
		if req.SubscribedTopics == nil && req.SubscribedRegex == nil {
			return bad("SubscribedTopicNames or SubscribedTopicRegex must be set in first request")
		}
	case e == -2:
		if req.InstanceID == nil {
			return bad("InstanceId can't be null when leaving as a static member")
		}
		fallthrough
	case e == -1 || e > 0:
		if req.MemberID == "" {
			return bad("MemberId can't be empty")
		}
	default:
		return bad(fmt.Sprintf("MemberEpoch %d is invalid", e))
	}
	return nil
}

// DescribeConsumerGroup describes a KIP-848 group (ConsumerGroupDescribe).
// A group that does not exist, or a classic one, is ErrGroupIDNotFound.
func (c *Coordinator) DescribeConsumerGroup(id string) *Call[ConsumerDescription] {
	call := newCall[ConsumerDescription]()
	if err := validGroupID(id); err != nil {
		call.reply(ConsumerDescription{Err: err, Group: id})
		return call
	}
	c.describeConsumerOn(id, call)
	return call
}

func (c *Coordinator) describeConsumerOn(id string, call *Call[ConsumerDescription]) {
	err := c.dispatch(id, false, func(g *group) {
		if g.state == Dead {
			c.describeConsumerOn(id, call)
			return
		}
		if g.cg == nil {
			call.reply(ConsumerDescription{Err: fmt.Errorf("%w: %s is not a consumer group", ErrGroupIDNotFound, id), Group: id})
			return
		}
		call.reply(g.consumerDescription())
	})
	switch {
	case err == errGroupMissing:
		call.reply(ConsumerDescription{Err: ErrGroupIDNotFound, Group: id})
	case err != nil:
		call.reply(ConsumerDescription{Err: err, Group: id})
	}
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{
		members: map[string]*cmember{}, instances: map[string]string{},
		target: map[string]map[TopicPartition]bool{}, owner: map[TopicPartition]string{},
	}
}

// consumerState names a KIP-848 group's state as Kafka does.
func (g *group) consumerState() string {
	cg := g.cg
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.targetEpoch < cg.epoch {
		return "Assigning"
	}
	for _, m := range cg.members {
		if m.epoch == -2 {
			continue
		}
		if m.epoch != cg.targetEpoch || len(m.revoking) > 0 || len(m.assigned) != len(cg.target[m.id]) {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (g *group) consumerHeartbeat(req ConsumerHeartbeat, call *Call[ConsumerHeartbeatResult]) {
	fail := func(err error) {
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
	}
	if g.cg == nil {
		if len(g.members) > 0 || len(g.pending) > 0 {
			fail(fmt.Errorf("%w: %s is not a consumer group", ErrGroupIDNotFound, g.id))
			return
		}
		// An empty classic group (or one that only has offsets) becomes a
		// consumer group; its epochs continue from its generation.
		g.cg = newConsumerGroup()
		g.cg.epoch, g.cg.targetEpoch = g.generation, g.generation
		g.protocolType = "consumer"
		g.protocol, g.leader = "", ""
		g.publish()
	}
	switch req.MemberEpoch {
	case 0:
		g.consumerJoin(req, call)
	case -1, -2:
		g.consumerLeave(req, call)
	default:
		g.consumerRegular(req, call)
	}
}

// reply answers a heartbeat of m: at once if nothing changed, after the
// group is durable otherwise (a member never acts on a state a crash
// could take back).
func (g *group) consumerReply(m *cmember, call *Call[ConsumerHeartbeatResult], changed, sendAssignment bool) {
	res := ConsumerHeartbeatResult{MemberID: m.id, MemberEpoch: m.epoch, HeartbeatInterval: g.c.cfg.ConsumerHeartbeatInterval}
	if sendAssignment {
		res.HasAssignment = true
		res.Assignment = sortedTPs(m.assigned)
	}
	g.publish()
	if !changed {
		call.reply(res)
		return
	}
	g.persistConsumer(func(err error) {
		if err != nil {
			call.reply(ConsumerHeartbeatResult{Err: err, MemberID: m.id, MemberEpoch: m.epoch})
			return
		}
		call.reply(res)
	})
}

func (g *group) consumerJoin(req ConsumerHeartbeat, call *Call[ConsumerHeartbeatResult]) {
	fail := func(err error) {
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
	}
	cg := g.cg
	id := req.MemberID
	if id == "" {
		prefix := req.ClientID
		if req.InstanceID != nil {
			prefix = *req.InstanceID
		}
		id = g.c.cfg.NewMemberID(prefix)
	}
	var re *regexp.Regexp
	if req.SubscribedRegex != nil && *req.SubscribedRegex != "" {
		var err error
		if re, err = compileTopicRegex(*req.SubscribedRegex); err != nil {
			fail(err)
			return
		}
	}
	if req.ServerAssignor != nil && !validAssignor(*req.ServerAssignor) {
		fail(fmt.Errorf("%w: %q (this broker has %q and %q)", ErrUnsupportedAssignor, *req.ServerAssignor, assignorUniform, assignorRange))
		return
	}
	m := cg.members[id]
	if req.InstanceID != nil {
		if oldID, ok := cg.instances[*req.InstanceID]; ok && oldID != id {
			old := cg.members[oldID]
			if old != nil && old.epoch != -2 {
				fail(fmt.Errorf("%w: instance %q is held by member %s", ErrUnreleasedInstanceID, *req.InstanceID, oldID))
				return
			}
			if old != nil {
				// A static member back after a restart: it takes over the
				// old member's place, assignment and epoch.
				g.replaceConsumerMember(old, id)
				m = old
			}
		}
	}
	isNew := m == nil
	if isNew {
		m = &cmember{
			id: id, epoch: 0, rebalanceTimeout: req.RebalanceTimeout,
			assigned: map[TopicPartition]bool{}, revoking: map[TopicPartition]bool{},
		}
		cg.members[id] = m
	} else if m.epoch == -2 {
		m.epoch = m.prevEpoch
	}
	if req.InstanceID != nil {
		m.instanceID = *req.InstanceID
		cg.instances[m.instanceID] = id
	}
	m.clientID, m.host = req.ClientID, req.ClientHost
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeout > 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	subscriptionChanged := g.updateSubscription(m, req, re)
	if isNew || subscriptionChanged {
		cg.epoch++
	}
	// A join always persists (and so answers once durable): the member
	// is new, back, or releases whatever it owned.
	g.reconcileAll(isNew || subscriptionChanged)
	g.reconcile(m, req.Owned)
	g.startConsumerSession(m)
	g.consumerReply(m, call, true, true)
}

// replaceConsumerMember moves a static member that left for now (epoch
// -2) to a new member id.
func (g *group) replaceConsumerMember(old *cmember, newID string) {
	cg := g.cg
	delete(cg.members, old.id)
	if t, ok := cg.target[old.id]; ok {
		delete(cg.target, old.id)
		cg.target[newID] = t
	}
	for tp, o := range cg.owner {
		if o == old.id {
			cg.owner[tp] = newID
		}
	}
	old.session.stop()
	old.id = newID
	old.epoch = old.prevEpoch
	cg.members[newID] = old
}

// updateSubscription applies a heartbeat's subscription fields; it
// reports whether the subscription or assignor changed (the caller then
// moves the group epoch).
func (g *group) updateSubscription(m *cmember, req ConsumerHeartbeat, re *regexp.Regexp) bool {
	changed := false
	if req.SubscribedTopics != nil {
		ts := slices.Clone(req.SubscribedTopics)
		sort.Strings(ts)
		ts = slices.Compact(ts)
		if !slices.Equal(ts, m.topics) {
			m.topics = ts
			changed = true
		}
	}
	if req.SubscribedRegex != nil && *req.SubscribedRegex != m.regex {
		m.regex, m.re = *req.SubscribedRegex, re
		changed = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		changed = true
	}
	return changed
}

func (g *group) consumerLeave(req ConsumerHeartbeat, call *Call[ConsumerHeartbeatResult]) {
	cg := g.cg
	m := cg.members[req.MemberID]
	if m == nil {
		call.reply(ConsumerHeartbeatResult{Err: ErrUnknownMemberID, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
		return
	}
	if req.InstanceID != nil && *req.InstanceID != m.instanceID {
		call.reply(ConsumerHeartbeatResult{Err: ErrFencedInstanceID, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
		return
	}
	if req.MemberEpoch == -2 {
		// A static member leaving for now (a restart): its assignment
		// waits for it until its session ends.
		if m.epoch != -2 {
			m.prevEpoch, m.epoch = m.epoch, -2
		}
		g.consumerReplyLeft(m.id, -2, call)
		return
	}
	g.removeConsumerMember(m, "left the group")
	g.consumerReplyLeft(m.id, -1, call)
}

func (g *group) consumerReplyLeft(id string, epoch int32, call *Call[ConsumerHeartbeatResult]) {
	g.publish()
	g.persistConsumer(func(err error) {
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: id, MemberEpoch: epoch, HeartbeatInterval: g.c.cfg.ConsumerHeartbeatInterval})
	})
}

func (g *group) consumerRegular(req ConsumerHeartbeat, call *Call[ConsumerHeartbeatResult]) {
	fail := func(err error) {
		call.reply(ConsumerHeartbeatResult{Err: err, MemberID: req.MemberID, MemberEpoch: req.MemberEpoch})
	}
	cg := g.cg
	m := cg.members[req.MemberID]
	if m == nil {
		fail(fmt.Errorf("%w: member %s is not in group %s", ErrUnknownMemberID, req.MemberID, g.id))
		return
	}
	if req.InstanceID != nil && *req.InstanceID != m.instanceID {
		fail(ErrFencedInstanceID)
		return
	}
	if req.MemberEpoch != m.epoch {
		// A member one epoch behind whose answer was lost may go on if it
		// owns nothing it should not; anything else is fenced and rejoins.
		lost := req.MemberEpoch == m.prevEpoch && req.Owned != nil && m.owns(req.Owned)
		if !lost {
			fail(fmt.Errorf("%w: epoch %d, the member is at %d", ErrFencedMemberEpoch, req.MemberEpoch, m.epoch))
			return
		}
	}
	var re *regexp.Regexp
	if req.SubscribedRegex != nil && *req.SubscribedRegex != "" && *req.SubscribedRegex != m.regex {
		var err error
		if re, err = compileTopicRegex(*req.SubscribedRegex); err != nil {
			fail(err)
			return
		}
	}
	if req.ServerAssignor != nil && !validAssignor(*req.ServerAssignor) {
		fail(fmt.Errorf("%w: %q", ErrUnsupportedAssignor, *req.ServerAssignor))
		return
	}
	if req.RackID != nil {
		m.rackID = *req.RackID
	}
	if req.RebalanceTimeout > 0 {
		m.rebalanceTimeout = req.RebalanceTimeout
	}
	epochBefore, assignedBefore := m.epoch, len(m.assigned)
	revokingBefore := len(m.revoking)
	changed := g.updateSubscription(m, req, re)
	if changed {
		cg.epoch++
	}
	g.reconcileAll(changed)
	reassigned := g.reconcile(m, req.Owned)
	changed = changed || reassigned || m.epoch != epochBefore || len(m.revoking) != revokingBefore || len(m.assigned) != assignedBefore
	g.startConsumerSession(m)
	full := req.RebalanceTimeout >= 0 && (req.SubscribedTopics != nil || req.SubscribedRegex != nil) && req.Owned != nil
	disagree := req.Owned != nil && !sameTPs(req.Owned, m.assigned, m.revoking)
	g.consumerReply(m, call, changed, reassigned || full || disagree)
}

// owns reports whether every partition in tps is assigned to m or being
// released by it.
func (m *cmember) owns(tps []TopicPartition) bool {
	for _, tp := range tps {
		if !m.assigned[tp] && !m.revoking[tp] {
			return false
		}
	}
	return true
}

// sameTPs reports whether the partitions a member says it owns are exactly
// what the coordinator assigned it (those it releases may be there or not).
func sameTPs(owned []TopicPartition, assigned, revoking map[TopicPartition]bool) bool {
	n := 0
	for _, tp := range owned {
		switch {
		case assigned[tp]:
			n++
		case revoking[tp]:
		default:
			return false
		}
	}
	return n == len(assigned)
}

// reconcileAll refreshes the target assignment when the group epoch moved
// or the subscribed topics changed (a topic created, partitions added).
func (g *group) reconcileAll(epochMoved bool) {
	cg := g.cg
	subs, sig := g.resolveSubscriptions()
	if sig != cg.signature {
		if !epochMoved && cg.signature != "" {
			cg.epoch++
		}
		epochMoved = true
	}
	if !epochMoved && cg.targetEpoch == cg.epoch {
		return
	}
	cg.target = assign(g.groupAssignor(), g.sortedConsumerMembers(), subs, g.c.partitionCounts(), cg.target)
	cg.targetEpoch = cg.epoch
	cg.signature = sig
	g.publish()
}

// reconcile moves m toward its target (see the package comment for the
// steps). owned, when given, is what the member says it owns: partitions
// it was releasing and no longer owns are released. It reports whether
// the member's assignment changed.
func (g *group) reconcile(m *cmember, owned []TopicPartition) bool {
	cg := g.cg
	if owned != nil {
		have := make(map[TopicPartition]bool, len(owned))
		for _, tp := range owned {
			have[tp] = true
		}
		for tp := range m.revoking {
			if !have[tp] {
				g.release(m, tp)
			}
		}
	}
	if m.epoch == -2 {
		return false
	}
	target := cg.target[m.id]
	changed := false
	for tp := range m.assigned {
		if !target[tp] {
			delete(m.assigned, tp)
			m.revoking[tp] = true
			changed = true
		}
	}
	if len(m.revoking) > 0 {
		if m.revokeTimer == nil {
			id := m.id
			m.revokeTimer = g.after(m.rebalanceTimeout, func() {
				if cur := g.cg; cur != nil && cur.members[id] == m && len(m.revoking) > 0 {
					g.removeConsumerMember(m, "did not release its partitions within its rebalance timeout")
					g.publish()
					g.persistConsumer(func(error) {})
				}
			})
		}
		return changed
	}
	m.revokeTimer.stop()
	m.revokeTimer = nil
	if m.epoch != cg.targetEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.targetEpoch
	}
	for _, tp := range sortedTPs(target) {
		if !m.assigned[tp] && cg.owner[tp] == "" {
			m.assigned[tp] = true
			cg.owner[tp] = m.id
			changed = true
		}
	}
	return changed
}

func (g *group) release(m *cmember, tp TopicPartition) {
	delete(m.revoking, tp)
	if g.cg.owner[tp] == m.id {
		delete(g.cg.owner, tp)
	}
}

// removeConsumerMember takes m out of the group: its partitions are free
// and the group epoch moves.
func (g *group) removeConsumerMember(m *cmember, why string) {
	cg := g.cg
	g.c.log.Info("consumer group member removed", "group", g.id, "member", m.id, "why", why)
	m.session.stop()
	m.revokeTimer.stop()
	for tp, o := range cg.owner {
		if o == m.id {
			delete(cg.owner, tp)
		}
	}
	delete(cg.members, m.id)
	delete(cg.target, m.id)
	if m.instanceID != "" && cg.instances[m.instanceID] == m.id {
		delete(cg.instances, m.instanceID)
	}
	cg.epoch++
	g.reconcileAll(true)
	if len(cg.members) == 0 {
		g.since = g.c.clock.Now()
	}
}

func (g *group) startConsumerSession(m *cmember) {
	m.session.stop()
	m.session = g.after(g.c.cfg.ConsumerSessionTimeout, func() {
		if g.cg == nil || g.cg.members[m.id] != m {
			return
		}
		g.removeConsumerMember(m, "session timed out")
		g.publish()
		g.persistConsumer(func(error) {})
	})
}

// groupAssignor is the assignor the members asked for (when they differ,
// the choice of the last by member id), uniform by default.
func (g *group) groupAssignor() string {
	a := ""
	for _, m := range g.sortedConsumerMembers() {
		if m.assignor != "" {
			a = m.assignor
		}
	}
	if a == "" {
		a = assignorUniform
	}
	g.cg.assignor = a
	return a
}

func (g *group) sortedConsumerMembers() []*cmember {
	out := make([]*cmember, 0, len(g.cg.members))
	for _, m := range g.cg.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].id < out[j].id })
	return out
}

// resolveSubscriptions returns each member's subscribed topics that exist
// (names and regex matches), and a signature of them with their partition
// counts.
func (g *group) resolveSubscriptions() (map[string][]string, string) {
	counts := g.c.partitionCounts()
	names := make([]string, 0, len(counts))
	for t := range counts {
		names = append(names, t)
	}
	sort.Strings(names)
	subs := map[string][]string{}
	// The signature lists every member's resolved subscription with the
	// partition counts, sorted, without member ids: a static member
	// coming back under a new id changes nothing.
	var parts []string
	for _, m := range g.sortedConsumerMembers() {
		var ts []string
		for _, t := range m.topics {
			if _, ok := counts[t]; ok {
				ts = append(ts, t)
			}
		}
		if m.re != nil {
			for _, t := range names {
				if m.re.MatchString(t) && !slices.Contains(m.topics, t) {
					ts = append(ts, t)
				}
			}
		}
		sort.Strings(ts)
		subs[m.id] = ts
		var sig strings.Builder
		for _, t := range ts {
			fmt.Fprintf(&sig, "%s/%d,", t, counts[t])
		}
		parts = append(parts, sig.String())
	}
	sort.Strings(parts)
	return subs, strings.Join(parts, ";")
}

// partitionCounts returns the topics members may subscribe to.
func (c *Coordinator) partitionCounts() map[string]int32 {
	if c.cfg.Topics == nil {
		return map[string]int32{}
	}
	return c.cfg.Topics()
}

// compileTopicRegex compiles a subscription regex (RE2 syntax, as Kafka's
// RE2/J), which must match a whole topic name.
func compileTopicRegex(s string) (*regexp.Regexp, error) {
	re, err := regexp.Compile("^(?:" + s + ")$")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidRegularExpression, err)
	}
	return re, nil
}

func sortedTPs(set map[TopicPartition]bool) []TopicPartition {
	out := make([]TopicPartition, 0, len(set))
	for tp := range set {
		out = append(out, tp)
	}
	sortTPs(out)
	return out
}
