package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A single node has no metadata quorum: DescribeQuorum answers
// UNKNOWN_TOPIC_OR_PARTITION with a message and no leader. (The
// cluster's answer is tested in test/cluster, TestClusterDescribeQuorum.)
func TestDescribeQuorumSingleNode(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	{
		req := kmsg.NewPtrDescribeQuorumRequest()
		rt := kmsg.NewDescribeQuorumRequestTopic()
		rt.Topic = MetadataTopic
		rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
		req.Topics = append(req.Topics, rt)
		resp := admRaw[*kmsg.DescribeQuorumResponse](t, cl, req)
		if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
			t.Fatalf("%+v", resp)
		}
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != kerr.UnknownTopicOrPartition.Code || p.ErrorMessage == nil || p.LeaderID != -1 || len(p.CurrentVoters) != 0 {
			t.Fatalf("%+v", p)
		}
	}
}
