package group

import (
	"slices"
	"sort"
)

// The server-side assignors of KIP-848 groups: given the members, what
// each subscribes to and the partition counts, compute the target
// assignment (prev, the current one, is what the assignors may keep).

// The server assignors (ConsumerGroupHeartbeat's ServerAssignor).
const (
	assignorUniform = "uniform"
	assignorRange   = "range"
)

func validAssignor(a string) bool { return a == assignorUniform || a == assignorRange }

// assign computes a target assignment: member id -> partitions.
func assign(assignor string, members []*cmember, subs map[string][]string, counts map[string]int32, prev map[string]map[TopicPartition]bool) map[string]map[TopicPartition]bool {
	out := make(map[string]map[TopicPartition]bool, len(members))
	for _, m := range members {
		out[m.id] = map[TopicPartition]bool{}
	}
	// subscribers per topic, in member id order.
	byTopic := map[string][]string{}
	var topics []string
	for _, m := range members {
		for _, t := range subs[m.id] {
			if byTopic[t] == nil {
				topics = append(topics, t)
			}
			byTopic[t] = append(byTopic[t], m.id)
		}
	}
	sort.Strings(topics)
	if assignor == assignorRange {
		// Each topic's partitions in contiguous ranges over its
		// subscribers, the first ones taking one more when it does not
		// divide evenly (co-partitioned topics line up).
		for _, t := range topics {
			ms := byTopic[t]
			n := int(counts[t])
			per, extra := n/len(ms), n%len(ms)
			p := 0
			for i, id := range ms {
				k := per
				if i < extra {
					k++
				}
				for j := 0; j < k; j++ {
					out[id][TopicPartition{t, int32(p)}] = true
					p++
				}
			}
		}
		return out
	}
	// uniform: as even as the subscriptions allow (with everyone
	// subscribed to the same topics, loads differ by at most one),
	// keeping partitions where they were:
	//  1. each member keeps up to the even share (n/m) of what it had;
	//  2. the n%m members allowed one more keep one more, if they had it;
	//  3. the rest go, one by one, to the least loaded subscriber below its
	//     quota (or, with uneven subscriptions, the least loaded one).
	var all []TopicPartition
	for _, t := range topics {
		for p := int32(0); p < counts[t]; p++ {
			all = append(all, TopicPartition{t, p})
		}
	}
	active := 0
	for _, m := range members {
		if len(subs[m.id]) > 0 {
			active++
		}
	}
	if active == 0 {
		return out
	}
	base, extra := len(all)/active, len(all)%active
	taken := map[TopicPartition]bool{}
	subscribed := func(id, t string) bool { return slices.Contains(byTopic[t], id) }
	quota := map[string]int{}
	for _, m := range members {
		quota[m.id] = base
	}
	keep := func(limit func(id string) int) {
		for _, m := range members {
			for _, tp := range sortedTPs(prev[m.id]) {
				if len(out[m.id]) >= limit(m.id) {
					break
				}
				if !taken[tp] && tp.Partition < counts[tp.Topic] && subscribed(m.id, tp.Topic) {
					out[m.id][tp] = true
					taken[tp] = true
				}
			}
		}
	}
	keep(func(id string) int { return base })
	for _, m := range members {
		if extra == 0 {
			break
		}
		if len(out[m.id]) == base && len(subs[m.id]) > 0 {
			// One more, if it had one more to keep.
			before := len(out[m.id])
			for _, tp := range sortedTPs(prev[m.id]) {
				if !taken[tp] && tp.Partition < counts[tp.Topic] && subscribed(m.id, tp.Topic) {
					out[m.id][tp] = true
					taken[tp] = true
					break
				}
			}
			if len(out[m.id]) > before {
				quota[m.id] = base + 1
				extra--
			}
		}
	}
	for _, tp := range all {
		if taken[tp] {
			continue
		}
		best, bestUnder := "", false
		for _, id := range byTopic[tp.Topic] {
			n := len(out[id])
			under := n < quota[id] || (n == quota[id] && extra > 0)
			switch {
			case best == "":
				best, bestUnder = id, under
			case under && !bestUnder:
				best, bestUnder = id, under
			case under == bestUnder && n < len(out[best]):
				best = id
			}
		}
		if len(out[best]) == quota[best] && extra > 0 && bestUnder {
			quota[best]++
			extra--
		}
		out[best][tp] = true
		taken[tp] = true
	}
	return out
}
