package handler

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/kafka/server"
)

// ElectLeaders (KIP-183, KIP-460): kafka-leader-election.sh and
// `strom topic elect-leaders`.
//
// Behavior:
//   - Needs ALTER on the cluster; otherwise every named partition is
//     CLUSTER_AUTHORIZATION_FAILED (and the top-level code, v1+).
//   - PREFERRED (0): any broker takes the request. A partition whose
//     preferred replica (its first) leads is ELECTION_NOT_NEEDED; one
//     whose preferred replica is fenced or out of the ISR is
//     PREFERRED_LEADER_NOT_AVAILABLE. Otherwise the request is recorded
//     in the metadata, the broker whose replica leads hands leadership
//     over (raft's leader transfer), and the answer comes when the
//     metadata names the preferred replica as leader, or
//     REQUEST_TIMED_OUT after TimeoutMillis. A partition of one replica
//     is ELECTION_NOT_NEEDED (its replica leads) or, its broker down,
//     PREFERRED_LEADER_NOT_AVAILABLE.
//   - UNCLEAN (1): a partition with a leader is ELECTION_NOT_NEEDED, as in
//     Kafka. One without is ELIGIBLE_LEADERS_NOT_AVAILABLE with a message:
//     raft elects only a replica holding every committed entry, and makes
//     one leader as soon as a majority of the voters is up; electing an
//     out-of-date replica would drop acknowledged records, which Strom
//     never does. ELIGIBLE_LEADERS_NOT_AVAILABLE is Kafka's own answer to
//     an unclean election with no replica it may elect.
//   - Null topics: every partition of every topic, and (as Kafka) the
//     answer leaves out those that needed no election.
//   - Unknown topics or partitions: UNKNOWN_TOPIC_OR_PARTITION.
//
// Version notes: v1 adds ElectionType and the top-level error code (v0 is
// PREFERRED); v2 is flexible.
func init() { register(43, 0, 2, handleElectLeaders) }

func handleElectLeaders(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ElectLeadersRequest)
	resp := r.ResponseKind().(*kmsg.ElectLeadersResponse)
	type item struct {
		topic     string
		partition int32
		err       error
	}
	all := r.Topics == nil
	var items []*item
	if all {
		for _, t := range h.c.Topics() {
			for i := int32(0); i < t.Partitions; i++ {
				items = append(items, &item{topic: t.Name, partition: i})
			}
		}
	} else {
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				items = append(items, &item{topic: t.Topic, partition: p})
			}
		}
	}
	answer := func() kmsg.Response {
		byTopic := map[string]int{}
		for _, it := range items {
			if all && errors.Is(it.err, cluster.ErrElectionNotNeeded) {
				continue
			}
			k, ok := byTopic[it.topic]
			if !ok {
				k = len(resp.Topics)
				byTopic[it.topic] = k
				rt := kmsg.NewElectLeadersResponseTopic()
				rt.Topic = it.topic
				resp.Topics = append(resp.Topics, rt)
			}
			rp := kmsg.NewElectLeadersResponseTopicPartition()
			rp.Partition = it.partition
			if it.err != nil {
				rp.ErrorCode, rp.ErrorMessage = adminCode(it.err), errorMessage(it.err)
			}
			resp.Topics[k].Partitions = append(resp.Topics[k].Partitions, rp)
		}
		return resp
	}
	if !h.allowedCluster(req, acl.OpAlter) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		for _, it := range items {
			it.err = kerr.ClusterAuthorizationFailed
		}
		return now(answer())
	}
	if r.Version >= 1 && r.ElectionType == 1 {
		for _, it := range items {
			it.err = h.uncleanElection(it.topic, it.partition)
		}
		return now(answer())
	}
	if r.Version >= 1 && r.ElectionType != 0 {
		for _, it := range items {
			it.err = adminFail(kerr.InvalidRequest, "unknown election type %d (0: preferred, 1: unclean)", r.ElectionType)
		}
		return now(answer())
	}
	timeout := time.Duration(r.TimeoutMillis) * time.Millisecond
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		var wg sync.WaitGroup
		for _, it := range items {
			wg.Go(func() { it.err = h.c.ElectPreferred(ctx, it.topic, it.partition) })
		}
		wg.Wait()
		return answer()
	}}, nil
}

// uncleanElection answers an UNCLEAN election of one partition.
func (h *Handler) uncleanElection(topic string, i int32) error {
	t, ok := h.c.Topic(topic)
	if !ok || i < 0 || i >= t.Partitions {
		return kerr.UnknownTopicOrPartition
	}
	if h.c.PartitionLeader(&t, i).Leader >= 0 {
		return adminFail(kerr.ElectionNotNeeded, "%s-%d has a leader", topic, i)
	}
	return adminFail(kerr.EligibleLeadersNotAvailable,
		"%s-%d: Strom does not elect an out-of-date replica (unclean election): raft elects a replica that holds every committed record as soon as a majority of the replicas is up, and electing another would drop acknowledged records", topic, i)
}
