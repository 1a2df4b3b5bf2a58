package group

import (
	"bytes"
	"fmt"
	"sort"
	"time"
)

// The classic group protocol: JoinGroup, SyncGroup, Heartbeat, LeaveGroup
// and DescribeGroups for groups of the "consumer" (or any other) protocol
// type, with the rebalance barrier of the state machine in doc.go.

// classicGroup is the classic protocol's state of a group, embedded in
// group and owned by its actor like the rest.
type classicGroup struct {
	protocolType string // "" for a group that only commits offsets
	protocol     string // chosen at each generation; "" when Empty
	generation   int32
	leader       string
	members      map[string]*member
	// pending holds member ids handed out with ErrMemberIDRequired, until
	// the member joins with it or its session timeout passes.
	pending   map[string]*gtimer
	instances map[string]string // static members: instance id -> member id
	joinSeq   uint64

	// The rebalance in progress (PreparingRebalance): the timer that ends
	// it, and the initial delay's bookkeeping.
	joinTimer      *gtimer
	inInitialDelay bool
	newMemberAdded bool
	delayRemaining time.Duration
	// After the join phase: members that have not sent SyncGroup yet, and
	// the timer that removes them (one rebalance timeout).
	pendingSync map[string]bool
	syncTimer   *gtimer
}

type member struct {
	id, instanceID   string
	clientID, host   string
	protocolType     string
	protocols        []Protocol
	sessionTimeout   time.Duration
	rebalanceTimeout time.Duration
	assignment       []byte
	seq              uint64 // join order: leader election, member order
	joinCall         *Call[JoinResult]
	syncCall         *Call[SyncResult]
	session          *gtimer
}

func (m *member) awaitingJoin() bool { return m.joinCall != nil }

// metadata returns the member's metadata for protocol.
func (m *member) metadata(protocol string) []byte {
	for _, p := range m.protocols {
		if p.Name == protocol {
			return p.Metadata
		}
	}
	return nil
}

// matches reports whether a rejoin brings exactly the member's protocols.
func (m *member) matches(ps []Protocol) bool {
	if len(ps) != len(m.protocols) {
		return false
	}
	for i, p := range ps {
		if p.Name != m.protocols[i].Name || !bytes.Equal(p.Metadata, m.protocols[i].Metadata) {
			return false
		}
	}
	return true
}

// sortedMembers returns the members in join order.
func (g *group) sortedMembers() []*member {
	out := make([]*member, 0, len(g.members))
	for _, m := range g.members {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].seq < out[j].seq })
	return out
}

// ---- sessions ----

// startSession (re)starts a member's session timeout.
func (g *group) startSession(m *member) {
	m.session.stop()
	m.session = g.after(m.sessionTimeout, func() {
		if g.members[m.id] != m || m.awaitingJoin() || m.syncCall != nil {
			return
		}
		g.c.log.Info("member session expired", "group", g.id, "member", m.id, "timeout", m.sessionTimeout)
		g.removeMemberAndUpdate(m)
	})
}

// ---- JoinGroup ----

func (g *group) join(req JoinRequest, call *Call[JoinResult]) {
	fail := func(err error) { call.reply(JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}) }
	if g.c.isStopping() {
		fail(ErrNotCoordinator)
		return
	}
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			fail(fmt.Errorf("%w: %s is a consumer group (KIP-848) with members", ErrInconsistentProtocol, g.id))
			return
		}
		// An empty KIP-848 group becomes a classic one; generations go on
		// from its epoch.
		g.generation = g.cg.epoch
		g.cg = nil
		g.protocolType = ""
		g.publish()
	}
	if !g.supportsProtocols(req.ProtocolType, req.Protocols) {
		fail(ErrInconsistentProtocol)
		return
	}
	if req.MemberID == "" {
		g.joinNew(req, call)
	} else {
		g.joinExisting(req, call)
	}
}

// supportsProtocols is Kafka's check that a joining member can be in the
// group: the same protocol type, and a protocol every member supports.
func (g *group) supportsProtocols(ptype string, ps []Protocol) bool {
	if len(g.members) == 0 {
		return ptype != "" && len(ps) > 0
	}
	if ptype != g.protocolType {
		return false
	}
	for _, p := range ps {
		n := 0
		for _, m := range g.members {
			if hasProtocol(m.protocols, p.Name) {
				n++
			}
		}
		if n == len(g.members) {
			return true
		}
	}
	return false
}

func hasProtocol(ps []Protocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (g *group) joinNew(req JoinRequest, call *Call[JoinResult]) {
	if req.InstanceID != "" {
		if old, ok := g.instances[req.InstanceID]; ok {
			g.replaceStatic(g.members[old], req, call)
			return
		}
		g.addMemberAndRebalance(g.c.cfg.NewMemberID(req.InstanceID), req, call)
		return
	}
	id := g.c.cfg.NewMemberID(req.ClientID)
	if req.RequireKnownMemberID {
		// KIP-394: the member must come back with this id; until then it
		// is pending, and holds up a rebalance in progress.
		g.pending[id] = g.after(req.SessionTimeout, func() {
			if _, ok := g.pending[id]; ok {
				delete(g.pending, id)
				g.maybeCompleteJoin()
			}
		})
		call.reply(JoinResult{Err: ErrMemberIDRequired, MemberID: id, Generation: -1})
		return
	}
	g.addMemberAndRebalance(id, req, call)
}

func (g *group) joinExisting(req JoinRequest, call *Call[JoinResult]) {
	fail := func(err error) { call.reply(JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}) }
	if t, ok := g.pending[req.MemberID]; ok {
		t.stop()
		delete(g.pending, req.MemberID)
		g.addMemberAndRebalance(req.MemberID, req, call)
		return
	}
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		fail(err)
		return
	}
	switch g.state {
	case PreparingRebalance:
		g.updateMemberAndRebalance(m, req, call)
	case CompletingRebalance:
		if m.matches(req.Protocols) {
			// A retry of a join whose answer was lost: the same answer.
			m.joinCall = nil
			call.reply(g.joinResult(m))
			return
		}
		g.updateMemberAndRebalance(m, req, call)
	case Stable:
		if m.id == g.leader || !m.matches(req.Protocols) {
			// The leader rejoins to make the group rebalance (say, its
			// metadata changed); so does a member whose subscription did.
			g.updateMemberAndRebalance(m, req, call)
			return
		}
		g.startSession(m)
		call.reply(g.joinResult(m))
	default:
		fail(ErrUnknownMemberID)
	}
}

// validateMember checks a member id and, for a static member, that its
// instance id still belongs to it.
func (g *group) validateMember(memberID, instanceID string) (*member, error) {
	if instanceID != "" {
		cur, ok := g.instances[instanceID]
		if !ok {
			return nil, ErrUnknownMemberID
		}
		if cur != memberID {
			return nil, ErrFencedInstanceID
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, ErrUnknownMemberID
	}
	return m, nil
}

func (g *group) addMemberAndRebalance(id string, req JoinRequest, call *Call[JoinResult]) {
	g.joinSeq++
	m := &member{
		id: id, instanceID: req.InstanceID, clientID: req.ClientID, host: req.ClientHost,
		protocolType: req.ProtocolType, protocols: req.Protocols,
		sessionTimeout: req.SessionTimeout, rebalanceTimeout: req.RebalanceTimeout,
		seq: g.joinSeq,
	}
	if len(g.members) == 0 {
		g.protocolType = req.ProtocolType
		g.publish()
	}
	g.members[id] = m
	if m.instanceID != "" {
		g.instances[m.instanceID] = id
	}
	if g.leader == "" {
		g.leader = id
	}
	if g.inInitialDelay {
		g.newMemberAdded = true
	}
	m.joinCall = call
	g.c.log.Debug("member joined", "group", g.id, "member", id, "instance", req.InstanceID, "reason", req.Reason)
	g.maybePrepareRebalance()
}

func (g *group) updateMemberAndRebalance(m *member, req JoinRequest, call *Call[JoinResult]) {
	m.protocols = req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.host = req.ClientID, req.ClientHost
	if m.joinCall != nil && m.joinCall != call {
		// A second join while the first still waits: the first is
		// superseded.
		m.joinCall.reply(JoinResult{Err: ErrRebalanceInProgress, MemberID: m.id, Generation: -1})
	}
	m.joinCall = call
	m.session.stop()
	g.maybePrepareRebalance()
}

// replaceStatic handles a known static member joining with no member id (a
// restarted instance): it gets a new member id, the old one is fenced, and
// the group rebalances only if it must (KIP-345).
func (g *group) replaceStatic(old *member, req JoinRequest, call *Call[JoinResult]) {
	newID := g.c.cfg.NewMemberID(req.InstanceID)
	oldID := old.id
	if old.joinCall != nil {
		old.joinCall.reply(JoinResult{Err: ErrFencedInstanceID, MemberID: old.id, Generation: -1})
		old.joinCall = nil
	}
	if old.syncCall != nil {
		old.syncCall.reply(SyncResult{Err: ErrFencedInstanceID})
		old.syncCall = nil
	}
	old.session.stop()
	delete(g.members, oldID)
	if g.pendingSync[oldID] {
		delete(g.pendingSync, oldID)
		g.pendingSync[newID] = true
	}
	m := old // the same member, under its new id
	m.id = newID
	g.members[newID] = m
	g.instances[req.InstanceID] = newID
	oldLeader := g.leader
	if g.leader == oldID {
		g.leader = newID
	}
	oldProtocols := m.protocols
	m.protocols = req.Protocols
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.clientID, m.host = req.ClientID, req.ClientHost

	switch g.state {
	case Stable:
		if g.selectProtocol() == g.protocol {
			// Nothing the assignment depends on changed: persist the new
			// member id and answer with the current generation. A leader
			// that cannot be told to skip the assignment (before v9) is
			// given the old leader id, so that it does not take itself for
			// the leader and reassign (KIP-345).
			g.persist([]kv{g.groupRecordKV()}, func(err error) {
				if err != nil {
					// Roll back: the old member id stays valid.
					if g.members[newID] == m {
						delete(g.members, newID)
						m.id = oldID
						m.protocols = oldProtocols
						g.members[oldID] = m
						g.instances[req.InstanceID] = oldID
						if g.leader == newID {
							g.leader = oldID
						}
					}
					call.reply(JoinResult{Err: err, MemberID: "", Generation: -1})
					return
				}
				g.startSession(m)
				res := g.joinResult(m)
				if m.id == g.leader && req.SupportsSkipAssignment {
					// KIP-814: the leader learns it leads, and that the
					// current assignment stands.
					res.SkipAssignment = true
				} else {
					res.Leader = oldLeader
					res.Members = nil
				}
				call.reply(res)
			})
			return
		}
		m.joinCall = call
		g.maybePrepareRebalance()
	case CompletingRebalance:
		// The old instance may have been sent an assignment the new one
		// does not know: rebalance.
		m.joinCall = call
		g.maybePrepareRebalance()
	case PreparingRebalance:
		m.joinCall = call
		g.maybeCompleteJoin()
	default:
		m.joinCall = call
		g.maybePrepareRebalance()
	}
}

// joinResult is the answer for m in the current generation.
func (g *group) joinResult(m *member) JoinResult {
	res := JoinResult{
		MemberID: m.id, Generation: g.generation, ProtocolType: g.protocolType,
		Protocol: g.protocol, Leader: g.leader,
	}
	if m.id == g.leader {
		for _, o := range g.sortedMembers() {
			res.Members = append(res.Members, JoinMember{MemberID: o.id, InstanceID: o.instanceID, Metadata: o.metadata(g.protocol)})
		}
	}
	return res
}

// maxRebalanceTimeout is how long a rebalance waits for members: the
// largest of their rebalance timeouts.
func (g *group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybePrepareRebalance starts a rebalance unless one is in progress, and
// completes it if every member is already in.
func (g *group) maybePrepareRebalance() {
	switch g.state {
	case Stable, CompletingRebalance, Empty:
		g.prepareRebalance()
	}
	g.maybeCompleteJoin()
}

func (g *group) prepareRebalance() {
	if g.state == CompletingRebalance {
		// Whatever the leader assigns for this generation is void.
		for _, m := range g.members {
			if m.syncCall != nil {
				m.syncCall.reply(SyncResult{Err: ErrRebalanceInProgress})
				m.syncCall = nil
				g.startSession(m)
			}
		}
	}
	g.syncTimer.stop()
	g.pendingSync = nil
	g.joinTimer.stop()
	initial := g.state == Empty
	g.transition(PreparingRebalance)
	if d := g.c.cfg.InitialRebalanceDelay; initial && d > 0 {
		// group.initial.rebalance.delay.ms: wait for more members of a new
		// group, in steps of the delay while members keep arriving, up to
		// the rebalance timeout.
		g.inInitialDelay = true
		g.newMemberAdded = false
		g.delayRemaining = max(g.maxRebalanceTimeout()-d, 0)
		g.joinTimer = g.after(d, g.initialDelayExpired)
		return
	}
	g.joinTimer = g.after(g.maxRebalanceTimeout(), g.completeJoin)
}

func (g *group) initialDelayExpired() {
	if g.newMemberAdded && g.delayRemaining > 0 {
		d := min(g.c.cfg.InitialRebalanceDelay, g.delayRemaining)
		g.delayRemaining = max(g.delayRemaining-d, 0)
		g.newMemberAdded = false
		g.joinTimer = g.after(d, g.initialDelayExpired)
		return
	}
	g.completeJoin()
}

// maybeCompleteJoin completes the join phase once every member has
// (re)joined and no new member is still to come back with its id.
func (g *group) maybeCompleteJoin() {
	if g.state != PreparingRebalance || g.inInitialDelay || len(g.pending) > 0 {
		return
	}
	for _, m := range g.members {
		if !m.awaitingJoin() {
			return
		}
	}
	g.completeJoin()
}

// completeJoin ends the join phase: members that did not rejoin are
// dropped (static ones stay until their session ends), a new generation
// starts, and every waiting member gets its answer — the leader with the
// members' metadata to assign from.
func (g *group) completeJoin() {
	if g.state != PreparingRebalance {
		return
	}
	g.joinTimer.stop()
	g.inInitialDelay = false
	for _, m := range g.sortedMembers() {
		if !m.awaitingJoin() && m.instanceID == "" {
			g.c.log.Info("member did not rejoin in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	joined := 0
	for _, m := range g.members {
		if m.awaitingJoin() {
			joined++
		}
	}
	if len(g.members) > 0 && joined == 0 {
		// Only static members that have not rejoined: wait for them (their
		// sessions end it otherwise).
		g.joinTimer = g.after(g.maxRebalanceTimeout(), g.completeJoin)
		return
	}
	if m, ok := g.members[g.leader]; !ok || !m.awaitingJoin() {
		g.leader = ""
		for _, m := range g.sortedMembers() {
			if m.awaitingJoin() {
				g.leader = m.id
				break
			}
		}
	}
	g.generation++
	if len(g.members) == 0 {
		g.protocol = ""
		g.leader = ""
		g.transition(Empty)
		g.persist([]kv{g.groupRecordKV()}, func(error) {})
		return
	}
	g.protocol = g.selectProtocol()
	g.transition(CompletingRebalance)
	g.pendingSync = map[string]bool{}
	for _, m := range g.sortedMembers() {
		g.pendingSync[m.id] = true
		if !m.awaitingJoin() {
			continue
		}
		call := m.joinCall
		m.joinCall = nil
		g.startSession(m)
		call.reply(g.joinResult(m))
	}
	gen := g.generation
	g.syncTimer = g.after(g.maxRebalanceTimeout(), func() { g.syncExpired(gen) })
}

// syncExpired removes members that never sent SyncGroup for generation
// gen, and rebalances without them.
func (g *group) syncExpired(gen int32) {
	if g.generation != gen || (g.state != CompletingRebalance && g.state != Stable) || len(g.pendingSync) == 0 {
		return
	}
	for _, m := range g.sortedMembers() {
		if g.pendingSync[m.id] {
			g.c.log.Info("member did not sync in time", "group", g.id, "member", m.id)
			g.removeMember(m)
		}
	}
	g.prepareRebalance()
	g.maybeCompleteJoin()
}

// selectProtocol picks the protocol for the next generation: among those
// every member supports, the one most members prefer (ties: the earlier
// in the longest-standing member's order).
func (g *group) selectProtocol() string {
	ms := g.sortedMembers()
	if len(ms) == 0 {
		return ""
	}
	var candidates []string
	for _, p := range ms[0].protocols {
		all := true
		for _, m := range ms[1:] {
			if !hasProtocol(m.protocols, p.Name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if hasName(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, c := range candidates {
		if votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

func hasName(names []string, n string) bool {
	for _, x := range names {
		if x == n {
			return true
		}
	}
	return false
}

// ---- SyncGroup ----

func (g *group) sync(req SyncRequest, call *Call[SyncResult]) {
	fail := func(err error) { call.reply(SyncResult{Err: err}) }
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		fail(err)
		return
	}
	if req.Generation != g.generation {
		fail(ErrIllegalGeneration)
		return
	}
	if (req.ProtocolType != "" && req.ProtocolType != g.protocolType) || (req.Protocol != "" && req.Protocol != g.protocol) {
		fail(ErrInconsistentProtocol)
		return
	}
	switch g.state {
	case PreparingRebalance:
		fail(ErrRebalanceInProgress)
	case CompletingRebalance:
		if g.c.isStopping() {
			fail(ErrNotCoordinator)
			return
		}
		if m.syncCall != nil && m.syncCall != call {
			m.syncCall.reply(SyncResult{Err: ErrRebalanceInProgress})
		}
		m.syncCall = call
		m.session.stop()
		delete(g.pendingSync, m.id)
		if m.id == g.leader {
			g.completeSync(req.Assignments)
		}
	case Stable:
		delete(g.pendingSync, m.id)
		g.startSession(m)
		call.reply(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
	default:
		fail(ErrUnknownMemberID)
	}
}

// completeSync persists the leader's assignment with the group, then
// makes the group Stable and answers every member waiting in SyncGroup.
func (g *group) completeSync(assignments map[string][]byte) {
	gen := g.generation
	rec := g.groupRecord(assignments)
	g.persist([]kv{{key: groupKey(g.id), value: encodeGroup(rec)}}, func(err error) {
		if g.state != CompletingRebalance || g.generation != gen {
			return // a rebalance started meanwhile and answered everyone
		}
		if err != nil {
			for _, m := range g.members {
				if m.syncCall != nil {
					m.syncCall.reply(SyncResult{Err: err})
					m.syncCall = nil
					g.startSession(m)
				}
			}
			g.prepareRebalance()
			g.maybeCompleteJoin()
			return
		}
		for _, m := range g.members {
			m.assignment = assignments[m.id]
			if m.assignment == nil {
				m.assignment = []byte{}
			}
		}
		g.transition(Stable)
		for _, m := range g.sortedMembers() {
			if m.syncCall == nil {
				continue
			}
			call := m.syncCall
			m.syncCall = nil
			g.startSession(m)
			call.reply(SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment})
		}
	})
}

// ---- Heartbeat ----

func (g *group) heartbeat(req HeartbeatRequest) error {
	m, err := g.validateMember(req.MemberID, req.InstanceID)
	if err != nil {
		return err
	}
	if req.Generation != g.generation {
		return ErrIllegalGeneration
	}
	switch g.state {
	case PreparingRebalance:
		if !m.awaitingJoin() {
			g.startSession(m)
		}
		return ErrRebalanceInProgress
	case CompletingRebalance, Stable:
		if m.syncCall == nil {
			g.startSession(m)
		}
		return nil
	default:
		return ErrUnknownMemberID
	}
}

// ---- LeaveGroup ----

func (g *group) leave(members []LeaveMember) LeaveResult {
	errs := make([]error, len(members))
	for i, lm := range members {
		if lm.MemberID == "" && lm.InstanceID == "" {
			errs[i] = ErrUnknownMemberID
			continue
		}
		if t, ok := g.pending[lm.MemberID]; ok && lm.MemberID != "" {
			t.stop()
			delete(g.pending, lm.MemberID)
			g.maybeCompleteJoin()
			continue
		}
		id := lm.MemberID
		if id == "" {
			id = g.instances[lm.InstanceID]
		}
		m, err := g.validateMember(id, lm.InstanceID)
		if err != nil {
			errs[i] = err
			continue
		}
		g.c.log.Debug("member left", "group", g.id, "member", m.id, "reason", lm.Reason)
		g.removeMemberAndUpdate(m)
	}
	return LeaveResult{Members: errs}
}

// removeMember takes m out of the group, answering whatever it waits on.
func (g *group) removeMember(m *member) {
	if m.joinCall != nil {
		m.joinCall.reply(JoinResult{Err: ErrUnknownMemberID, MemberID: m.id, Generation: -1})
		m.joinCall = nil
	}
	if m.syncCall != nil {
		m.syncCall.reply(SyncResult{Err: ErrUnknownMemberID})
		m.syncCall = nil
	}
	m.session.stop()
	delete(g.members, m.id)
	delete(g.pendingSync, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if ms := g.sortedMembers(); len(ms) > 0 {
			g.leader = ms[0].id
		}
	}
}

// removeMemberAndUpdate removes m and rebalances the rest.
func (g *group) removeMemberAndUpdate(m *member) {
	g.removeMember(m)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance()
		g.maybeCompleteJoin()
	case PreparingRebalance:
		g.maybeCompleteJoin()
	}
}

func (g *group) describeClassic() Description {
	d := Description{Group: g.id, State: g.state.String(), ProtocolType: g.protocolType}
	stable := g.state == Stable
	if stable {
		d.Protocol = g.protocol
	}
	for _, m := range g.sortedMembers() {
		md := MemberDescription{MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.host}
		if stable {
			md.Metadata = m.metadata(g.protocol)
			md.Assignment = m.assignment
		}
		d.Members = append(d.Members, md)
	}
	return d
}

// groupRecord is the group's metadata as stored, with the given
// assignments (nil: the members' current ones).
func (g *group) groupRecord(assignments map[string][]byte) groupRecord {
	rec := groupRecord{
		ProtocolType: g.protocolType, Generation: g.generation, Protocol: g.protocol,
		Leader: g.leader, StateTime: g.since.UnixMilli(),
	}
	for _, m := range g.sortedMembers() {
		a := m.assignment
		if assignments != nil {
			a = assignments[m.id]
		}
		rec.Members = append(rec.Members, memberRecord{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.host,
			RebalanceTimeout: m.rebalanceTimeout, SessionTimeout: m.sessionTimeout,
			Metadata: m.metadata(g.protocol), Assignment: a,
		})
	}
	return rec
}

func (g *group) groupRecordKV() kv {
	return kv{key: groupKey(g.id), value: encodeGroup(g.groupRecord(nil))}
}

// releaseWaiters answers every pending JoinGroup and SyncGroup with
// ErrNotCoordinator (the broker is shutting down).
func (g *group) releaseWaiters() {
	for _, m := range g.members {
		if m.joinCall != nil {
			m.joinCall.reply(JoinResult{Err: ErrNotCoordinator, MemberID: m.id, Generation: -1})
		}
		if m.syncCall != nil {
			m.syncCall.reply(SyncResult{Err: ErrNotCoordinator})
		}
	}
}
