package handler

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestDeleteTopics(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	ctx := admCtx(t)
	admCreate(t, adm, "gone", 2, nil)

	resps, err := adm.DeleteTopics(ctx, "gone", "never-was")
	if err != nil {
		t.Fatal(err)
	}
	if r := resps["gone"]; r.Err != nil {
		t.Fatalf("gone: %v %s", r.Err, r.ErrMessage)
	}
	if r := resps["never-was"]; !errors.Is(r.Err, kerr.UnknownTopicOrPartition) {
		t.Fatalf("never-was: %v", r.Err)
	}
	if mt := admMetadata(t, cl, "gone"); mt.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("metadata after delete: code %d", mt.ErrorCode)
	}
	if ps := b.Cluster.Partitions("gone"); len(ps) != 0 {
		t.Fatalf("partitions left open: %d", len(ps))
	}
	// The name can be used again, with fresh partitions.
	if r := admCreate(t, adm, "gone", 1, nil); r.NumPartitions != 1 {
		t.Fatalf("recreated: %+v", r)
	}
}

func TestDeleteTopicsByID(t *testing.T) {
	b := startBroker(t, "", nil)
	cl := b.client(t)
	adm := kadm.NewClient(cl)
	byID := admCreate(t, adm, "by-id", 1, nil)
	admCreate(t, adm, "named-twice", 1, nil)
	admCreate(t, adm, "name-and-id", 1, nil)

	entry := func(name string, id [16]byte) kmsg.DeleteTopicsRequestTopic {
		rt := kmsg.NewDeleteTopicsRequestTopic()
		if name != "" {
			rt.Topic = kmsg.StringPtr(name)
		}
		rt.TopicID = id
		return rt
	}
	twice := admMetadata(t, cl, "named-twice").TopicID
	unknownID := [16]byte{1, 2, 3}
	req := kmsg.NewPtrDeleteTopicsRequest()
	req.Topics = []kmsg.DeleteTopicsRequestTopic{
		entry("", byID.ID),
		entry("", unknownID),
		entry("named-twice", [16]byte{}),
		entry("", twice),
		entry("name-and-id", unknownID),
		entry("", [16]byte{}),
	}
	resp := admRaw[*kmsg.DeleteTopicsResponse](t, cl, req)
	if len(resp.Topics) != len(req.Topics) {
		t.Fatalf("%d answers for %d entries", len(resp.Topics), len(req.Topics))
	}
	want := []int16{0, kerr.UnknownTopicID.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code, kerr.InvalidRequest.Code}
	for i, st := range resp.Topics {
		if st.ErrorCode != want[i] {
			t.Errorf("entry %d: code %d (%v), want %d", i, st.ErrorCode, st.ErrorMessage, want[i])
		}
	}
	if st := resp.Topics[0]; st.Topic == nil || *st.Topic != "by-id" || st.TopicID != byID.ID {
		t.Fatalf("by id answered as %v %x", st.Topic, st.TopicID)
	}
	if _, ok := b.Cluster.Topic("by-id"); ok {
		t.Fatal("by-id not deleted")
	}
	for _, name := range []string{"named-twice", "name-and-id"} {
		if _, ok := b.Cluster.Topic(name); !ok {
			t.Fatalf("%s deleted by a refused entry", name)
		}
	}
}
