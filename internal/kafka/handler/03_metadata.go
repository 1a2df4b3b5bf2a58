package handler

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// Metadata: the broker list (this broker, at its advertised address) and
// the requested topics with their partitions, all led by this broker.
//
// Behavior:
//   - A null topic list (v1+), or an empty one at v0, asks for every topic.
//   - An unknown topic is created when auto.create.topics.enable is set and
//     the request allows it (always before v4, AllowAutoTopicCreation from
//     v4), with num.partitions partitions; otherwise
//     UNKNOWN_TOPIC_OR_PARTITION. An invalid name is INVALID_TOPIC_EXCEPTION.
//   - A partition whose log failed (an fsync error: no writes until a
//     restart recovers it) is answered as Kafka answers a partition whose
//     replica sits on an offline log dir: this broker in OfflineReplicas
//     (v5+) and out of the ISR, and KAFKA_STORAGE_ERROR (retriable: clients
//     hold their records and refresh metadata; NOT_LEADER_FOR_PARTITION
//     before v5, which lacks the code). It stays led by this
//     broker, which still serves its reads. A Degraded partition (disk
//     full) is listed as usual: its produces answer KAFKA_STORAGE_ERROR and
//     succeed again once there is room.
//   - Authorized operations, when asked for, are those of a Kafka broker
//     without an authorizer: every operation that applies to a topic (for
//     every topic in the response) and to the cluster. Not asked for, they
//     are INT32_MIN, as in Kafka.
//
// Version notes: v1 controller id and internal flag; v2 cluster id; v7
// leader epoch; v8+ topic authorized operations, v8-10 cluster authorized
// operations (removed in v11: DescribeCluster has them); v9+ flexible; v10
// topic ids (a topic may be asked for by id alone).
func init() { register(3, 0, 13, handleMetadata) }

// topicOperations are the ACL operations of the TOPIC resource (Kafka's
// AclEntry.supportedOperations), as an authorized-operations bit field: what
// Kafka answers without an authorizer; with one, those the principal is
// allowed (authorizedOps).
var topicOperations = aclBits(
	kmsg.ACLOperationRead, kmsg.ACLOperationWrite, kmsg.ACLOperationCreate,
	kmsg.ACLOperationDescribe, kmsg.ACLOperationDelete, kmsg.ACLOperationAlter,
	kmsg.ACLOperationDescribeConfigs, kmsg.ACLOperationAlterConfigs,
)

// aclBits sets bit op for each op, the encoding of KIP-430's authorized
// operations fields.
func aclBits(ops ...kmsg.ACLOperation) int32 {
	var bits int32
	for _, op := range ops {
		bits |= 1 << op
	}
	return bits
}

func handleMetadata(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.MetadataRequest)
	resp := r.ResponseKind().(*kmsg.MetadataResponse)
	node := h.c.NodeID()
	for _, bi := range h.brokers(req) {
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port, b.Rack = bi.ID, bi.Host, bi.Port, rackOrNil(bi.Rack)
		resp.Brokers = append(resp.Brokers, b)
	}
	resp.ClusterID = &h.cfg.ClusterID
	resp.ControllerID = h.c.ControllerID()

	if r.IncludeClusterAuthorizedOperations && req.Version >= 8 && req.Version <= 10 {
		resp.AuthorizedOperations = h.authorizedOps(req, acl.ResourceCluster, acl.ClusterName, clusterOperations)
	}
	h.metadataTopics(req.Version, r, resp, node, h.failedPartitions())
	if r.IncludeTopicAuthorizedOperations && req.Version >= 8 {
		for i := range resp.Topics {
			name := ""
			if resp.Topics[i].Topic != nil {
				name = *resp.Topics[i].Topic
			}
			resp.Topics[i].AuthorizedOperations = h.authorizedOps(req, acl.ResourceTopic, name, topicOperations)
		}
	}
	return h.afterFailovers(resp, req.Version, node)
}

// leaderProbeWait bounds the probe of the leaders a Metadata answer names:
// a live broker answers within a round trip, a killed one's connections
// close within milliseconds; a hung one is answered as recorded after it.
const leaderProbeWait = 50 * time.Millisecond

// afterFailovers answers resp at once unless it names a leader on another
// broker, which is probed first (a killed one is found down), or a
// partition it lists is between leaders (cluster.FailingOver: its leader's broker just went
// down, and the others can elect): then once each such partition has its
// new leader recorded, within cluster's failover window, its partitions
// listed again. A client's first metadata refresh after a leader's broker
// died thus names the new leader: franz-go asks again only after its
// MetadataMinAge (5 s by default), librdkafka after its backoff.
func (h *Handler) afterFailovers(resp *kmsg.MetadataResponse, version int16, node int32) (server.Reply, error) {
	var names []string
	for _, mt := range resp.Topics {
		if mt.ErrorCode == 0 && mt.Topic != nil {
			names = append(names, *mt.Topic)
		}
	}
	probe := h.c.MetadataLeaderNodes(names)
	if len(probe) == 0 && !h.c.FailingOver(names) {
		return now(resp)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		// The leaders named are probed first (cluster.ProbeLeaders): a
		// leader killed a moment ago shows as down once its connections
		// close, and the failover hold below takes over.
		changed := !h.c.ProbeLeaders(ctx, probe, leaderProbeWait)
		if h.c.FailingOver(names) {
			h.c.WaitFailovers(ctx, names)
			changed = true
		}
		if !changed {
			return resp
		}
		failed := h.failedPartitions()
		for i := range resp.Topics {
			mt := &resp.Topics[i]
			if mt.ErrorCode != 0 || mt.Topic == nil {
				continue
			}
			t, ok := h.c.Topic(*mt.Topic)
			if !ok || t.ID != mt.TopicID {
				continue // deleted (or re-created) meanwhile: as first listed
			}
			ops := mt.AuthorizedOperations
			*mt = h.topicMetadata(t, node, version, failed[t.Name])
			mt.AuthorizedOperations = ops
		}
		return resp
	}}, nil
}

// metadataTopics fills resp.Topics: every topic, or those asked for.
func (h *Handler) metadataTopics(version int16, r *kmsg.MetadataRequest, resp *kmsg.MetadataResponse, node int32, failed map[string]map[int32]bool) {
	all := r.Topics == nil || (version == 0 && len(r.Topics) == 0)
	if all {
		topics := h.c.Topics()
		resp.Topics = make([]kmsg.MetadataResponseTopic, 0, len(topics))
		for _, t := range topics {
			resp.Topics = append(resp.Topics, h.topicMetadata(t, node, version, failed[t.Name]))
		}
		return
	}
	autoCreate := h.c.Broker().Settings().AutoCreateTopics && (version < 4 || r.AllowAutoTopicCreation)
	for _, rt := range r.Topics {
		var t metadata.Topic
		var ok bool
		if rt.Topic == nil {
			t, ok = h.c.TopicByID(metadata.TopicID(rt.TopicID))
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.TopicID = rt.TopicID
				mt.ErrorCode = kerr.UnknownTopicID.Code
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		} else {
			t, ok = h.c.Topic(*rt.Topic)
			if !ok && autoCreate {
				var err error
				t, err = h.c.CreateTopic(*rt.Topic, -1, nil, false)
				ok = err == nil || errors.Is(err, metadata.ErrTopicExists)
				if errors.Is(err, metadata.ErrTopicExists) {
					t, ok = h.c.Topic(*rt.Topic)
				}
				if !ok {
					mt := kmsg.NewMetadataResponseTopic()
					mt.Topic = rt.Topic
					mt.ErrorCode = errorCode(err)
					resp.Topics = append(resp.Topics, mt)
					continue
				}
			}
			if !ok {
				mt := kmsg.NewMetadataResponseTopic()
				mt.Topic = rt.Topic
				mt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				if metadata.ValidTopicName(*rt.Topic) != nil {
					mt.ErrorCode = kerr.InvalidTopicException.Code
				}
				resp.Topics = append(resp.Topics, mt)
				continue
			}
		}
		resp.Topics = append(resp.Topics, h.topicMetadata(t, node, version, failed[t.Name]))
	}
}

// failedPartitions returns the Failed partitions by topic (usually none).
func (h *Handler) failedPartitions() map[string]map[int32]bool {
	var out map[string]map[int32]bool
	for _, ph := range h.c.UnhealthyPartitions() {
		if ph.Health != partition.Failed {
			continue
		}
		if out == nil {
			out = map[string]map[int32]bool{}
		}
		if out[ph.Topic] == nil {
			out[ph.Topic] = map[int32]bool{}
		}
		out[ph.Topic][ph.Partition.Partition] = true
	}
	return out
}

// brokers lists the live brokers clients may use: this one alone at its
// advertised address on a single node, every unfenced registered broker in
// a cluster.
//
// Each client is given the advertised address of the listener it
// connected to (several listeners, issue 21): in a cluster, each broker's
// registered endpoint of that listener (metadata.BrokerInfo.Endpoints),
// else its first listener's address (a broker without that listener, or
// registered before endpoints were recorded).
func (h *Handler) brokers(req *server.Request) []metadata.BrokerInfo {
	if !h.c.Replicated() {
		host, port := h.endpoint(req)
		return []metadata.BrokerInfo{{ID: h.c.NodeID(), Host: host, Port: port, Rack: h.c.Broker().Settings().BrokerRack}}
	}
	bs := h.c.Brokers()
	for i := range bs {
		if e, ok := h.cfg.Listeners[req.Conn.Listener]; ok && bs[i].ID == h.c.NodeID() {
			// This broker from its own listener, never from a
			// registration that may be stale (a cluster of one whose
			// metadata log is read-only on a full disk did not register
			// its new addresses).
			bs[i].Host, bs[i].Port = e.Host, e.Port
		} else if host, port, ok := bs[i].Endpoint(req.Conn.Listener); ok {
			bs[i].Host, bs[i].Port = host, port
		}
	}
	return bs
}

// broker returns a live broker's registration (ok false: none such).
func (h *Handler) broker(req *server.Request, id int32) (metadata.BrokerInfo, bool) {
	for _, b := range h.brokers(req) {
		if b.ID == id {
			return b, true
		}
	}
	return metadata.BrokerInfo{}, false
}

func rackOrNil(rack string) *string {
	if rack == "" {
		return nil
	}
	return &rack
}

func (h *Handler) topicMetadata(t metadata.Topic, node int32, version int16, failed map[int32]bool) kmsg.MetadataResponseTopic {
	mt := kmsg.NewMetadataResponseTopic()
	name := t.Name
	mt.Topic = &name
	mt.TopicID = t.ID
	mt.IsInternal = t.Internal
	// One broker: every partition's replica set and ISR is that broker, so
	// they share one slice (the encoder only reads it), and the partitions
	// are allocated at once: with 10,000 partitions, growing the slice and
	// two small slices per partition were most of a Metadata request.
	self := []int32{node}
	mt.Partitions = make([]kmsg.MetadataResponseTopicPartition, t.Partitions)
	if t.Replicas != nil {
		// A cluster: each partition on the brokers its replicas name; the
		// leader, its epoch and the ISR are what the partition's raft
		// leader recorded (one replica: that broker while it is live), the
		// leader and epoch newer when this node's replica knows of a
		// newer leadership with its epoch confirmed
		// (cluster.MetadataLeader).
		for i := range mt.Partitions {
			p := &mt.Partitions[i]
			p.Default()
			p.Partition = int32(i)
			li := h.c.MetadataLeader(&t, int32(i))
			p.Leader = li.Leader
			p.LeaderEpoch = max(li.Epoch, 0)
			p.Replicas = t.Replicas[i]
			p.ISR = []int32{}
			p.OfflineReplicas = []int32{}
			switch {
			case p.Leader < 0:
				p.ErrorCode = kerr.LeaderNotAvailable.Code
				p.OfflineReplicas = t.Replicas[i]
			case p.Leader == node && failed[int32(i)]:
				p.ErrorCode = storageErrorFor(kerr.KafkaStorageError.Code, version >= 5)
				p.OfflineReplicas = self
			default:
				p.ISR = li.ISR
			}
		}
		return mt
	}
	for i := range mt.Partitions {
		p := &mt.Partitions[i]
		p.Default()
		p.Partition = int32(i)
		p.Leader = node
		p.LeaderEpoch = 0
		p.Replicas = self
		p.ISR = self
		if failed[int32(i)] {
			p.ErrorCode = storageErrorFor(kerr.KafkaStorageError.Code, version >= 5)
			p.ISR = []int32{}
			p.OfflineReplicas = self
		}
	}
	return mt
}
