package handler

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
)

// fakePeer is a TxnPeer whose "remote" coordinator is the broker's own
// (as a coordinator on another broker would answer: Kafka codes), so a
// single node runs the cluster path of transactions v2: the handler asks
// through the peer instead of in process. down makes it unreachable;
// afterAdd runs once an add has been answered, before the produce
// appends.
type fakePeer struct {
	c        *txn.Coordinator
	down     atomic.Bool
	adds     atomic.Int32
	verifies atomic.Int32

	mu       sync.Mutex
	added    []txn.TopicPartition
	afterAdd func()
}

func (f *fakePeer) Verify(_ context.Context, coordinator int32, txnID string, pid int64, epoch int16, topic string, index int32) error {
	f.verifies.Add(1)
	if f.down.Load() {
		return fmt.Errorf("%w: broker %d unreachable", partition.ErrTxnVerifyUnavailable, coordinator)
	}
	errs := f.c.VerifyPartitions(txnID, pid, epoch, []txn.TopicPartition{{Topic: topic, Partition: index}})
	return asKafka(errs[0])
}

func (f *fakePeer) Add(ctx context.Context, coordinator int32, txnID string, pid int64, epoch int16, parts []txn.TopicPartition) ([]error, error) {
	f.adds.Add(1)
	if f.down.Load() {
		return nil, fmt.Errorf("%w: broker %d unreachable", partition.ErrTxnVerifyUnavailable, coordinator)
	}
	errs, err := f.c.AddPartitions(ctx, txnID, pid, epoch, parts)
	if err != nil {
		return nil, asKafka(err)
	}
	for i := range errs {
		errs[i] = asKafka(errs[i])
	}
	f.mu.Lock()
	f.added = append(f.added, parts...)
	after := f.afterAdd
	f.afterAdd = nil
	f.mu.Unlock()
	if after != nil {
		after()
	}
	return errs, nil
}

// asKafka is err as the coordinator's broker would answer it.
func asKafka(err error) error {
	if err == nil {
		return nil
	}
	return kerr.ErrorForCode(errorCode(err))
}

// startRemoteTxnBroker starts a broker whose handlers see the transaction
// coordinator on broker 9, reached through the returned fake peer.
func startRemoteTxnBroker(t *testing.T) (*testBroker, *fakePeer) {
	peer := &fakePeer{}
	b := startBrokerWith(t, "", "127.0.0.1:0", nil, nil, func(h *Handler) {
		peer.c = h.txns
		h.cfg.TxnPeer = peer
		h.remoteTxnCoordinator = func() (int32, error) { return 9, nil }
	})
	return b, peer
}

// TestTxnV2RemoteCoordinatorAdd: transactions v2 at a partition leader
// whose transaction coordinator is on another broker (a fake TxnPeer): a
// Produce v12 asks the coordinator to add the partition (no
// AddPartitionsToTxn from the client) and, once the producer's
// transaction is open there, does not ask again; an unreachable
// coordinator is NOT_ENOUGH_REPLICAS (retried) with nothing written; an
// end landing between the coordinator's add and the append is caught by
// the verification under the partition's lock (nothing joins the next
// transaction); a write delayed past EndTxn v5 is fenced; the next
// transaction at the bumped epoch is added and verified remotely. On
// main the Produce added in process, which in a cluster answered
// NOT_COORDINATOR whenever the coordinator was elsewhere (so the cluster
// capped transaction.version at 1).
func TestTxnV2RemoteCoordinatorAdd(t *testing.T) {
	b, peer := startRemoteTxnBroker(t)
	createTopics(t, b, 2, "rv2")
	dc := dpDial(t, b.Addr)
	id := "rv2-tx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 5
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	init.ProducerID, init.ProducerEpoch = -1, -1
	ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
	if ir.ErrorCode != 0 {
		t.Fatalf("init: %v", kerr.ErrorForCode(ir.ErrorCode))
	}
	seqs := map[int32]int32{}
	produce := func(part int32, epoch int16, value string) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 12, -1, 5000, &id
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "rv2"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = part, txnBatch(t, ir.ProducerID, epoch, seqs[part], value)
		tp.Partitions = append(tp.Partitions, pp)
		req.Topics = append(req.Topics, tp)
		code := dpDo[*kmsg.ProduceResponse](dc, req).Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			seqs[part]++
		}
		return code
	}
	end := func(epoch int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.Version = 5
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, ir.ProducerID, epoch, commit
		er := dpDo[*kmsg.EndTxnResponse](dc, req)
		if er.ErrorCode != 0 || er.ProducerEpoch != epoch+1 {
			t.Fatalf("end v5 at epoch %d: %v, epoch %d", epoch, kerr.ErrorForCode(er.ErrorCode), er.ProducerEpoch)
		}
		seqs = map[int32]int32{}
		return er.ProducerEpoch
	}
	p0, _ := b.Cluster.Partition("rv2", 0)
	p1, _ := b.Cluster.Partition("rv2", 1)

	e0 := ir.ProducerEpoch
	if code := produce(0, e0, "a"); code != 0 {
		t.Fatalf("produce v12: %v", kerr.ErrorForCode(code))
	}
	if a, v := peer.adds.Load(), peer.verifies.Load(); a != 1 || v != 1 {
		t.Fatalf("first write: %d adds and %d verifications asked of the coordinator, want 1 and 1", a, v)
	}
	if code := produce(0, e0, "b"); code != 0 {
		t.Fatalf("second produce: %v", kerr.ErrorForCode(code))
	}
	if a := peer.adds.Load(); a != 1 {
		t.Fatalf("%d adds after a write to a partition already in the transaction, want 1", a)
	}

	// The coordinator unreachable: retriable, nothing written.
	peer.down.Store(true)
	hw1 := p1.HighWatermark()
	if code := produce(1, e0, "c"); code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("coordinator down: %v, want NOT_ENOUGH_REPLICAS", kerr.ErrorForCode(code))
	}
	if p1.HighWatermark() != hw1 {
		t.Fatal("a write the coordinator did not add landed")
	}
	peer.down.Store(false)
	if code := produce(1, e0, "c"); code != 0 {
		t.Fatalf("retry once the coordinator answers: %v", kerr.ErrorForCode(code))
	}
	e1 := end(e0, true)
	// The markers were appended before EndTxn's answer, and are durable
	// soon after.
	waitStable(t, p0, 0)
	waitStable(t, p1, 0)

	// A write delayed past the end (old epoch): fenced, nowhere written.
	hw0, hw1 := p0.HighWatermark(), p1.HighWatermark()
	for part := range int32(2) {
		seqs[part] = 5
		if code := produce(part, e0, "late"); code != kerr.InvalidProducerEpoch.Code && code != kerr.ProducerFenced.Code {
			t.Fatalf("late write to partition %d: %v", part, kerr.ErrorForCode(code))
		}
	}
	if p0.HighWatermark() != hw0 || p1.HighWatermark() != hw1 {
		t.Fatal("a late write landed")
	}
	seqs = map[int32]int32{}

	// The next transaction at the bumped epoch: added and verified
	// remotely.
	adds := peer.adds.Load()
	if code := produce(0, e1, "d"); code != 0 {
		t.Fatalf("next transaction: %v", kerr.ErrorForCode(code))
	}
	if peer.adds.Load() != adds+1 {
		t.Fatal("the next transaction's first write was not added at the coordinator")
	}

	// The transaction ends (its marker lands) right after the coordinator
	// added partition 1 and before the append: the verification under the
	// partition's lock refuses the write, which joins no transaction.
	peer.mu.Lock()
	peer.afterAdd = func() {
		if _, _, err := peer.c.EndTxnBump(context.Background(), id, ir.ProducerID, e1, false); err != nil {
			t.Errorf("end between add and append: %v", err)
		}
	}
	peer.mu.Unlock()
	hw1 = p1.HighWatermark()
	if code := produce(1, e1, "raced"); code != kerr.ProducerFenced.Code && code != kerr.InvalidProducerEpoch.Code && code != kerr.InvalidTxnState.Code {
		t.Fatalf("write racing its transaction's end: %v", kerr.ErrorForCode(code))
	}
	waitStable(t, p1, hw1+1)
	if p1.HighWatermark() != hw1+1 { // the abort marker only
		t.Fatalf("partition 1 HW %d -> %d: want the abort marker alone", hw1, p1.HighWatermark())
	}
	e2 := e1 + 1
	seqs = map[int32]int32{}
	if code := produce(1, e2, "e"); code != 0 {
		t.Fatalf("transaction after the raced end: %v", kerr.ErrorForCode(code))
	}
	end(e2, true)
	waitStable(t, p0, 0)
	waitStable(t, p1, 0)
	if got := readAll(t, b, "rv2", true); fmt.Sprint(got) != "[a b c e]" && fmt.Sprint(got) != "[c e a b]" {
		t.Fatalf("read_committed: %v, want a b c e", got)
	}
}

// TestTxnOffsetCommitV5RemoteCoordinator: TxnOffsetCommit v5 at a group
// coordinator whose transaction coordinator is on another broker asks it
// to add the group's offsets partition (a fake TxnPeer), no
// AddOffsetsToTxn from the client; an unreachable coordinator is
// COORDINATOR_LOAD_IN_PROGRESS (retried); the commit's offsets apply at
// the end. On main v5 added the group in process: NOT_COORDINATOR there.
func TestTxnOffsetCommitV5RemoteCoordinator(t *testing.T) {
	b, peer := startRemoteTxnBroker(t)
	createTopics(t, b, 1, "src")
	dc := dpDial(t, b.Addr)
	// The offsets topic exists in a cluster wherever a group has a
	// coordinator; here a plain commit makes it.
	oc := kmsg.NewPtrOffsetCommitRequest()
	oc.Group, oc.Generation = "other", -1
	oc.Topics = []kmsg.OffsetCommitRequestTopic{{Topic: "src", Partitions: []kmsg.OffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, LeaderEpoch: -1}}}}
	if code := dpDo[*kmsg.OffsetCommitResponse](dc, oc).Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("offset commit: %v", kerr.ErrorForCode(code))
	}
	id := "v5r"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
	commit := func() int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 5
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = id, "g", ir.ProducerID, ir.ProducerEpoch, -1
		req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "src", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3, LeaderEpoch: -1}}}}
		return dpDo[*kmsg.TxnOffsetCommitResponse](dc, req).Topics[0].Partitions[0].ErrorCode
	}
	peer.down.Store(true)
	if code := commit(); code != kerr.CoordinatorLoadInProgress.Code {
		t.Fatalf("coordinator down: %v, want COORDINATOR_LOAD_IN_PROGRESS", kerr.ErrorForCode(code))
	}
	peer.down.Store(false)
	if code := commit(); code != 0 {
		t.Fatalf("v5 without AddOffsetsToTxn: %v", kerr.ErrorForCode(code))
	}
	peer.mu.Lock()
	added := fmt.Sprint(peer.added)
	peer.mu.Unlock()
	if added != "[{__consumer_offsets 0}]" {
		t.Fatalf("added at the coordinator: %s, want the group's offsets partition", added)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.Version = 5
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, true
	if er := dpDo[*kmsg.EndTxnResponse](dc, end); er.ErrorCode != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(er.ErrorCode))
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g"
	of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "src", Partitions: []int32{0}}}
	// The marker, which commits the offsets, follows EndTxn's answer.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := dpDo[*kmsg.OffsetFetchResponse](dc, of).Topics[0].Partitions[0].Offset
		if got == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("committed offset %d, want 3", got)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFinalizedTxnVersion: a cluster finalizes the lowest transaction.version
// of its registered brokers, a registration without one (a broker from
// before transactions v2 across brokers) counting as 1, so a rolling
// upgrade stays at v1 until every broker serves v2.
func TestFinalizedTxnVersion(t *testing.T) {
	v := func(n int16) *int16 { return &n }
	for _, tc := range []struct {
		name string
		own  int16
		regs []*int16
		want int16
	}{
		{"all serve 2", 2, []*int16{v(2), v(2), v(2)}, 2},
		{"an old broker", 2, []*int16{v(2), nil, v(2)}, 1},
		{"one set to 1", 2, []*int16{v(2), v(1), v(2)}, 1},
		{"one set to 0", 2, []*int16{v(0), v(2)}, 0},
		{"this one set to 1", 1, []*int16{v(2), v(2)}, 1},
		{"none registered yet", 2, nil, 2},
	} {
		var bs []metadata.BrokerInfo
		for i, r := range tc.regs {
			bs = append(bs, metadata.BrokerInfo{ID: int32(i + 1), TransactionVersion: r})
		}
		if got := finalizedTxnVersion(tc.own, bs); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestRetriableAdd: the coordinator's "not now" answers to a transactions
// v2 add, in process or from another broker, are NOT_ENOUGH_REPLICAS for
// the producer (retried, as Kafka maps a failed verification); its
// refusals keep their codes.
func TestRetriableAdd(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int16
	}{
		{txn.ErrConcurrentTransactions, kerr.NotEnoughReplicas.Code},
		{fmt.Errorf("add with broker 2: %w", kerr.ConcurrentTransactions), kerr.NotEnoughReplicas.Code},
		{txn.ErrCoordinatorLoading, kerr.NotEnoughReplicas.Code},
		{fmt.Errorf("x: %w", kerr.NotCoordinator), kerr.NotEnoughReplicas.Code},
		{fmt.Errorf("x: %w", kerr.OperationNotAttempted), kerr.NotEnoughReplicas.Code},
		{context.DeadlineExceeded, kerr.NotEnoughReplicas.Code},
		{fmt.Errorf("%w: down", partition.ErrTxnVerifyUnavailable), kerr.NotEnoughReplicas.Code},
		{txn.ErrProducerFenced, kerr.ProducerFenced.Code},
		{fmt.Errorf("x: %w", kerr.ProducerFenced), kerr.ProducerFenced.Code},
		{fmt.Errorf("x: %w", kerr.InvalidTxnState), kerr.InvalidTxnState.Code},
		{fmt.Errorf("x: %w", kerr.ClusterAuthorizationFailed), kerr.ClusterAuthorizationFailed.Code},
		{txn.ErrUnknownPartition, kerr.UnknownTopicOrPartition.Code},
	} {
		if got := errorCode(retriableAdd(tc.err)); got != tc.want {
			t.Errorf("%v: %v, want %v", tc.err, kerr.ErrorForCode(got), kerr.ErrorForCode(tc.want))
		}
	}
}
