package handler

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/acl"
	"github.com/stromhq/strom/internal/kafka/server"
)

// gateMetadata lists only the topics the principal may describe, answers
// TOPIC_AUTHORIZATION_FAILED for a named one it may not, and lets a named
// topic be auto-created only with CREATE on the cluster or the topic
// (UNKNOWN_TOPIC_OR_PARTITION otherwise, as Kafka).
func (h *Handler) gateMetadata(req *server.Request, r *kmsg.MetadataRequest) fix {
	if r.Topics == nil {
		return func(resp kmsg.Response) {
			mr := resp.(*kmsg.MetadataResponse)
			kept := mr.Topics[:0]
			for _, t := range mr.Topics {
				if t.Topic != nil && h.allowed(req, acl.OpDescribe, acl.ResourceTopic, *t.Topic) {
					kept = append(kept, t)
				}
			}
			mr.Topics = kept
		}
	}
	type refused struct {
		name string
		id   [16]byte
		code int16
	}
	var out []refused
	createCluster := h.allowedCluster(req, acl.OpCreate)
	kept := r.Topics[:0]
	for _, t := range r.Topics {
		name := ""
		if t.Topic != nil {
			name = *t.Topic
		} else {
			name = h.topicName("", t.TopicID)
		}
		if name == "" {
			kept = append(kept, t)
			continue
		}
		if !h.allowed(req, acl.OpDescribe, acl.ResourceTopic, name) {
			out = append(out, refused{name, t.TopicID, kerr.TopicAuthorizationFailed.Code})
			continue
		}
		if _, exists := h.c.Topic(name); !exists && r.AllowAutoTopicCreation && !createCluster &&
			!h.allowed(req, acl.OpCreate, acl.ResourceTopic, name) {
			out = append(out, refused{name, t.TopicID, kerr.UnknownTopicOrPartition.Code})
			continue
		}
		kept = append(kept, t)
	}
	r.Topics = kept
	if len(out) == 0 {
		return nil
	}
	if len(kept) == 0 {
		// An empty list would mean "all topics" to the handler; none
		// is asked for, so keep it non-nil and empty.
		r.Topics = []kmsg.MetadataRequestTopic{}
	}
	allListed := len(kept) == 0 && req.Version == 0 // v0: no topics means all
	return func(resp kmsg.Response) {
		mr := resp.(*kmsg.MetadataResponse)
		if allListed {
			mr.Topics = nil
		}
		for _, o := range out {
			t := kmsg.NewMetadataResponseTopic()
			t.Topic, t.TopicID, t.ErrorCode = kmsg.StringPtr(o.name), o.id, o.code
			mr.Topics = append(mr.Topics, t)
		}
	}
}

// gateAdmin checks the topic and config administration APIs.
func (h *Handler) gateAdmin(req *server.Request) (deny kmsg.Response, f fix) {
	topicCode := kerr.TopicAuthorizationFailed.Code
	switch r := req.Msg.(type) {
	case *kmsg.CreateTopicsRequest:
		if h.allowedCluster(req, acl.OpCreate) {
			return nil, nil
		}
		var denied []kmsg.CreateTopicsRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.CreateTopicsRequestTopic) bool {
			return h.allowed(req, acl.OpCreate, acl.ResourceTopic, t.Topic)
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			cr := resp.(*kmsg.CreateTopicsResponse)
			for _, d := range denied {
				t := kmsg.NewCreateTopicsResponseTopic()
				t.Topic, t.ErrorCode, t.NumPartitions, t.ReplicationFactor = d.Topic, topicCode, -1, -1
				cr.Topics = append(cr.Topics, t)
			}
		}

	case *kmsg.DeleteTopicsRequest:
		var denied []kmsg.DeleteTopicsResponseTopic
		refuse := func(name string, id [16]byte) bool {
			if name == "" || h.allowed(req, acl.OpDelete, acl.ResourceTopic, name) {
				return false
			}
			t := kmsg.NewDeleteTopicsResponseTopic()
			t.Topic, t.TopicID, t.ErrorCode = kmsg.StringPtr(name), id, topicCode
			denied = append(denied, t)
			return true
		}
		keptNames := r.TopicNames[:0]
		for _, n := range r.TopicNames {
			if !refuse(n, [16]byte{}) {
				keptNames = append(keptNames, n)
			}
		}
		r.TopicNames = keptNames
		kept := r.Topics[:0]
		for _, t := range r.Topics {
			name := ""
			if t.Topic != nil {
				name = *t.Topic
			}
			if !refuse(h.topicName(name, t.TopicID), t.TopicID) {
				kept = append(kept, t)
			}
		}
		r.Topics = kept
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DeleteTopicsResponse)
			dr.Topics = append(dr.Topics, denied...)
		}

	case *kmsg.DeleteRecordsRequest:
		var denied []kmsg.DeleteRecordsRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.DeleteRecordsRequestTopic) bool {
			return h.allowed(req, acl.OpDelete, acl.ResourceTopic, t.Topic)
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DeleteRecordsResponse)
			for _, t := range denied {
				rt := kmsg.NewDeleteRecordsResponseTopic()
				rt.Topic = t.Topic
				for _, p := range t.Partitions {
					rp := kmsg.NewDeleteRecordsResponseTopicPartition()
					rp.Partition, rp.ErrorCode, rp.LowWatermark = p.Partition, topicCode, -1
					rt.Partitions = append(rt.Partitions, rp)
				}
				dr.Topics = append(dr.Topics, rt)
			}
		}

	case *kmsg.CreatePartitionsRequest:
		var denied []kmsg.CreatePartitionsRequestTopic
		r.Topics, denied = keep(r.Topics, func(t kmsg.CreatePartitionsRequestTopic) bool {
			return h.allowed(req, acl.OpAlter, acl.ResourceTopic, t.Topic)
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			cr := resp.(*kmsg.CreatePartitionsResponse)
			for _, d := range denied {
				t := kmsg.NewCreatePartitionsResponseTopic()
				t.Topic, t.ErrorCode = d.Topic, topicCode
				cr.Topics = append(cr.Topics, t)
			}
		}

	case *kmsg.DescribeConfigsRequest:
		type res struct {
			typ  kmsg.ConfigResourceType
			name string
			code int16
		}
		var denied []res
		kept := r.Resources[:0]
		for _, c := range r.Resources {
			if code := h.configCode(req, acl.OpDescribeConfigs, c.ResourceType, c.ResourceName); code != 0 {
				denied = append(denied, res{c.ResourceType, c.ResourceName, code})
				continue
			}
			kept = append(kept, c)
		}
		r.Resources = kept
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			dr := resp.(*kmsg.DescribeConfigsResponse)
			for _, d := range denied {
				c := kmsg.NewDescribeConfigsResponseResource()
				c.ResourceType, c.ResourceName, c.ErrorCode = d.typ, d.name, d.code
				dr.Resources = append(dr.Resources, c)
			}
		}

	case *kmsg.AlterConfigsRequest:
		var denied []kmsg.AlterConfigsResponseResource
		r.Resources, denied = sift(r.Resources, func(c kmsg.AlterConfigsRequestResource) (d kmsg.AlterConfigsResponseResource, refused bool) {
			code := h.configCode(req, acl.OpAlterConfigs, c.ResourceType, c.ResourceName)
			d = kmsg.NewAlterConfigsResponseResource()
			d.ResourceType, d.ResourceName, d.ErrorCode = c.ResourceType, c.ResourceName, code
			return d, code != 0
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			ar := resp.(*kmsg.AlterConfigsResponse)
			ar.Resources = append(ar.Resources, denied...)
		}

	case *kmsg.IncrementalAlterConfigsRequest:
		var denied []kmsg.IncrementalAlterConfigsResponseResource
		r.Resources, denied = sift(r.Resources, func(c kmsg.IncrementalAlterConfigsRequestResource) (d kmsg.IncrementalAlterConfigsResponseResource, refused bool) {
			code := h.configCode(req, acl.OpAlterConfigs, c.ResourceType, c.ResourceName)
			d = kmsg.NewIncrementalAlterConfigsResponseResource()
			d.ResourceType, d.ResourceName, d.ErrorCode = c.ResourceType, c.ResourceName, code
			return d, code != 0
		})
		if len(denied) == 0 {
			return nil, nil
		}
		return nil, func(resp kmsg.Response) {
			ar := resp.(*kmsg.IncrementalAlterConfigsResponse)
			ar.Resources = append(ar.Resources, denied...)
		}
	}
	return h.gateTxn(req)
}

// configCode is the error for a config resource the principal may not
// touch with op: topics by their name, brokers (and broker loggers) as the
// cluster. 0 means allowed (or a resource type the handler refuses).
func (h *Handler) configCode(req *server.Request, op acl.Operation, typ kmsg.ConfigResourceType, name string) int16 {
	switch typ {
	case kmsg.ConfigResourceTypeTopic:
		if !h.allowed(req, op, acl.ResourceTopic, name) {
			return kerr.TopicAuthorizationFailed.Code
		}
	case kmsg.ConfigResourceTypeBroker, kmsg.ConfigResourceTypeBrokerLogger:
		if !h.allowedCluster(req, op) {
			return kerr.ClusterAuthorizationFailed.Code
		}
	}
	return 0
}
