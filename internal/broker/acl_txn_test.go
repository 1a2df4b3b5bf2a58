package broker

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestACLsTxnAPIs: with ACLs on, the brokers' transaction requests
// (WriteTxnMarkers, AddPartitionsToTxn v4+ verification) need
// CLUSTER_ACTION on the cluster, and the clients' (AddPartitionsToTxn
// v0-3, AddOffsetsToTxn, EndTxn, TxnOffsetCommit) WRITE on the
// transactional id, as in Kafka. Before, none was checked: anyone could
// write commit or abort markers into any partition.
func TestACLsTxnAPIs(t *testing.T) {
	_, client := aclBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin, alice, bob := client("admin"), client("alice"), client("bob")
	adm := kadm.NewClient(admin)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:alice").Clusters().Operations(kadm.OpClusterAction))
	if err != nil || res[0].Err != nil {
		t.Fatalf("create acl: %v %+v", err, res)
	}

	brokers, err := adm.ListBrokers(ctx)
	if err != nil || len(brokers) != 1 {
		t.Fatalf("brokers: %v %v", brokers, err)
	}
	node := int(brokers[0].NodeID) // sent to the broker itself: a client would shard it by topic, and bob may not describe "t"
	markers := func(who string) int16 {
		cl := map[string]*kgo.Client{"admin": admin, "alice": alice, "bob": bob}[who]
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		m := kmsg.NewWriteTxnMarkersRequestMarker()
		m.ProducerID, m.ProducerEpoch, m.Committed = 12345, 0, false
		mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
		mt.Topic, mt.Partitions = "t", []int32{0}
		m.Topics = append(m.Topics, mt)
		req.Markers = append(req.Markers, m)
		resp, err := req.RequestWith(ctx, cl.Broker(node))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Markers[0].Topics[0].Partitions[0].ErrorCode
	}
	verify := func(who string) int16 {
		cl := map[string]*kgo.Client{"admin": admin, "alice": alice, "bob": bob}[who]
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = "x", 12345, 0, true
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = "t", []int32{0}
		tr.Topics = append(tr.Topics, tt)
		req.Transactions = append(req.Transactions, tr)
		resp, err := req.RequestWith(ctx, cl.Broker(node))
		if err != nil {
			t.Fatal(err)
		}
		if resp.Version < 4 {
			t.Fatalf("answered v%d", resp.Version)
		}
		return resp.ErrorCode
	}
	cae := kerr.ClusterAuthorizationFailed.Code
	if c := markers("bob"); c != cae {
		t.Fatalf("bob's WriteTxnMarkers: %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(c))
	}
	if c := verify("bob"); c != cae {
		t.Fatalf("bob's AddPartitionsToTxn verification: %v, want CLUSTER_AUTHORIZATION_FAILED", kerr.ErrorForCode(c))
	}
	for _, who := range []string{"admin", "alice"} { // a super user; CLUSTER_ACTION allowed
		if c := markers(who); c == cae {
			t.Fatalf("%s's WriteTxnMarkers refused", who)
		}
		if c := verify(who); c == cae {
			t.Fatalf("%s's AddPartitionsToTxn verification refused", who)
		}
	}

	tide := kerr.TransactionalIDAuthorizationFailed.Code
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch = "x", 12345, 0
	if resp, err := end.RequestWith(ctx, bob.Broker(node)); err != nil || resp.ErrorCode != tide {
		t.Fatalf("bob's EndTxn: %v %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err, resp)
	}
	addOff := kmsg.NewPtrAddOffsetsToTxnRequest()
	addOff.TransactionalID, addOff.ProducerID, addOff.Group = "x", 12345, "g"
	if resp, err := addOff.RequestWith(ctx, bob.Broker(node)); err != nil || resp.ErrorCode != tide {
		t.Fatalf("bob's AddOffsetsToTxn: %v %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err, resp)
	}
	toc := kmsg.NewPtrTxnOffsetCommitRequest()
	toc.TransactionalID, toc.Group, toc.ProducerID = "x", "g", 12345
	tt := kmsg.NewTxnOffsetCommitRequestTopic()
	tt.Topic = "t"
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tt.Partitions = append(tt.Partitions, tp)
	toc.Topics = append(toc.Topics, tt)
	if resp, err := toc.RequestWith(ctx, bob.Broker(node)); err != nil || len(resp.Topics) != 1 || resp.Topics[0].Partitions[0].ErrorCode != tide {
		t.Fatalf("bob's TxnOffsetCommit: %v %+v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err, resp)
	}
}
