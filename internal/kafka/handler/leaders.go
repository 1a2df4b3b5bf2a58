package handler

import (
	"errors"
	"slices"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// KIP-951: a NOT_LEADER_OR_FOLLOWER answer to Produce (v10+) and Fetch
// (v12+) names the partition's current leader and its epoch in the
// partition's tagged CurrentLeader, and the leaders' endpoints in the
// response's tagged NodeEndpoints (Produce v10+, Fetch v16+), so that a
// client goes to the right broker without a Metadata round trip.

// leaderHint is a partition's current leader (cluster.LeaderHint: the
// metadata's, or a newer one this node's replica learned of) and its
// epoch, at the address of the listener req came in on (ok false: none
// live, so nothing to hint).
func (h *Handler) leaderHint(req *server.Request, t metadata.Topic, index int32, err error) (leader metadata.BrokerInfo, epoch int32, ok bool) {
	if !errors.Is(err, cluster.ErrNotLeader) && !errors.Is(err, partition.ErrNotLeader) {
		return leader, 0, false
	}
	// The leader's epoch matters: franz-go moves a partition on a hint
	// only when its epoch is newer than the one it knows (always 0 here
	// once, so every hint was ignored).
	id, epoch, local := h.c.LeaderHint(&t, index)
	if id < 0 || id == h.c.NodeID() && !local {
		return leader, 0, false
	}
	b, ok := h.broker(req, id)
	return b, epoch, ok
}

// endpoints collects the distinct brokers named by leader hints, in the
// order first named.
type endpoints []metadata.BrokerInfo

func (e *endpoints) add(b metadata.BrokerInfo) {
	if !slices.ContainsFunc(*e, func(x metadata.BrokerInfo) bool { return x.ID == b.ID }) {
		*e = append(*e, b)
	}
}
