package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// FindCoordinator: the broker that coordinates a group (the leader of
// __consumer_offsets-0) or a transactional id (the leader of
// __transaction_state-0); on a single node, this broker.
//
// Behavior:
//   - Key type 0 (group) and 1 (transaction) are answered with that
//     leader; any other key type is INVALID_REQUEST.
//   - An empty key is INVALID_GROUP_ID. (Clients such as
//     confluent-kafka-python 1.7 look up their group's coordinator even when
//     they only assign() partitions.)
//   - A group key creates the internal topic __consumer_offsets if it does
//     not exist yet, as Kafka does on the first lookup of a group's
//     coordinator: clients and tools see it in Metadata from then on, not
//     only after the first commit. If that fails, the group keys are
//     COORDINATOR_NOT_AVAILABLE (retriable). A transaction key creates
//     __transaction_state the same way (one partition, one replica).
//
// Version notes: v1 key type, throttle and error message; v3+ flexible; v4+
// batched keys (Coordinators array) instead of one key.
func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	node := h.c.NodeID()
	host, port := h.endpoint(req) // this node, at the client's listener
	coordinator := metadata.BrokerInfo{ID: node, Host: host, Port: port}
	// The coordinator of each key type, found once per request: the
	// leader of __consumer_offsets-0 for groups, of __transaction_state-0
	// for transactional ids.
	found := false
	answer := func(key string) (int16, *string) {
		if r.CoordinatorType != 0 && r.CoordinatorType != 1 {
			return kerr.InvalidRequest.Code, kmsg.StringPtr("coordinator type must be 0 (group) or 1 (transaction)")
		}
		if key == "" {
			return kerr.InvalidGroupID.Code, kmsg.StringPtr("empty coordinator key")
		}
		if !found {
			// In a cluster the coordinator is the leader of the internal
			// topic's partition, wherever it is.
			leader, topic := h.c.OffsetsLeader, "the offsets topic"
			if r.CoordinatorType == 1 {
				leader, topic = h.c.TxnStateLeader, "the transaction state topic"
			}
			lead, err := leader()
			if err != nil {
				return kerr.CoordinatorNotAvailable.Code, kmsg.StringPtr(topic + ": " + err.Error())
			}
			b, ok := h.broker(req, lead)
			if !ok {
				return kerr.CoordinatorNotAvailable.Code, kmsg.StringPtr(fmt.Sprintf("%s's leader, broker %d, is not available", topic, lead))
			}
			coordinator = b
			found = true
		}
		return 0, nil
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = answer(r.CoordinatorKey)
		if resp.ErrorCode == 0 {
			resp.NodeID, resp.Host, resp.Port = coordinator.ID, coordinator.Host, coordinator.Port
		} else {
			resp.NodeID, resp.Port = -1, -1
		}
		return now(resp)
	}
	for _, key := range r.CoordinatorKeys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key = key
		c.ErrorCode, c.ErrorMessage = answer(key)
		if c.ErrorCode == 0 {
			c.NodeID, c.Host, c.Port = coordinator.ID, coordinator.Host, coordinator.Port
		} else {
			c.NodeID, c.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return now(resp)
}
