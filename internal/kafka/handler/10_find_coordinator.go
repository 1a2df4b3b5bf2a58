package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
)

// FindCoordinator: on a single node this broker coordinates every group and
// every transactional id, so the answer is always this broker.
//
// Behavior:
//   - Key type 0 (group) and 1 (transaction) are answered with this node;
//     any other key type is INVALID_REQUEST.
//   - An empty key is INVALID_GROUP_ID. (Clients such as
//     confluent-kafka-python 1.7 look up their group's coordinator even when
//     they only assign() partitions.)
//   - A group key creates the internal topic __consumer_offsets if it does
//     not exist yet, as Kafka does on the first lookup of a group's
//     coordinator: clients and tools see it in Metadata from then on, not
//     only after the first commit. If that fails, the group keys are
//     COORDINATOR_NOT_AVAILABLE (retriable).
//
// Version notes: v1 key type, throttle and error message; v3+ flexible; v4+
// batched keys (Coordinators array) instead of one key.
func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.FindCoordinatorRequest)
	resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
	node := h.c.NodeID()
	offsetsReady := false // the offsets topic exists, for group keys
	answer := func(key string) (int16, *string) {
		if r.CoordinatorType != 0 && r.CoordinatorType != 1 {
			return kerr.InvalidRequest.Code, kmsg.StringPtr("coordinator type must be 0 (group) or 1 (transaction)")
		}
		if key == "" {
			return kerr.InvalidGroupID.Code, kmsg.StringPtr("empty coordinator key")
		}
		if r.CoordinatorType == 0 && !offsetsReady {
			if _, err := h.c.OffsetsPartition(true); err != nil {
				return kerr.CoordinatorNotAvailable.Code, kmsg.StringPtr("creating the offsets topic: " + err.Error())
			}
			offsetsReady = true
		}
		return 0, nil
	}
	if req.Version < 4 {
		resp.ErrorCode, resp.ErrorMessage = answer(r.CoordinatorKey)
		if resp.ErrorCode == 0 {
			resp.NodeID = node
			resp.Host, resp.Port = h.endpoint(req)
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
			c.NodeID = node
			c.Host, c.Port = h.endpoint(req)
		} else {
			c.NodeID, c.Port = -1, -1
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	return now(resp)
}
