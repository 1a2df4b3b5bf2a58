package handler

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// CreatePartitions: grows topics to a new partition count.
//
// Behavior:
//   - Every requested topic is answered (an empty answer array breaks
//     librdkafka, see notes/compat.md); a topic named more than once is
//     answered once, INVALID_REQUEST, and not changed, as Kafka does.
//   - An unknown topic is UNKNOWN_TOPIC_OR_PARTITION. A count at or below
//     the current one is INVALID_PARTITIONS with Kafka's message.
//   - A manual Assignment must list one entry per new partition, each with
//     exactly one replica, this node; else INVALID_REPLICA_ASSIGNMENT.
//   - ValidateOnly runs every check and changes nothing.
//   - The answer waits, up to TimeoutMillis, until every new partition
//     has a leader (see CreateTopics).
//
// Version notes: v1 is v0 (throttle behaviour); v2+ flexible; v3 is v2
// (it may answer THROTTLING_QUOTA_EXCEEDED, which we never do).
func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.CreatePartitionsRequest)
	resp := r.ResponseKind().(*kmsg.CreatePartitionsResponse)
	times := map[string]int{}
	for _, rt := range r.Topics {
		times[rt.Topic]++
	}
	answered := map[string]bool{}
	var grown []string
	for i := range r.Topics {
		rt := &r.Topics[i]
		if answered[rt.Topic] {
			continue
		}
		answered[rt.Topic] = true
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if n := times[rt.Topic]; n > 1 {
			err = adminFail(kerr.InvalidRequest, "the request names topic %q %d times", rt.Topic, n)
		} else {
			err = h.createPartitions(rt, r.ValidateOnly)
			if err == nil && !r.ValidateOnly {
				grown = append(grown, rt.Topic)
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return h.afterLeaders(resp, grown, r.TimeoutMillis)
}

func (h *Handler) createPartitions(rt *kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	t, ok := h.c.Topic(rt.Topic)
	if !ok {
		return fmt.Errorf("%w: topic %q does not exist", metadata.ErrUnknownTopic, rt.Topic)
	}
	switch {
	case rt.Count < t.Partitions:
		return fmt.Errorf("%w: topic currently has %d partitions, which is higher than the requested %d",
			metadata.ErrInvalidPartitions, t.Partitions, rt.Count)
	case rt.Count == t.Partitions:
		return fmt.Errorf("%w: topic already has %d partitions", metadata.ErrInvalidPartitions, t.Partitions)
	}
	var assignment [][]int32
	if rt.Assignment != nil {
		if add := int64(rt.Count) - int64(t.Partitions); int64(len(rt.Assignment)) != add {
			return adminFail(kerr.InvalidReplicaAssignment,
				"increasing the number of partitions by %d but %d assignments provided", add, len(rt.Assignment))
		}
		rf := 1
		if len(t.Replicas) > 0 {
			rf = len(t.Replicas[0])
		}
		for _, a := range rt.Assignment {
			if err := h.checkReplicas(a.Replicas, rf); err != nil {
				return err
			}
			assignment = append(assignment, a.Replicas)
		}
	}
	if !h.c.Replicated() {
		assignment = nil // a single node has checked they name it alone
	}
	return h.c.CreatePartitions(rt.Topic, rt.Count, validateOnly, assignment...)
}
