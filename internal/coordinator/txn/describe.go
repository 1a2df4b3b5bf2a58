package txn

import (
	"slices"
	"sort"
)

// Description is one transactional id as DescribeTransactions and
// ListTransactions show it.
type Description struct {
	ID         string
	State      State
	ProducerID int64
	Epoch      int16
	TimeoutMs  int32
	StartMs    int64 // -1 when no transaction is ongoing
	Partitions []TopicPartition
	Groups     []string
}

func describe(t *txn) Description {
	r := t.cur
	return Description{
		ID: t.id, State: r.State, ProducerID: r.ProducerID, Epoch: r.Epoch, TimeoutMs: r.TimeoutMs,
		StartMs: r.StartMs, Partitions: slices.Clone(r.Partitions), Groups: slices.Clone(r.Groups),
	}
}

// Describe returns the id's state; false when it is unknown.
func (c *Coordinator) Describe(id string) (Description, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.txns[id]
	if t == nil || t.cur.ProducerID < 0 {
		return Description{}, false
	}
	return describe(t), true
}

// List returns every transactional id whose state is one of states and
// whose producer id is one of pids (an empty filter matches all), sorted
// by id.
func (c *Coordinator) List(states []State, pids []int64) []Description {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []Description
	for _, t := range c.txns {
		if t.cur.ProducerID < 0 {
			continue
		}
		if len(states) > 0 && !slices.Contains(states, t.cur.State) {
			continue
		}
		if len(pids) > 0 && !slices.Contains(pids, t.cur.ProducerID) {
			continue
		}
		out = append(out, describe(t))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// PendingOffsets returns the partitions of group that have offsets in a
// transaction not yet complete (sent by TxnOffsetCommit, not yet applied
// or dropped): an OffsetFetch that requires stable offsets (KIP-447) must
// not answer them yet.
func (c *Coordinator) PendingOffsets(group string) map[TopicPartition]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out map[TopicPartition]bool
	for _, t := range c.txns {
		if s := t.cur.State; s != Ongoing && s != PrepareCommit {
			continue
		}
		for _, o := range t.cur.Offsets {
			if o.Group == group {
				if out == nil {
					out = map[TopicPartition]bool{}
				}
				out[TopicPartition{o.Topic, o.Partition}] = true
			}
		}
	}
	return out
}
