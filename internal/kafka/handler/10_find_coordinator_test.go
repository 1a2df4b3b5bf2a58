package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestFindCoordinatorCreatesOffsetsTopic: the first lookup of a group's
// coordinator creates __consumer_offsets, internal, as Kafka does (franz-go's
// suite waits for it in Metadata after a FindCoordinator); a transaction
// key does not, and bad keys are refused at every version.
func TestFindCoordinatorCreatesOffsetsTopic(t *testing.T) {
	b := startBroker(t, "", nil)
	dc := dpDial(t, b.Addr)
	offsetsTopic := func() (found, internal bool) {
		req := kmsg.NewPtrMetadataRequest()
		req.Version = 12
		topic := kmsg.NewMetadataRequestTopic()
		topic.Topic = kmsg.StringPtr("__consumer_offsets")
		req.Topics = append(req.Topics, topic)
		resp := dpDo[*kmsg.MetadataResponse](dc, req)
		return resp.Topics[0].ErrorCode == 0, resp.Topics[0].IsInternal
	}
	if found, _ := offsetsTopic(); found {
		t.Fatal("__consumer_offsets exists before any group was looked up")
	}

	txn := kmsg.NewPtrFindCoordinatorRequest()
	txn.Version, txn.CoordinatorType, txn.CoordinatorKeys = 4, 1, []string{"txn"}
	if resp := dpDo[*kmsg.FindCoordinatorResponse](dc, txn); resp.Coordinators[0].ErrorCode != 0 {
		t.Fatal(kerr.ErrorForCode(resp.Coordinators[0].ErrorCode))
	}
	if found, _ := offsetsTopic(); found {
		t.Fatal("a transaction key created __consumer_offsets")
	}

	for v := int16(0); v <= 6; v++ {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.Version, req.CoordinatorKey, req.CoordinatorKeys = v, "g", []string{"g", ""}
		resp := dpDo[*kmsg.FindCoordinatorResponse](dc, req)
		if v < 4 {
			if resp.ErrorCode != 0 || resp.NodeID != b.Cluster.NodeID() {
				t.Fatalf("v%d: %+v", v, resp)
			}
			continue
		}
		if len(resp.Coordinators) != 2 || resp.Coordinators[0].ErrorCode != 0 ||
			resp.Coordinators[1].ErrorCode != kerr.InvalidGroupID.Code {
			t.Fatalf("v%d: %+v", v, resp.Coordinators)
		}
	}
	if found, internal := offsetsTopic(); !found || !internal {
		t.Fatalf("after a group lookup __consumer_offsets found %v, internal %v; want both", found, internal)
	}

	bad := kmsg.NewPtrFindCoordinatorRequest()
	bad.Version, bad.CoordinatorType, bad.CoordinatorKey = 3, 2, "g"
	if resp := dpDo[*kmsg.FindCoordinatorResponse](dc, bad); resp.ErrorCode != kerr.InvalidRequest.Code || resp.NodeID != -1 {
		t.Fatalf("key type 2: %+v", resp)
	}
}
