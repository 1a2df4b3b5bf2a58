package hostile

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Names the fuzzer's requests use. The normal client's topic is far from all
// of them, so that no mutation of a name can plausibly reach it.
const (
	fuzzTopic      = "fz-a"
	fuzzTopicNew   = "fz-b"
	fuzzGroup      = "fz-g"
	fuzzGroup848   = "fz-c"
	fuzzClientID   = "fuzz"
	normalTopic    = "strom-live-fuzz-normal-records-7c1d"
	maxSeedVersion = 127
)

// seed is one valid request frame, size prefix included.
type seed struct {
	key, version int16
	frame        []byte
}

// seedFrames encodes a request for every API key and version the broker
// serves: populated ones for the keys below, kmsg's defaults for the rest.
func seedFrames(apiKeys []kmsg.ApiVersionsResponseApiKey) []seed {
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID(fuzzClientID))
	var out []seed
	for _, k := range apiKeys {
		for v := k.MinVersion; v <= min(k.MaxVersion, maxSeedVersion); v++ {
			req := populated(k.ApiKey)
			if req == nil {
				if req = kmsg.RequestForKey(k.ApiKey); req == nil {
					break
				}
			}
			if v > req.MaxVersion() {
				break
			}
			req.SetVersion(v)
			out = append(out, seed{key: k.ApiKey, version: v, frame: f.AppendRequest(nil, req, int32(len(out)+1))})
		}
	}
	return out
}

// populated returns a request of key with its fields filled as a client
// would fill them, or nil for the keys left at kmsg's defaults.
func populated(key int16) kmsg.Request {
	switch key {
	case 0:
		r := kmsg.NewPtrProduceRequest()
		r.Acks, r.TimeoutMillis = 1, 1000
		t := kmsg.NewProduceRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewProduceRequestTopicPartition()
		p.Records = recordBatch(3)
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 1:
		r := kmsg.NewPtrFetchRequest()
		r.MaxWaitMillis, r.MinBytes, r.MaxBytes = 50, 1, 1<<20
		t := kmsg.NewFetchRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewFetchRequestTopicPartition()
		p.PartitionMaxBytes = 1 << 20
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 2:
		r := kmsg.NewPtrListOffsetsRequest()
		t := kmsg.NewListOffsetsRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewListOffsetsRequestTopicPartition()
		p.Timestamp = -1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 3:
		r := kmsg.NewPtrMetadataRequest()
		for _, name := range []string{fuzzTopic, fuzzTopicNew} {
			t := kmsg.NewMetadataRequestTopic()
			t.Topic = kmsg.StringPtr(name)
			r.Topics = append(r.Topics, t)
		}
		r.AllowAutoTopicCreation = true
		return r
	case 8:
		r := kmsg.NewPtrOffsetCommitRequest()
		r.Group, r.Generation, r.MemberID = fuzzGroup, -1, ""
		t := kmsg.NewOffsetCommitRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewOffsetCommitRequestTopicPartition()
		p.Offset, p.Metadata = 1, kmsg.StringPtr("m")
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 9:
		r := kmsg.NewPtrOffsetFetchRequest()
		r.Group = fuzzGroup
		g := kmsg.NewOffsetFetchRequestGroup()
		g.Group = fuzzGroup
		r.Groups = append(r.Groups, g)
		return r
	case 10:
		r := kmsg.NewPtrFindCoordinatorRequest()
		r.CoordinatorKey, r.CoordinatorKeys = fuzzGroup, []string{fuzzGroup}
		return r
	case 11:
		r := kmsg.NewPtrJoinGroupRequest()
		r.Group, r.ProtocolType = fuzzGroup, "consumer"
		r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 6000, 1000
		p := kmsg.NewJoinGroupRequestProtocol()
		p.Name, p.Metadata = "range", []byte{0, 1, 0, 0, 0, 1, 0, 4, 'f', 'z', '-', 'a', 0, 0, 0, 0}
		r.Protocols = append(r.Protocols, p)
		return r
	case 12:
		r := kmsg.NewPtrHeartbeatRequest()
		r.Group, r.Generation, r.MemberID = fuzzGroup, 1, "m"
		return r
	case 13:
		r := kmsg.NewPtrLeaveGroupRequest()
		r.Group, r.MemberID = fuzzGroup, "m"
		m := kmsg.NewLeaveGroupRequestMember()
		m.MemberID = "m"
		r.Members = append(r.Members, m)
		return r
	case 14:
		r := kmsg.NewPtrSyncGroupRequest()
		r.Group, r.Generation, r.MemberID = fuzzGroup, 1, "m"
		a := kmsg.NewSyncGroupRequestGroupAssignment()
		a.MemberID, a.MemberAssignment = "m", []byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
		r.GroupAssignment = append(r.GroupAssignment, a)
		return r
	case 15:
		r := kmsg.NewPtrDescribeGroupsRequest()
		r.Groups = []string{fuzzGroup, fuzzGroup848}
		return r
	case 19:
		r := kmsg.NewPtrCreateTopicsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = fuzzTopicNew, 2, 1
		c := kmsg.NewCreateTopicsRequestTopicConfig()
		c.Name, c.Value = "retention.ms", kmsg.StringPtr("600000")
		t.Configs = append(t.Configs, c)
		r.Topics = append(r.Topics, t)
		return r
	case 20:
		r := kmsg.NewPtrDeleteTopicsRequest()
		r.TimeoutMillis = 1000
		r.TopicNames = []string{fuzzTopicNew}
		t := kmsg.NewDeleteTopicsRequestTopic()
		t.Topic = kmsg.StringPtr(fuzzTopicNew)
		r.Topics = append(r.Topics, t)
		return r
	case 21:
		r := kmsg.NewPtrDeleteRecordsRequest()
		t := kmsg.NewDeleteRecordsRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewDeleteRecordsRequestTopicPartition()
		p.Offset = 1
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 23:
		r := kmsg.NewPtrOffsetForLeaderEpochRequest()
		t := kmsg.NewOffsetForLeaderEpochRequestTopic()
		t.Topic = fuzzTopic
		p := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		t.Partitions = append(t.Partitions, p)
		r.Topics = append(r.Topics, t)
		return r
	case 32:
		r := kmsg.NewPtrDescribeConfigsRequest()
		for _, res := range []struct {
			t    kmsg.ConfigResourceType
			name string
		}{{kmsg.ConfigResourceTypeTopic, fuzzTopic}, {kmsg.ConfigResourceTypeBroker, "0"}} {
			c := kmsg.NewDescribeConfigsRequestResource()
			c.ResourceType, c.ResourceName = res.t, res.name
			r.Resources = append(r.Resources, c)
		}
		return r
	case 33:
		r := kmsg.NewPtrAlterConfigsRequest()
		c := kmsg.NewAlterConfigsRequestResource()
		c.ResourceType, c.ResourceName = kmsg.ConfigResourceTypeTopic, fuzzTopic
		cfg := kmsg.NewAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("600000")
		c.Configs = append(c.Configs, cfg)
		r.Resources = append(r.Resources, c)
		return r
	case 37:
		r := kmsg.NewPtrCreatePartitionsRequest()
		r.TimeoutMillis = 1000
		t := kmsg.NewCreatePartitionsRequestTopic()
		t.Topic, t.Count = fuzzTopicNew, 3
		r.Topics = append(r.Topics, t)
		return r
	case 42:
		r := kmsg.NewPtrDeleteGroupsRequest()
		r.Groups = []string{fuzzGroup}
		return r
	case 44:
		r := kmsg.NewPtrIncrementalAlterConfigsRequest()
		c := kmsg.NewIncrementalAlterConfigsRequestResource()
		c.ResourceType, c.ResourceName = kmsg.ConfigResourceTypeTopic, fuzzTopic
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name, cfg.Value = "retention.ms", kmsg.StringPtr("600000")
		c.Configs = append(c.Configs, cfg)
		r.Resources = append(r.Resources, c)
		return r
	case 47:
		r := kmsg.NewPtrOffsetDeleteRequest()
		r.Group = fuzzGroup
		t := kmsg.NewOffsetDeleteRequestTopic()
		t.Topic = fuzzTopic
		t.Partitions = append(t.Partitions, kmsg.NewOffsetDeleteRequestTopicPartition())
		r.Topics = append(r.Topics, t)
		return r
	case 68:
		r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		r.Group, r.MemberID, r.MemberEpoch = fuzzGroup848, "", 0
		r.RebalanceTimeoutMillis = 1000
		r.SubscribedTopicNames = []string{fuzzTopic}
		return r
	case 69:
		r := kmsg.NewPtrConsumerGroupDescribeRequest()
		r.Groups = []string{fuzzGroup848}
		return r
	}
	return nil
}

// recordBatch is a valid uncompressed RecordBatch v2 of n small records.
//
//	baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 |
//	magic int8 (2) | crc uint32 (CRC-32C of attributes..end) |
//	attributes int16 | lastOffsetDelta int32 | firstTimestamp int64 |
//	maxTimestamp int64 | producerId int64 | producerEpoch int16 |
//	baseSequence int32 | records int32 | records...
func recordBatch(n int) []byte {
	var recs []byte
	for i := range n {
		var r []byte
		r = append(r, 0)                     // attributes
		r = binary.AppendVarint(r, 0)        // timestamp delta
		r = binary.AppendVarint(r, int64(i)) // offset delta
		r = binary.AppendVarint(r, -1)       // null key
		v := []byte("fuzz value")
		r = binary.AppendVarint(r, int64(len(v)))
		r = append(r, v...)
		r = binary.AppendVarint(r, 0) // headers
		recs = binary.AppendVarint(recs, int64(len(r)))
		recs = append(recs, r...)
	}
	b := binary.BigEndian.AppendUint64(nil, 0)
	b = binary.BigEndian.AppendUint32(b, 0) // length, below
	b = binary.BigEndian.AppendUint32(b, 0)
	b = append(b, 2)
	crcAt := len(b)
	b = binary.BigEndian.AppendUint32(b, 0) // crc, below
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(n-1))
	b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000)
	b = binary.BigEndian.AppendUint64(b, 1_700_000_000_000)
	b = binary.BigEndian.AppendUint64(b, ^uint64(0)) // producer id -1
	b = binary.BigEndian.AppendUint16(b, 0xffff)     // epoch -1
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // sequence -1
	b = binary.BigEndian.AppendUint32(b, uint32(n))
	b = append(b, recs...)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[crcAt:], crc32.Checksum(b[crcAt+4:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}
