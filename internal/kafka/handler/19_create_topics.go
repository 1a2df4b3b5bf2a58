package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/cluster"
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
//   - The answer waits, up to TimeoutMillis (none at 0 or below), until
//     every partition of the created topics has a leader, as Kafka's
//     did: a client producing right after finds them led. A wait that
//     runs out still answers success: the topics exist, their leaders
//     come.
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
	// Every topic is checked first, then the cluster creates all those that
	// passed in one go (one metadata write for the whole request).
	folded := map[string]string{} // existing and accepted names, '.' as '_' -> name
	for _, t := range h.c.Topics() {
		folded[strings.ReplaceAll(t.Name, ".", "_")] = t.Name
	}
	answered := map[string]bool{}
	var specs []cluster.TopicSpec
	var specAt []int // index in resp.Topics of each spec's answer
	for i := range r.Topics {
		rt := &r.Topics[i]
		if answered[rt.Topic] {
			continue
		}
		answered[rt.Topic] = true
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		var err error
		if n := times[rt.Topic]; n > 1 {
			err = adminFail(kerr.InvalidRequest, "the request names topic %q %d times", rt.Topic, n)
		} else {
			var sp cluster.TopicSpec
			if sp, err = h.checkTopic(rt, folded); err == nil {
				folded[strings.ReplaceAll(sp.Name, ".", "_")] = sp.Name
				specs = append(specs, sp)
				specAt = append(specAt, len(resp.Topics))
			}
		}
		if err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(err), errorMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	var created []string
	for k, res := range h.c.CreateTopics(specs, req.Version >= 1 && r.ValidateOnly) {
		st := &resp.Topics[specAt[k]]
		if res.Err != nil {
			st.ErrorCode, st.ErrorMessage = adminCode(res.Err), errorMessage(res.Err)
			continue
		}
		t := res.Topic
		if !(req.Version >= 1 && r.ValidateOnly) {
			created = append(created, t.Name)
		}
		st.TopicID = t.ID
		st.NumPartitions = t.Partitions
		st.ReplicationFactor = 1
		if len(t.Replicas) > 0 {
			st.ReplicationFactor = int16(len(t.Replicas[0]))
		}
		for _, v := range metadata.Resolve(t.Configs, h.c.Broker()) {
			c := kmsg.NewCreateTopicsResponseTopicConfig()
			c.Name = v.Name
			c.Value = kmsg.StringPtr(v.Value)
			c.Source = int8(v.Source)
			st.Configs = append(st.Configs, c)
		}
	}
	return h.afterLeaders(resp, created, r.TimeoutMillis)
}

// checkTopic checks one requested topic against the existing ones (folded
// maps names with '.' as '_' to the names) and returns what to create.
func (h *Handler) checkTopic(rt *kmsg.CreateTopicsRequestTopic, folded map[string]string) (cluster.TopicSpec, error) {
	name := rt.Topic
	if err := metadata.ValidTopicName(name); err != nil {
		return cluster.TopicSpec{}, err
	}
	if other, ok := folded[strings.ReplaceAll(name, ".", "_")]; ok {
		if other == name {
			return cluster.TopicSpec{}, fmt.Errorf("%w: topic %q already exists", metadata.ErrTopicExists, name)
		}
		return cluster.TopicSpec{}, fmt.Errorf("%w: topic %q collides with existing topic %q ('.' and '_' are the same in metric names)",
			metadata.ErrInvalidTopic, name, other)
	}

	partitions := rt.NumPartitions
	var assignment [][]int32
	if len(rt.ReplicaAssignment) > 0 {
		if rt.NumPartitions != -1 || rt.ReplicationFactor != -1 {
			return cluster.TopicSpec{}, adminFail(kerr.InvalidRequest,
				"numPartitions and replicationFactor must be -1 when replicaAssignment is set")
		}
		seen := make([]bool, len(rt.ReplicaAssignment))
		for _, a := range rt.ReplicaAssignment {
			if a.Partition < 0 || int(a.Partition) >= len(seen) || seen[a.Partition] {
				return cluster.TopicSpec{}, adminFail(kerr.InvalidReplicaAssignment,
					"partitions in a replica assignment must be numbered 0 to %d, each once; got partition %d",
					len(seen)-1, a.Partition)
			}
			seen[a.Partition] = true
			if err := h.checkReplicas(a.Replicas, len(rt.ReplicaAssignment[0].Replicas)); err != nil {
				return cluster.TopicSpec{}, err
			}
		}
		partitions = int32(len(rt.ReplicaAssignment))
		if h.c.Replicated() {
			assignment = make([][]int32, partitions)
			for _, a := range rt.ReplicaAssignment {
				assignment[a.Partition] = slices.Clone(a.Replicas)
			}
		}
	} else {
		if partitions == 0 || partitions < -1 {
			return cluster.TopicSpec{}, fmt.Errorf("%w: number of partitions must be larger than 0, or -1 to use the default (num.partitions); got %d",
				metadata.ErrInvalidPartitions, partitions)
		}
		if err := h.checkReplicationFactor(rt.ReplicationFactor); err != nil {
			return cluster.TopicSpec{}, err
		}
	}

	var configs map[string]string
	for _, c := range rt.Configs {
		if c.Value == nil {
			return cluster.TopicSpec{}, fmt.Errorf("%w: null value for config %q", metadata.ErrInvalidConfig, c.Name)
		}
		if _, dup := configs[c.Name]; dup {
			return cluster.TopicSpec{}, adminFail(kerr.InvalidRequest, "config %q is given twice", c.Name)
		}
		if err := metadata.ValidateTopicConfig(c.Name, *c.Value); err != nil {
			return cluster.TopicSpec{}, err
		}
		if configs == nil {
			configs = map[string]string{}
		}
		configs[c.Name] = *c.Value
	}
	return cluster.TopicSpec{Name: name, Partitions: partitions, Configs: configs, ReplicationFactor: rt.ReplicationFactor, Assignment: assignment}, nil
}

// checkReplicationFactor accepts -1 (the default) and up to the live
// brokers (one on a cluster of one, or without a metadata quorum), with
// Kafka's message for more; placement checks again when it places.
func (h *Handler) checkReplicationFactor(rf int16) error {
	live := 1
	if h.c.Replicated() {
		live = len(h.c.Brokers())
	}
	switch {
	case rf == -1 || rf == 1 || (rf > 1 && int(rf) <= live):
		return nil
	case rf > 1:
		return adminFail(kerr.InvalidReplicationFactor, "replication factor: %d larger than available brokers: %d", rf, live)
	default:
		return adminFail(kerr.InvalidReplicationFactor,
			"replication factor must be larger than 0, or -1 to use the default; got %d", rf)
	}
}

// checkReplicas checks a manual replica list. In a cluster: distinct live
// brokers, rf of them when rf > 0 (every partition of a topic has the same
// replication factor). A single node can only place a replica on itself.
func (h *Handler) checkReplicas(replicas []int32, rf int) error {
	if h.c.Replicated() {
		if len(replicas) == 0 || (rf > 0 && len(replicas) != rf) {
			return adminFail(kerr.InvalidReplicaAssignment,
				"replicas %v: every partition needs the same number of replicas, at least one (here %d)", replicas, max(rf, 1))
		}
		live := h.c.Brokers()
		for i, id := range replicas {
			if slices.Contains(replicas[:i], id) {
				return adminFail(kerr.InvalidReplicaAssignment, "replicas %v: broker %d is listed twice", replicas, id)
			}
			if !slices.ContainsFunc(live, func(b metadata.BrokerInfo) bool { return b.ID == id }) {
				return adminFail(kerr.InvalidReplicaAssignment, "replicas %v: broker %d is not a live broker of the cluster", replicas, id)
			}
		}
		return nil
	}
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

// afterLeaders answers resp once every partition of the named topics has a
// leader, or after timeoutMs (at once when it is 0 or below, or nothing
// was made).
func (h *Handler) afterLeaders(resp kmsg.Response, names []string, timeoutMs int32) (server.Reply, error) {
	if len(names) == 0 || timeoutMs <= 0 {
		return now(resp)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
		defer cancel()
		h.c.WaitLeaders(ctx, names)
		return resp
	}}, nil
}
