package handler

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// gateTxn: the transaction APIs, as Kafka's KafkaApis checks them.
//
//	API                      checks
//	AddPartitionsToTxn v0-3  WRITE transactional id; WRITE topic (the
//	                         others OPERATION_NOT_ATTEMPTED)
//	AddPartitionsToTxn v4+   CLUSTER_ACTION cluster (brokers verifying a
//	                         write, KIP-890)
//	AddOffsetsToTxn          WRITE transactional id; READ group
//	EndTxn                   WRITE transactional id
//	TxnOffsetCommit          WRITE transactional id; READ group; READ topic
//	WriteTxnMarkers          CLUSTER_ACTION cluster (the coordinator's
//	                         broker)
//
// The inter-broker client authenticates as the broker's own principal
// (interbroker.go in package broker): with ACLs on it must be in
// super.users or be allowed CLUSTER_ACTION on the cluster.
func (h *Handler) gateTxn(req *server.Request) (deny kmsg.Response, f fix) {
	txnOK := func(id string) bool { return h.allowed(req, acl.OpWrite, acl.ResourceTransactionalID, id) }
	switch r := req.Msg.(type) {
	case *kmsg.WriteTxnMarkersRequest:
		if h.allowedCluster(req, acl.OpClusterAction) {
			return nil, nil
		}
		resp := r.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
		for _, m := range r.Markers {
			rm := kmsg.NewWriteTxnMarkersResponseMarker()
			rm.ProducerID = m.ProducerID
			for _, t := range m.Topics {
				rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					rp.Partition, rp.ErrorCode = p, kerr.ClusterAuthorizationFailed.Code
					rt.Partitions = append(rt.Partitions, rp)
				}
				rm.Topics = append(rm.Topics, rt)
			}
			resp.Markers = append(resp.Markers, rm)
		}
		return resp, nil

	case *kmsg.AddPartitionsToTxnRequest:
		resp := r.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
		if req.Version >= 4 {
			if h.allowedCluster(req, acl.OpClusterAction) {
				return nil, nil
			}
			resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			return resp, nil
		}
		txnDenied := !txnOK(r.TransactionalID)
		denied := map[string]bool{}
		for _, t := range r.Topics {
			if !txnDenied && !h.allowed(req, acl.OpWrite, acl.ResourceTopic, t.Topic) {
				denied[t.Topic] = true
			}
		}
		if !txnDenied && len(denied) == 0 {
			return nil, nil
		}
		for _, t := range r.Topics {
			rt := kmsg.NewAddPartitionsToTxnResponseTopic()
			rt.Topic = t.Topic
			code := kerr.OperationNotAttempted.Code
			switch {
			case txnDenied:
				code = kerr.TransactionalIDAuthorizationFailed.Code
			case denied[t.Topic]:
				code = kerr.TopicAuthorizationFailed.Code
			}
			for _, p := range t.Partitions {
				rp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil

	case *kmsg.AddOffsetsToTxnRequest:
		resp := r.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
		switch {
		case !txnOK(r.TransactionalID):
			resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		case !h.allowed(req, acl.OpRead, acl.ResourceGroup, r.Group):
			resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		default:
			return nil, nil
		}
		return resp, nil

	case *kmsg.EndTxnRequest:
		if txnOK(r.TransactionalID) {
			return nil, nil
		}
		resp := r.ResponseKind().(*kmsg.EndTxnResponse)
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil

	case *kmsg.TxnOffsetCommitRequest:
		code := int16(0)
		switch {
		case !txnOK(r.TransactionalID):
			code = kerr.TransactionalIDAuthorizationFailed.Code
		case !h.allowed(req, acl.OpRead, acl.ResourceGroup, r.Group):
			code = kerr.GroupAuthorizationFailed.Code
		}
		answer := func(t kmsg.TxnOffsetCommitRequestTopic, code int16) kmsg.TxnOffsetCommitResponseTopic {
			rt := kmsg.NewTxnOffsetCommitResponseTopic()
			rt.Topic = t.Topic
			for _, p := range t.Partitions {
				rp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				rp.Partition, rp.ErrorCode = p.Partition, code
				rt.Partitions = append(rt.Partitions, rp)
			}
			return rt
		}
		if code != 0 {
			resp := r.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
			for _, t := range r.Topics {
				resp.Topics = append(resp.Topics, answer(t, code))
			}
			return resp, nil
		}
		var refused []kmsg.TxnOffsetCommitResponseTopic
		r.Topics, refused = sift(r.Topics, func(t kmsg.TxnOffsetCommitRequestTopic) (kmsg.TxnOffsetCommitResponseTopic, bool) {
			if h.allowed(req, acl.OpRead, acl.ResourceTopic, t.Topic) {
				return kmsg.TxnOffsetCommitResponseTopic{}, false
			}
			return answer(t, kerr.TopicAuthorizationFailed.Code), true
		})
		if len(refused) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			tr := resp.(*kmsg.TxnOffsetCommitResponse)
			tr.Topics = append(tr.Topics, refused...)
		}
	}
	return nil, nil
}
