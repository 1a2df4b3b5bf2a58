package handler

import (
	"errors"
	"slices"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// KIP-951: a NOT_LEADER_OR_FOLLOWER answer to Produce (v10+) and Fetch
// (v12+) names the partition's current leader and its epoch in the
// partition's tagged CurrentLeader, and the leaders' endpoints in the
// response's tagged NodeEndpoints (Produce v10+, Fetch v16+), so that a
// client goes to the right broker without a Metadata round trip.

// leaderHint is a partition's current leader as the cluster's metadata
// has it: the same leader and epoch Metadata answers, at the address of
// the listener req came in on (ok false: none live, so nothing to hint).
func (h *Handler) leaderHint(req *server.Request, t metadata.Topic, partition int32, err error) (leader metadata.BrokerInfo, epoch int32, ok bool) {
	if !errors.Is(err, cluster.ErrNotLeader) {
		return leader, 0, false
	}
	id := h.c.Leader(&t, partition)
	if id < 0 || id == h.c.NodeID() {
		return leader, 0, false
	}
	b, ok := h.broker(req, id)
	// Epoch: Metadata's LeaderEpoch for a partition of the cluster (0
	// until partitions have their own raft groups, issue 18).
	return b, 0, ok
}

// endpoints collects the distinct brokers named by leader hints, in the
// order first named.
type endpoints []metadata.BrokerInfo

func (e *endpoints) add(b metadata.BrokerInfo) {
	if !slices.ContainsFunc(*e, func(x metadata.BrokerInfo) bool { return x.ID == b.ID }) {
		*e = append(*e, b)
	}
}
