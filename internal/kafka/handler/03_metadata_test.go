package handler

import (
	"context"
	"math"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestMetadataAutoCreateAndIDs(t *testing.T) {
	b := startBroker(t, "", map[string]string{"num.partitions": "3"})
	cl := b.client(t)
	ctx := context.Background()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("auto-made")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = true
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Topics) != 1 || resp.Topics[0].ErrorCode != 0 || len(resp.Topics[0].Partitions) != 3 {
		t.Fatalf("auto-created topic: %+v", resp.Topics)
	}
	id := resp.Topics[0].TopicID
	if id == [16]byte{} {
		t.Fatal("no topic id")
	}
	// By id alone.
	req2 := kmsg.NewPtrMetadataRequest()
	rt2 := kmsg.NewMetadataRequestTopic()
	rt2.TopicID = id
	req2.Topics = append(req2.Topics, rt2)
	resp2, err := req2.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp2.Topics) != 1 || resp2.Topics[0].Topic == nil || *resp2.Topics[0].Topic != "auto-made" {
		t.Fatalf("by id: %+v", resp2.Topics)
	}
	// Not created when the request forbids it; invalid names are reported.
	req3 := kmsg.NewPtrMetadataRequest()
	for _, n := range []string{"not-allowed", "bad/name"} {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req3.Topics = append(req3.Topics, rt)
	}
	resp3, err := req3.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	if resp3.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code || resp3.Topics[1].ErrorCode != kerr.InvalidTopicException.Code {
		t.Fatalf("codes %d %d", resp3.Topics[0].ErrorCode, resp3.Topics[1].ErrorCode)
	}
	if len(b.Cluster.Topics()) != 1 {
		t.Fatalf("topics %v", b.Cluster.Topics())
	}
}

// Issue 15 item 10: asked for, the authorized operations are what Kafka
// answers without an authorizer (librdkafka's test 0081 checks them); not
// asked for, INT32_MIN.
func TestMetadataAuthorizedOperations(t *testing.T) {
	b := startBroker(t, "", nil)
	ctx := context.Background()
	if _, err := b.Cluster.CreateTopic("ops", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	// READ WRITE CREATE DELETE ALTER DESCRIBE DESCRIBE_CONFIGS ALTER_CONFIGS
	const wantTopic = 1<<3 | 1<<4 | 1<<5 | 1<<6 | 1<<7 | 1<<8 | 1<<10 | 1<<11
	// CREATE ALTER DESCRIBE CLUSTER_ACTION DESCRIBE_CONFIGS ALTER_CONFIGS IDEMPOTENT_WRITE
	const wantCluster = 1<<5 | 1<<7 | 1<<8 | 1<<9 | 1<<10 | 1<<11 | 1<<12
	for v := int16(8); v <= 13; v++ {
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(3, v) // kgo sends its highest version otherwise
		cl := b.client(t, kgo.MaxVersions(versions))
		for _, ask := range []bool{false, true} {
			req := kmsg.NewPtrMetadataRequest()
			req.IncludeTopicAuthorizedOperations, req.IncludeClusterAuthorizedOperations = ask, ask
			for _, n := range []string{"ops", "missing"} {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(n)
				req.Topics = append(req.Topics, rt)
			}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Fatal(err)
			}
			if resp.Version != v {
				t.Fatalf("sent v%d, want v%d", resp.Version, v)
			}
			topic, cluster := int32(math.MinInt32), int32(math.MinInt32)
			if ask {
				topic = wantTopic
				if v <= 10 {
					cluster = wantCluster
				}
			}
			if v <= 10 && resp.AuthorizedOperations != cluster {
				t.Errorf("v%d asked %v: cluster operations %d, want %d", v, ask, resp.AuthorizedOperations, cluster)
			}
			for _, rt := range resp.Topics {
				if rt.AuthorizedOperations != topic {
					t.Errorf("v%d asked %v: topic %s operations %d, want %d", v, ask, *rt.Topic, rt.AuthorizedOperations, topic)
				}
			}
		}
	}
}
