package handler

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// CreateTopics: creates topics, each with its partitions on this node.
//
// Behavior:
//   - Checks, in Kafka's order, answering the first that fails: the name
//     (INVALID_TOPIC_EXCEPTION, also for a name that differs from an
//     existing topic's only by '.' against '_', as Kafka refuses such
//     collisions), existence (TOPIC_ALREADY_EXISTS), the layout, then the
//     configs (INVALID_CONFIG; a null value is one too).
//   - Layout: NumPartitions -1 is num.partitions; 0 or below -1 is
//     INVALID_PARTITIONS. ReplicationFactor -1 or 1 is accepted; 0 or below
//     -1, or above 1 (there is one broker), is INVALID_REPLICATION_FACTOR. A
//     manual ReplicaAssignment needs NumPartitions and ReplicationFactor -1
//     (else INVALID_REQUEST) and must number the partitions 0..n-1, each with
//     exactly one replica, this node (else INVALID_REPLICA_ASSIGNMENT).
//   - A name given more than once is answered once, INVALID_REQUEST, and
//     not created, as Kafka does.
//   - ValidateOnly runs every check and creates nothing; the answer is the
//     one a creation would give, with a zero topic id.
//   - TimeoutMillis is ignored: creation is synchronous, there are no
//     replicas to wait for.
//
// Version notes: v1 ValidateOnly and ErrorMessage; v2 throttle; v3 same;
// v4 makes -1 (broker default) legal for NumPartitions and
// ReplicationFactor, which we accept at every version; v5+ flexible, with
// the created topic's NumPartitions, ReplicationFactor and resolved Configs
// (with their sources); v6 may throttle (we never do); v7 TopicID.
func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.CreateTopicsRequest)
	resp := r.ResponseKind().(*kmsg.CreateTopicsResponse)
	times := map[string]int{}
	for _, rt := range r.Topics {
		times[rt.Topic]++
	}
	answered := map[string]bool{}
	for i := range r.Topics {
		rt := &r.Topics[i]
		if answered[rt.Topic] {
			continue
		}
		answered[rt.Topic] = true
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		if n := times[rt.Topic]; n > 1 {
			err := adminFail(kerr.InvalidRequest, "the request names topic %q %d times", rt.Topic, n)
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		t, err := h.createTopic(rt, req.Version >= 1 && r.ValidateOnly)
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
			resp.Topics = append(resp.Topics, st)
			continue
		}
		st.TopicID = t.ID
		st.NumPartitions = t.Partitions
		st.ReplicationFactor = 1
		for _, v := range metadata.Resolve(t.Configs, h.c.Broker()) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = v.Name
			c.Value = kmsg.StringPtr(v.Value)
			c.Source = int8(v.Source)
			st.Configs = append(st.Configs, c)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp)
}

// createTopic checks one requested topic and creates it (or, with
// validateOnly, returns what would be created).
func (h *Handler) createTopic(rt *kmsg.CreateTopicsRequestTopic, validateOnly bool) (metadata.Topic, error) {
	name := rt.Topic
	if err := metadata.ValidTopicName(name); err != nil {
		return metadata.Topic{}, err
	}
	folded := strings.ReplaceAll(name, ".", "_")
	for _, t := range h.c.Topics() {
		if t.Name == name {
			return metadata.Topic{}, fmt.Errorf("%w: topic %q already exists", metadata.ErrTopicExists, name)
		}
		if strings.ReplaceAll(t.Name, ".", "_") == folded {
			return metadata.Topic{}, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are the same in metric names)",
				metadata.ErrInvalidTopic, name, t.Name)
		}
	}

	partitions := rt.NumPartitions
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return metadata.Topic{}, adminFail(kerr.InvalidRequest,
				"numPartitions and replicationFactor must be -1 when replicaAssignment is set")
		}
		seen := make([]bool, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
				return metadata.Topic{}, adminFail(kerr.InvalidReplicaAssignment,
					"partitions in a replica assignment must be numbered 0 to %d, each once; got partition %d",
					len(seen)-1, a.Partition)
			}
			seen[a.Partition] = true
			if err := h.checkReplicas(a.Replicas); err != nil {
				return metadata.Topic{}, err
			}
		}
		partitions = int32(len(rt.ReplicaAssignment))
	} else {
		if partitions == 0 || partitions < -1 {
			return metadata.Topic{}, fmt.Errorf("%w: number of partitions must be larger than 0, or -1 to use the default (num.partitions); got %d",
				metadata.ErrInvalidPartitions, partitions)
		}
		if err := checkReplicationFactor(rt.ReplicationFactor); err != nil {
			return metadata.Topic{}, err
		}
	}

	var configs map[string]string
	for _, c := range rt.Configs {
		if c.Value == nil {
			return metadata.Topic{}, fmt.Errorf("%w: null value for config %q", metadata.ErrInvalidConfig, c.Name)
		}
		if _, dup := configs[c.Name]; dup {
			return metadata.Topic{}, adminFail(kerr.InvalidRequest, "config %q is given twice", c.Name)
		}
		if err := metadata.ValidateTopicConfig(c.Name, *c.Value); err != nil {
			return metadata.Topic{}, err
		}
		if configs == nil {
			configs = map[string]string{}
		}
		configs[c.Name] = *c.Value
	}
	return h.c.CreateTopic(name, partitions, configs, validateOnly)
}

// checkReplicationFactor accepts -1 (the default) and 1: there is one broker.
func checkReplicationFactor(rf int16) error {
	switch {
	case rf == -1 || rf == 1:
		return nil
	case rf > 1:
		return adminFail(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: 1", rf)
	default:
		return adminFail(kerr.InvalidReplicationFactor,
			"replication factor must be larger than 0, or -1 to use the default; got %d", rf)
	}
}

// checkReplicas accepts a manual replica list only if it is this node
// alone: a single-node cluster cannot place a replica anywhere else.
func (h *Handler) checkReplicas(replicas []int32) error {
	node := h.c.NodeID()
	if len(replicas) != 1 || replicas[0] != node {
		return adminFail(kerr.InvalidReplicaAssignment,
			"replicas %v: this single-node cluster has one broker, %d, and one replica per partition", replicas, node)
	}
	return nil
}

// adminError is a refusal decided by the admin handlers themselves (a
// malformed request, an impossible layout) rather than by the cluster: it
// carries its Kafka code and the message clients show.
type adminError struct {
	code *kerr.Error
	msg  string
}

func (e *adminError) Error() string { return e.msg }

func adminFail(code *kerr.Error, format string, args ...any) error {
	return &adminError{code: code, msg: fmt.Sprintf(format, args...)}
}

// adminCode is errorCode for errors that may be adminErrors.
func adminCode(err error) int16 {
	var ae *adminError
	if errors.As(err, &ae) {
		return ae.code.Code
	}
	return errorCode(err)
}
