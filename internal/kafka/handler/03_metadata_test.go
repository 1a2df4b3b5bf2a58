package handler

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
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
