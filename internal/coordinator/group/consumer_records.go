package group

// How a KIP-848 group is stored in the offsets log, restored at start, and
// described (ConsumerGroupDescribe, and DescribeGroups in the classic shape).

import (
	"slices"
	"time"
)

// consumerRecordOf is the group as stored.
func (g *group) consumerRecordOf() consumerRecord {
	cg := g.cg
	rec := consumerRecord{Epoch: cg.epoch, TargetEpoch: cg.targetEpoch, Assignor: cg.assignor, StateTime: g.since.UnixMilli()}
	for _, m := range g.sortedConsumerMembers() {
		rec.Members = append(rec.Members, consumerMemberRecord{
			MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, ClientID: m.clientID, ClientHost: m.host,
			Epoch: m.epoch, PrevEpoch: m.prevEpoch, RebalanceTimeout: m.rebalanceTimeout,
			Assignor: m.assignor, Regex: m.regex, Topics: m.topics,
			Assigned: sortedTPs(m.assigned), Revoking: sortedTPs(m.revoking),
		})
	}
	return rec
}

// persistConsumer appends the group's state; then runs once durable.
func (g *group) persistConsumer(then func(error)) {
	g.persist([]kv{{key: groupKey(g.id), value: encodeConsumerGroup(g.consumerRecordOf())}}, then)
}

// restoreConsumer rebuilds a KIP-848 group at start: members carry on in
// their epochs with fresh sessions.
func (g *group) restoreConsumer(rec *consumerRecord) {
	cg := newConsumerGroup()
	g.cg = cg
	g.protocolType = "consumer"
	cg.epoch, cg.targetEpoch, cg.assignor = rec.Epoch, rec.TargetEpoch, rec.Assignor
	if rec.StateTime > 0 {
		g.since = time.UnixMilli(rec.StateTime)
	}
	for _, mr := range rec.Members {
		m := &cmember{
			id: mr.MemberID, instanceID: mr.InstanceID, rackID: mr.RackID, clientID: mr.ClientID, host: mr.ClientHost,
			epoch: mr.Epoch, prevEpoch: mr.PrevEpoch, rebalanceTimeout: mr.RebalanceTimeout,
			assignor: mr.Assignor, regex: mr.Regex, topics: mr.Topics,
			assigned: map[TopicPartition]bool{}, revoking: map[TopicPartition]bool{},
		}
		if m.regex != "" {
			m.re, _ = compileTopicRegex(m.regex)
		}
		for _, tp := range mr.Assigned {
			m.assigned[tp] = true
			cg.owner[tp] = m.id
		}
		for _, tp := range mr.Revoking {
			m.revoking[tp] = true
			cg.owner[tp] = m.id
		}
		cg.members[m.id] = m
		if m.instanceID != "" {
			cg.instances[m.instanceID] = m.id
		}
		g.startConsumerSession(m)
	}
	// The target is derived state: computed again from the members'
	// subscriptions and the topics as they are now.
	subs, sig := g.resolveSubscriptions()
	cg.target = map[string]map[TopicPartition]bool{}
	for _, m := range cg.members {
		cg.target[m.id] = map[TopicPartition]bool{}
		for tp := range m.assigned {
			cg.target[m.id][tp] = true
		}
	}
	cg.target = assign(g.groupAssignor(), g.sortedConsumerMembers(), subs, g.c.partitionCounts(), cg.target)
	cg.signature = sig
	if len(cg.members) > 0 {
		g.state = Stable
	} else {
		g.state = Empty
	}
	g.publish()
}

// consumerDescription is ConsumerGroupDescribe's view of the group.
func (g *group) consumerDescription() ConsumerDescription {
	cg := g.cg
	d := ConsumerDescription{Group: g.id, State: g.consumerState(), Epoch: cg.epoch, AssignmentEpoch: cg.targetEpoch, Assignor: g.groupAssignor()}
	for _, m := range g.sortedConsumerMembers() {
		d.Members = append(d.Members, ConsumerMemberDescription{
			MemberID: m.id, InstanceID: m.instanceID, RackID: m.rackID, MemberEpoch: m.epoch,
			ClientID: m.clientID, ClientHost: m.host, SubscribedTopics: slices.Clone(m.topics), SubscribedRegex: m.regex,
			Assignment: sortedTPs(m.assigned), TargetAssignment: sortedTPs(cg.target[m.id]),
		})
	}
	return d
}

// describeConsumer is DescribeGroups' (classic) view of a KIP-848 group:
// members' subscriptions and assignments in the consumer protocol's
// encoding, so that tools written for classic groups (lag, offsets)
// work on both.
func (g *group) describeConsumer() Description {
	d := Description{Group: g.id, State: g.consumerState(), ProtocolType: "consumer", Protocol: g.groupAssignor()}
	for _, m := range g.sortedConsumerMembers() {
		d.Members = append(d.Members, MemberDescription{
			MemberID: m.id, InstanceID: m.instanceID, ClientID: m.clientID, ClientHost: m.host,
			Metadata: consumerSubscription(m.topics), Assignment: consumerAssignment(sortedTPs(m.assigned)),
		})
	}
	return d
}

// consumerSubscription encodes a ConsumerProtocolSubscription v0.
func consumerSubscription(topics []string) []byte {
	b := []byte{0, 0}
	b = appendCount(b, len(topics))
	for _, t := range topics {
		b = appendStr(b, t)
	}
	return appendCount(b, -1) // null user data
}

// consumerAssignment encodes a ConsumerProtocolAssignment v0.
func consumerAssignment(tps []TopicPartition) []byte {
	b := []byte{0, 0}
	var topics []string
	by := map[string][]int32{}
	for _, tp := range tps {
		if by[tp.Topic] == nil {
			topics = append(topics, tp.Topic)
		}
		by[tp.Topic] = append(by[tp.Topic], tp.Partition)
	}
	b = appendCount(b, len(topics))
	for _, t := range topics {
		b = appendStr(b, t)
		b = appendCount(b, len(by[t]))
		for _, p := range by[t] {
			b = appendCount(b, int(p))
		}
	}
	return appendCount(b, -1)
}

func appendCount(b []byte, n int) []byte {
	v := uint32(int32(n))
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
