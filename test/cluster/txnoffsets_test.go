package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClusterTxnOffsetsPendingAcrossFailover: a transaction's offsets are
// written (TxnOffsetCommit answered) and then the broker leading the
// replicated __consumer_offsets-0 is killed -9 before the transaction
// ends, and stays down until another broker leads the partition. The new
// group coordinator loads them pending from the log
// (OffsetFetch with require_stable: UNSTABLE_OFFSET_COMMIT), the commit's
// marker, written to the new leader, makes them the group's offset; a
// second transaction's offsets, through a second kill, are dropped by
// its abort. Done with raw requests, so the kill lands exactly between
// TxnOffsetCommit and EndTxn.
func TestClusterTxnOffsetsPendingAcrossFailover(t *testing.T) {
	c := startCluster(t, 3)
	c.waitBrokers(c.nodes[0].kafka, []int32{1, 2, 3})
	// Transactions v1 requests (a cluster finalizes transaction.version
	// 1; TxnOffsetCommit v5 and EndTxn v5 are v2's).
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.seeds()...), kgo.RetryTimeout(20*time.Second), kgo.MaxVersions(kversion.V3_8_0()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const id, grp = "pending-txn", "pending-group"
	var pid int64
	var epoch int16
	waitFor(t, 30*time.Second, "InitProducerId", func() error {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.TransactionalID, req.TransactionTimeoutMillis = kmsg.StringPtr(id), 120000
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		pid, epoch = resp.ProducerID, resp.ProducerEpoch
		return kerr.ErrorForCode(resp.ErrorCode)
	})
	// fetch is the group's offset of src-0 asked with require_stable, or
	// the partition's error.
	fetch := func() (int64, error) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.Group, req.RequireStable = 7, grp, true
		req.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "src", Partitions: []int32{0}}}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return 0, err
		}
		if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
			return 0, err
		}
		p := resp.Topics[0].Partitions[0]
		return p.Offset, kerr.ErrorForCode(p.ErrorCode)
	}
	// offsetsLeader is the leader of __consumer_offsets-0 as the broker at
	// addr sees it, other than not (when set).
	offsetsLeader := func(addr string, not *node) *node {
		var lead int32
		waitFor(t, 30*time.Second, "__consumer_offsets-0's leader", func() error {
			req := kmsg.NewPtrMetadataRequest()
			rt := kmsg.NewMetadataRequestTopic()
			rt.Topic = kmsg.StringPtr("__consumer_offsets")
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, c.direct(addr))
			if err != nil {
				return err
			}
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) == 0 {
				return fmt.Errorf("no __consumer_offsets yet")
			}
			lead = resp.Topics[0].Partitions[0].Leader
			if lead < 1 || not != nil && lead == not.id {
				return fmt.Errorf("leader %d", lead)
			}
			return nil
		})
		return c.nodes[lead-1]
	}
	txn := func(offset int64, commit bool) {
		t.Helper()
		waitFor(t, 30*time.Second, "AddOffsetsToTxn", func() error {
			req := kmsg.NewPtrAddOffsetsToTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, grp
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.ErrorCode)
		})
		waitFor(t, 30*time.Second, "TxnOffsetCommit", func() error {
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = id, grp, pid, epoch, -1
			req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "src", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode)
		})
		if _, err := fetch(); err != kerr.UnstableOffsetCommit {
			t.Fatalf("offset %d written, before the kill: %v, want UNSTABLE_OFFSET_COMMIT", offset, err)
		}
		victim := offsetsLeader(c.nodes[0].kafka, nil)
		t.Logf("kill -9 broker %d (leads __consumer_offsets-0) with offset %d pending", victim.id, offset)
		victim.proc.Kill(t)
		// Down until another broker leads the offsets partition.
		next := offsetsLeader(c.nodes[victim.id%3].kafka, victim)
		c.start(victim)
		waitFor(t, 60*time.Second, "the pending offset at the new group coordinator", func() error {
			if _, err := fetch(); err != kerr.UnstableOffsetCommit {
				return fmt.Errorf("fetch: %v", err)
			}
			return nil
		})
		t.Logf("offset %d pending at the new group coordinator, broker %d", offset, next.id)
		waitFor(t, 60*time.Second, "EndTxn", func() error {
			req := kmsg.NewPtrEndTxnRequest()
			req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, epoch, commit
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				return err
			}
			return kerr.ErrorForCode(resp.ErrorCode)
		})
	}
	txn(42, true)
	waitFor(t, 30*time.Second, "the committed transaction's offset", func() error {
		if at, err := fetch(); err != nil || at != 42 {
			return fmt.Errorf("offset %d, %v", at, err)
		}
		return nil
	})
	txn(99, false)
	waitFor(t, 30*time.Second, "the aborted transaction's offset dropped", func() error {
		if at, err := fetch(); err != nil || at != 42 {
			return fmt.Errorf("offset %d, %v", at, err)
		}
		return nil
	})
}
