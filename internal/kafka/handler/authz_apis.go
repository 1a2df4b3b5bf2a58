package handler

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
)

// What each API checks when ACLs are on, as Kafka's KafkaApis does, with
// Kafka's error codes. gate runs before the API's handler: it answers for
// a request it refuses whole, or removes the items the principal may not
// touch from the request and returns a fix that adds their errors to the
// response (so the handler never sees them, and no error names a topic the
// principal may not describe).
//
//	API                      checks
//	Produce                  WRITE topic; WRITE transactional id (if any)
//	Fetch                    READ topic
//	ListOffsets, OffsetForLeaderEpoch   DESCRIBE topic
//	Metadata                 DESCRIBE topic (all-topics lists only those);
//	                         auto-create: CREATE cluster or topic
//	OffsetCommit             READ group, READ topic
//	OffsetFetch              DESCRIBE group; DESCRIBE topic (others hidden,
//	                         or TOPIC_AUTHORIZATION_FAILED when named)
//	FindCoordinator          DESCRIBE group / transactional id
//	JoinGroup, SyncGroup, Heartbeat, LeaveGroup, ConsumerGroupHeartbeat
//	                         READ group
//	DescribeGroups, ConsumerGroupDescribe   DESCRIBE group
//	ListGroups               DESCRIBE cluster, else only groups with DESCRIBE
//	DeleteGroups             DELETE group;  OffsetDelete: DELETE group,
//	                         READ topic
//	CreateTopics             CREATE cluster or topic
//	DeleteTopics, DeleteRecords   DELETE topic
//	CreatePartitions         ALTER topic
//	DescribeConfigs          DESCRIBE_CONFIGS topic / cluster
//	AlterConfigs, IncrementalAlterConfigs   ALTER_CONFIGS topic / cluster
//	InitProducerId           WRITE transactional id; else IDEMPOTENT_WRITE
//	                         cluster or WRITE on some topic (KIP-679)
//	DescribeLogDirs          DESCRIBE cluster
//	Describe/CreateAcls...   in their own files (DESCRIBE / ALTER cluster)
//	Describe/AlterUserScramCredentials   DESCRIBE / ALTER cluster
//	AddPartitionsToTxn, AddOffsetsToTxn, EndTxn, TxnOffsetCommit,
//	WriteTxnMarkers          authz_txn.go (transactional id, group, topic;
//	                         CLUSTER_ACTION for the brokers' requests)
//	ElectLeaders, AlterPartitionReassignments   ALTER cluster (in their
//	                         own files); ListPartitionReassignments
//	                         DESCRIBE cluster
//	Create/Renew/Expire/DescribeDelegationToken   in their own files
//	                         (CREATE_TOKENS / DESCRIBE_TOKENS on a User,
//	                         DESCRIBE on a delegation token; tokens.go)
//	ApiVersions, SASL, DescribeCluster   none

type fix func(kmsg.Response)

// withFix applies f to the reply's response, now or when Finish makes it.
func withFix(r server.Reply, f fix) server.Reply {
	if f == nil {
		return r
	}
	if r.Response != nil {
		f(r.Response)
	}
	if fin := r.Finish; fin != nil {
		r.Finish = func(ctx context.Context) kmsg.Response {
			resp := fin(ctx)
			if resp != nil {
				f(resp)
			}
			return resp
		}
	}
	return r
}

func (h *Handler) topicName(name string, id [16]byte) string {
	if name != "" || id == ([16]byte{}) {
		return name
	}
	if t, ok := h.c.TopicByID(metadata.TopicID(id)); ok {
		return t.Name
	}
	return ""
}

// gate: see the table above. deny, when set, is the whole answer.
func (h *Handler) gate(req *server.Request) (deny kmsg.Response, f fix) {
	topicOK := func(op acl.Operation, name string) bool {
		return name == "" || h.allowed(req, op, acl.ResourceTopic, name) // "": an unknown id, the handler answers
	}
	groupOK := func(op acl.Operation, g string) bool { return h.allowed(req, op, acl.ResourceGroup, g) }
	groupCode := kerr.GroupAuthorizationFailed.Code
	topicCode := kerr.TopicAuthorizationFailed.Code

	switch r := req.Msg.(type) {
	case *kmsg.ProduceRequest:
		txnDenied := r.TransactionID != nil && !h.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, *r.TransactionID)
		var denied []kmsg.ProduceRequestTopic
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			if txnDenied || !topicOK(acl.OpWrite, h.topicName(t.Topic, t.TopicID)) {
				denied = append(denied, kmsg.ProduceRequestTopic{Topic: t.Topic, TopicID: t.TopicID, Partitions: t.Partitions})
				continue
			}
			kept = append(kept, t)
		}
		r.Topics = kept
		if len(denied) == 0 {
			return nil, nil
		}
		code := topicCode
		if txnDenied {
			code = kerr.TransactionalIDAuthorizationFailed.Code
		}
		type tp struct {
			name  string
			id    [16]byte
			parts []int32
		}
		var ds []tp // copied: the request's bytes are reused after Handle
		for _, t := range denied {
			d := tp{name: t.Topic, id: t.TopicID}
			for _, p := range t.Partitions {
				d.parts = append(d.parts, p.Partition)
			}
			ds = append(ds, d)
		}
		return nil, func(resp kmsg.Response) {
			pr := resp.(*kmsg.ProduceResponse)
			for _, d := range ds {
				rt := kmsg.NewProduceResponseTopic()
				rt.Topic, rt.TopicID = d.name, d.id
				for _, p := range d.parts {
					rp := kmsg.NewProduceResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.BaseOffset = p, code, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				pr.Topics = append(pr.Topics, rt)
			}
		}

	case *kmsg.FetchRequest:
		var denied []kmsg.FetchRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.FetchRequestTopic) bool { return topicOK(acl.OpRead, h.topicName(t.Topic, t.TopicID)) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			fr := resp.(*kmsg.FetchResponse)
			for _, t := range denied {
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewFetchResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.HighWatermark, rp.LastStableOffset, rp.LogStartOffset = p.Partition, topicCode, -1, -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				fr.Topics = append(fr.Topics, rt)
			}
		}

	case *kmsg.ListOffsetsRequest:
		var denied []kmsg.ListOffsetsRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.ListOffsetsRequestTopic) bool { return topicOK(acl.OpDescribe, t.Topic) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			lr := resp.(*kmsg.ListOffsetsResponse)
			for _, t := range denied {
				rt := kmsg.NewListOffsetsResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewListOffsetsResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.Offset, rp.Timestamp = p.Partition, topicCode, -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				lr.Topics = append(lr.Topics, rt)
			}
		}

	case *kmsg.OffsetForLeaderEpochRequest:
		var denied []kmsg.OffsetForLeaderEpochRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.OffsetForLeaderEpochRequestTopic) bool { return topicOK(acl.OpDescribe, t.Topic) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetForLeaderEpochResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetForLeaderEpochResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.LeaderEpoch, rp.EndOffset = p.Partition, topicCode, -1, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				or.Topics = append(or.Topics, rt)
			}
		}

	case *kmsg.MetadataRequest:
		return nil, h.gateMetadata(req, r)

	case *kmsg.OffsetCommitRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.OffsetCommitResponse)
			for _, t := range r.Topics {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, groupCode
					rt.Partitions = append(rt.Partitions, rp)
				}
				resp.Topics = append(resp.Topics, rt)
			}
			return resp, nil
		}
		var denied []kmsg.OffsetCommitRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.OffsetCommitRequestTopic) bool {
			return topicOK(acl.OpRead, h.topicName(t.Topic, t.TopicID))
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetCommitResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetCommitResponseTopic()
				rt.Topic, rt.TopicID = t.Topic, t.TopicID
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetCommitResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicCode
					rt.Partitions = append(rt.Partitions, rp)
				}
				or.Topics = append(or.Topics, rt)
			}
		}

	case *kmsg.OffsetFetchRequest:
		if req.Version < 8 {
			if !groupOK(acl.OpDescribe, r.Group) {
				resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
				resp.ErrorCode = groupCode
				return resp, nil
			}
			return nil, h.offsetFetchTopics(req)
		}
		var denied []string
		kept := r.Groups[:0]
		for _, g := range r.Groups {
			if !groupOK(acl.OpDescribe, g.Group) {
				denied = append(denied, g.Group)
				continue
			}
			kept = append(kept, g)
		}
		r.Groups = kept
		topics := h.offsetFetchTopics(req)
		if len(kept) == 0 && len(denied) > 0 {
			resp := r.ResponseKind().(*kmsg.OffsetFetchResponse)
			for _, g := range denied {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.ErrorCode = g, groupCode
				resp.Groups = append(resp.Groups, rg)
			}
			return resp, nil
		}
		return nil, func(resp kmsg.Response) {
			topics(resp)
			or := resp.(*kmsg.OffsetFetchResponse)
			for _, g := range denied {
				rg := kmsg.NewOffsetFetchResponseGroup()
				rg.Group, rg.ErrorCode = g, groupCode
				or.Groups = append(or.Groups, rg)
			}
		}

	case *kmsg.FindCoordinatorRequest:
		typ, code := acl.ResourceGroup, groupCode
		if r.CoordinatorType == 1 {
			typ, code = acl.ResourceTransactionalID, kerr.TransactionalIDAuthorizationFailed.Code
		}
		if req.Version < 4 {
			if !h.allowed(req, acl.OpDescribe, typ, r.CoordinatorKey) {
				resp := r.ResponseKind().(*kmsg.FindCoordinatorResponse)
				resp.ErrorCode, resp.NodeID, resp.Port = code, -1, -1
				return resp, nil
			}
			return nil, nil
		}
		var denied []string
		r.CoordinatorKeys, denied = keep(r.CoordinatorKeys, func(k string) bool { return h.allowed(req, acl.OpDescribe, typ, k) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			fr := resp.(*kmsg.FindCoordinatorResponse)
			for _, k := range denied {
				c := kmsg.NewFindCoordinatorResponseCoordinator()
				c.Key, c.ErrorCode, c.NodeID, c.Port = k, code, -1, -1
				fr.Coordinators = append(fr.Coordinators, c)
			}
		}

	case *kmsg.JoinGroupRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
			resp.ErrorCode, resp.Generation = groupCode, -1
			return resp, nil
		}
	case *kmsg.SyncGroupRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
			resp.ErrorCode = groupCode
			return resp, nil
		}
	case *kmsg.HeartbeatRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
			resp.ErrorCode = groupCode
			return resp, nil
		}
	case *kmsg.LeaveGroupRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
			resp.ErrorCode = groupCode
			return resp, nil
		}
	case *kmsg.ConsumerGroupHeartbeatRequest:
		if !groupOK(acl.OpRead, r.Group) {
			resp := r.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
			resp.ErrorCode = groupCode
			return resp, nil
		}
	case *kmsg.OffsetDeleteRequest:
		if !groupOK(acl.OpDelete, r.Group) {
			resp := r.ResponseKind().(*kmsg.OffsetDeleteResponse)
			resp.ErrorCode = groupCode
			return resp, nil
		}
		var denied []kmsg.OffsetDeleteRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.OffsetDeleteRequestTopic) bool { return topicOK(acl.OpRead, t.Topic) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			or := resp.(*kmsg.OffsetDeleteResponse)
			for _, t := range denied {
				rt := kmsg.NewOffsetDeleteResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewOffsetDeleteResponseTopicPartition()
					rp.Partition, rp.ErrorCode = p.Partition, topicCode
					rt.Partitions = append(rt.Partitions, rp)
				}
				or.Topics = append(or.Topics, rt)
			}
		}

	case *kmsg.DescribeGroupsRequest:
		var denied []string
		r.Groups, denied = keep(r.Groups, func(g string) bool { return groupOK(acl.OpDescribe, g) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DescribeGroupsResponse)
			for _, g := range denied {
				rg := kmsg.NewDescribeGroupsResponseGroup()
				rg.Group, rg.ErrorCode = g, groupCode
				dr.Groups = append(dr.Groups, rg)
			}
		}
	case *kmsg.ConsumerGroupDescribeRequest:
		var denied []string
		r.Groups, denied = keep(r.Groups, func(g string) bool { return groupOK(acl.OpDescribe, g) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.ConsumerGroupDescribeResponse)
			for _, g := range denied {
				rg := kmsg.NewConsumerGroupDescribeResponseGroup()
				rg.Group, rg.ErrorCode = g, groupCode
				dr.Groups = append(dr.Groups, rg)
			}
		}

	case *kmsg.ListGroupsRequest:
		if h.allowedCluster(req, acl.OpDescribe) {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			lr := resp.(*kmsg.ListGroupsResponse)
			kept := lr.Groups[:0]
			for _, g := range lr.Groups {
				if groupOK(acl.OpDescribe, g.Group) {
					kept = append(kept, g)
				}
			}
			lr.Groups = kept
		}

	case *kmsg.DeleteGroupsRequest:
		var denied []string
		r.Groups, denied = keep(r.Groups, func(g string) bool { return groupOK(acl.OpDelete, g) })
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DeleteGroupsResponse)
			for _, g := range denied {
				rg := kmsg.NewDeleteGroupsResponseGroup()
				rg.Group, rg.ErrorCode = g, groupCode
				dr.Groups = append(dr.Groups, rg)
			}
		}

	case *kmsg.InitProducerIDRequest:
		resp := r.ResponseKind().(*kmsg.InitProducerIDResponse)
		resp.ProducerID, resp.ProducerEpoch = -1, -1
		if r.TransactionalID != nil {
			if !h.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, *r.TransactionalID) {
				resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
				return resp, nil
			}
		} else if !h.allowedCluster(req, acl.OpIdempotentWrite) && !h.allowedAnyTopic(req, acl.OpWrite) {
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp, nil
		}

	case *kmsg.DescribeLogDirsRequest:
		if !h.allowedCluster(req, acl.OpDescribe) {
			resp := r.ResponseKind().(*kmsg.DescribeLogDirsResponse)
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp, nil
		}
	case *kmsg.DescribeUserSCRAMCredentialsRequest:
		if !h.allowedCluster(req, acl.OpDescribe) {
			resp := r.ResponseKind().(*kmsg.DescribeUserSCRAMCredentialsResponse)
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp, nil
		}
	case *kmsg.AlterUserSCRAMCredentialsRequest:
		if !h.allowedCluster(req, acl.OpAlter) {
			resp := r.ResponseKind().(*kmsg.AlterUserSCRAMCredentialsResponse)
			seen := map[string]bool{}
			add := func(u string) {
				if !seen[u] {
					seen[u] = true
					res := kmsg.NewAlterUserSCRAMCredentialsResponseResult()
					res.User, res.ErrorCode = u, kerr.ClusterAuthorizationFailed.Code
					resp.Results = append(resp.Results, res)
				}
			}
			for _, d := range r.Deletions {
				add(d.Name)
			}
			for _, u := range r.Upsertions {
				add(u.Name)
			}
			return resp, nil
		}

	default:
		return h.gateAdmin(req)
	}
	return nil, nil
}

// offsetFetchTopics hides the committed offsets of topics the principal may
// not describe: dropped from an all-topics answer, TOPIC_AUTHORIZATION_FAILED
// for a topic the request named (OffsetFetch has no side effect, so the
// answer is filtered after the handler).
func (h *Handler) offsetFetchTopics(req *server.Request) fix {
	ok := func(name string, id [16]byte) bool {
		name = h.topicName(name, id)
		return name == "" || h.allowed(req, acl.OpDescribe, acl.ResourceTopic, name)
	}
	code := kerr.TopicAuthorizationFailed.Code
	// What the request named, taken now: the fix may run after Handle,
	// when the request is no longer to be touched.
	r := req.Msg.(*kmsg.OffsetFetchRequest)
	v0Named, version := r.Topics != nil, req.Version
	groupNamed := map[string]bool{}
	for _, rg := range r.Groups {
		groupNamed[rg.Group] = rg.Topics != nil
	}
	return func(resp kmsg.Response) {
		or := resp.(*kmsg.OffsetFetchResponse)
		if version < 8 {
			named := v0Named
			kept := or.Topics[:0]
			for _, t := range or.Topics {
				if !ok(t.Topic, [16]byte{}) {
					if !named {
						continue
					}
					for i := range t.Partitions {
						t.Partitions[i].Offset, t.Partitions[i].Metadata, t.Partitions[i].ErrorCode = -1, nil, code
					}
				}
				kept = append(kept, t)
			}
			or.Topics = kept
			return
		}
		for gi := range or.Groups {
			g := &or.Groups[gi]
			named, listed := groupNamed[g.Group]
			named = named || !listed
			kept := g.Topics[:0]
			for _, t := range g.Topics {
				if !ok(t.Topic, t.TopicID) {
					if !named {
						continue
					}
					for i := range t.Partitions {
						t.Partitions[i].Offset, t.Partitions[i].Metadata, t.Partitions[i].ErrorCode = -1, nil, code
					}
				}
				kept = append(kept, t)
			}
			g.Topics = kept
		}
	}
}

// keep splits items into those ok passes, kept in place (the request is
// answered for them), and the refused rest, answered after the handler.
func keep[T any](items []T, ok func(T) bool) (kept, refused []T) {
	kept = items[:0]
	for _, it := range items {
		if ok(it) {
			kept = append(kept, it)
		} else {
			refused = append(refused, it)
		}
	}
	return kept, refused
}

// sift is keep for requests answered with something built from each
// refused item: refuse says whether to refuse it and what to answer.
func sift[T, D any](items []T, refuse func(T) (D, bool)) (kept []T, refused []D) {
	kept = items[:0]
	for _, it := range items {
		if d, no := refuse(it); no {
			refused = append(refused, d)
		} else {
			kept = append(kept, it)
		}
	}
	return kept, refused
}
