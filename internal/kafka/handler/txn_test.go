package handler

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/record"
)

func createTopics(t *testing.T, b *testBroker, partitions int32, names ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := b.admin(t).CreateTopics(ctx, partitions, 1, nil, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatal(r.Err)
		}
	}
}

var readAllNonce int

// readAll reads every record of topic with the given isolation and
// returns the values, sorted. To know where the end is it first appends a
// plain (non-transactional) sentinel record to each partition and reads
// until it has seen all of them: everything before a sentinel has then
// been read and filtered by the client.
func readAll(t *testing.T, b *testBroker, topic string, committed bool) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tp, ok := b.Cluster.Topic(topic)
	if !ok {
		t.Fatalf("no topic %s", topic)
	}
	readAllNonce++
	sentinel := fmt.Sprintf("__end__%d", readAllNonce)
	prod := b.client(t, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	for p := range tp.Partitions {
		if err := prod.ProduceSync(ctx, &kgo.Record{Value: []byte(sentinel), Partition: p}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := b.client(t, kgo.ConsumeTopics(topic), kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ends := map[int32]bool{}
	var vals []string
	for len(ends) < int(tp.Partitions) {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("reading %s: sentinels of %v seen, %d values so far", topic, ends, len(vals))
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			switch {
			case v == sentinel:
				ends[r.Partition] = true
			case strings.HasPrefix(v, "__end__"):
			default:
				vals = append(vals, v)
			}
		})
	}
	sort.Strings(vals)
	return vals
}

// TestTxnCommitAbortIsolation: a transactional producer commits one
// transaction and aborts the next across two partitions; read_committed
// sees only the committed records, read_uncommitted all of them; while a
// transaction is open the last stable offset stays at its first offset.
func TestTxnCommitAbortIsolation(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 2, "tx")
	ctx := context.Background()
	cl := b.client(t, kgo.TransactionalID("tx-1"), kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	produce := func(prefix string) {
		for i := range 6 {
			r := &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, i)), Partition: int32(i % 2)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce("c")
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	produce("a")
	// Open: the LSO is the first offset of the open transaction (after
	// 3 records and a marker on each partition).
	p0, err := b.Cluster.Partition("tx", 0)
	if err != nil {
		t.Fatal(err)
	}
	if lso, hw := p0.LastStableOffset(), p0.HighWatermark(); lso != 4 || hw != 7 {
		t.Fatalf("open transaction: LSO %d HW %d, want 4 and 7", lso, hw)
	}
	lso, err := b.admin(t).ListCommittedOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup("tx", 0); o.Offset != 4 {
		t.Fatalf("ListOffsets read_committed during an open transaction: %+v, want 4", o)
	}
	// A read_committed fetch stops at the LSO: nothing of the open
	// transaction; read_uncommitted gets it.
	for _, iso := range []int8{1, 0} {
		fr := kmsg.NewPtrFetchRequest()
		fr.Version, fr.IsolationLevel, fr.MaxBytes, fr.SessionEpoch = 11, iso, 1<<20, -1
		ft := kmsg.NewFetchRequestTopic()
		ft.Topic = "tx"
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = 0, 4, 1<<20
		ft.Partitions = append(ft.Partitions, fp)
		fr.Topics = append(fr.Topics, ft)
		resp := dpDo[*kmsg.FetchResponse](dpDial(t, b.Addr), fr)
		sp := resp.Topics[0].Partitions[0]
		if sp.ErrorCode != 0 || sp.LastStableOffset != 4 || sp.HighWatermark != 7 {
			t.Fatalf("fetch isolation %d: error %d, LSO %d, HW %d", iso, sp.ErrorCode, sp.LastStableOffset, sp.HighWatermark)
		}
		if got := len(sp.RecordBatches) > 0; got != (iso == 0) {
			t.Fatalf("fetch isolation %d at the LSO: %d bytes of batches", iso, len(sp.RecordBatches))
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	// The markers follow EndTxn's answer.
	waitStable(t, p0, 8)
	if lso, hw := p0.LastStableOffset(), p0.HighWatermark(); lso != hw || hw != 8 { // 3 + marker + 3 + marker
		t.Fatalf("after the abort: LSO %d HW %d, want 8 and 8", lso, hw)
	}
	// franz-go sees transaction.version 2: every end bumped the epoch
	// (KIP-890 part 2).
	if d, _ := b.Txns.Describe("tx-1"); d.Epoch != 2 {
		t.Fatalf("epoch after two transactions under transactions v2: %d, want 2", d.Epoch)
	}
	committed := readAll(t, b, "tx", true)
	want := []string{"c-0", "c-1", "c-2", "c-3", "c-4", "c-5"}
	if fmt.Sprint(committed) != fmt.Sprint(want) {
		t.Fatalf("read_committed: %v, want %v", committed, want)
	}
	if all := readAll(t, b, "tx", false); len(all) != 12 { // the sentinels of the read before are skipped
		t.Fatalf("read_uncommitted: %d records %v, want 12", len(all), all)
	}
	// The aborted index survives a restart.
	b.Stop(t)
	b2 := startBroker(t, b.dir, nil)
	if got := readAll(t, b2, "tx", true); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed after restart: %v", got)
	}
}

// TestTxnFencing: a second producer with the same transactional id fences
// the first: the first's commit fails, its records are aborted and never
// visible read_committed, and its later produce is refused.
func TestTxnFencing(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 1, "fence")
	ctx := context.Background()
	opts := []kgo.Opt{kgo.TransactionalID("same"), kgo.DefaultProduceTopic("fence")}
	old := b.client(t, opts...)
	if err := old.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := old.ProduceSync(ctx, kgo.StringRecord("zombie")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	young := b.client(t, opts...)
	if err := young.BeginTransaction(); err != nil { // InitProducerId: fences old
		t.Fatal(err)
	}
	if err := young.ProduceSync(ctx, kgo.StringRecord("young")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := young.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err := old.ProduceSync(ctx, kgo.StringRecord("zombie-late")).FirstErr()
	if err == nil {
		t.Fatal("the fenced producer's produce succeeded")
	}
	if err := old.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("the fenced producer committed")
	}
	if got := readAll(t, b, "fence", true); fmt.Sprint(got) != "[young]" {
		t.Fatalf("read_committed: %v, want [young]", got)
	}
}

// TestTxnUnverifiedProduceRefused (KIP-890 part 1): a transactional batch
// to a partition its producer never added to a transaction, or sent after
// the transaction ended, is refused and not written.
func TestTxnUnverifiedProduceRefused(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 2, "zomb")
	dc := dpDial(t, b.Addr)
	ctx := context.Background()
	init := kmsg.NewPtrInitProducerIDRequest()
	id := "z"
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
	if ir.ErrorCode != 0 {
		t.Fatalf("init: %v", kerr.ErrorForCode(ir.ErrorCode))
	}
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 3
	add.TransactionalID, add.ProducerID, add.ProducerEpoch = id, ir.ProducerID, ir.ProducerEpoch
	add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "zomb", Partitions: []int32{0}}}
	if ar := dpDo[*kmsg.AddPartitionsToTxnResponse](dc, add); ar.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("add: %v", kerr.ErrorForCode(ar.Topics[0].Partitions[0].ErrorCode))
	}
	seq := int32(0)
	produce := func(part int32) int16 {
		batch := txnBatch(t, ir.ProducerID, ir.ProducerEpoch, seq, "v")
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 9, -1, 5000, &id
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "zomb"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = part, batch
		tp.Partitions = append(tp.Partitions, pp)
		req.Topics = append(req.Topics, tp)
		resp := dpDo[*kmsg.ProduceResponse](dc, req)
		code := resp.Topics[0].Partitions[0].ErrorCode
		if code == 0 {
			seq++
		}
		return code
	}
	if code := produce(1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not added: %v", kerr.ErrorForCode(code))
	}
	if code := produce(0); code != 0 {
		t.Fatalf("produce to the added partition: %v", kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, true
	if er := dpDo[*kmsg.EndTxnResponse](dc, end); er.ErrorCode != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(er.ErrorCode))
	}
	// A late write of the ended transaction: refused, nothing written.
	p0, _ := b.Cluster.Partition("zomb", 0)
	waitStable(t, p0, 0) // the marker follows EndTxn's answer
	hw := p0.HighWatermark()
	if code := produce(0); code != kerr.InvalidTxnState.Code {
		t.Fatalf("late produce after the end: %v", kerr.ErrorForCode(code))
	}
	if p0.HighWatermark() != hw || p0.LastStableOffset() != hw {
		t.Fatalf("late produce moved the log: HW %d -> %d, LSO %d", hw, p0.HighWatermark(), p0.LastStableOffset())
	}
	_ = ctx
}

// TestTxnTimeoutAborts: a producer that stops inside a transaction is
// aborted once transaction.timeout.ms passes, so the LSO moves on, and its
// epoch is bumped (its commit is refused). The coordinator's own check
// runs every transaction.abort.timed.out.transaction.cleanup.interval.ms.
func TestTxnTimeoutAborts(t *testing.T) {
	b := startBroker(t, "", map[string]string{"transaction.abort.timed.out.transaction.cleanup.interval.ms": "50"})
	createTopics(t, b, 1, "slow")
	ctx := context.Background()
	cl := b.client(t, kgo.TransactionalID("slow"), kgo.DefaultProduceTopic("slow"), kgo.TransactionTimeout(300*time.Millisecond))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, kgo.StringRecord("stuck")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p, _ := b.Cluster.Partition("slow", 0)
	if p.LastStableOffset() != 0 {
		t.Fatalf("LSO %d during the transaction", p.LastStableOffset())
	}
	deadline := time.Now().Add(10 * time.Second)
	for p.LastStableOffset() != p.HighWatermark() {
		if time.Now().After(deadline) {
			t.Fatalf("timed-out transaction never aborted: LSO %d HW %d", p.LastStableOffset(), p.HighWatermark())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err == nil {
		t.Fatal("commit after the timeout abort succeeded")
	}
	if got := readAll(t, b, "slow", true); len(got) != 0 {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestGroupTransactSessionExactlyOnce: franz-go's consume-transform-produce
// pipeline (GroupTransactSession) between two topics, two members sharing
// the input, one of them replaced halfway: the output read
// read_committed holds every input record exactly once. Under
// transactions v1 (AddPartitionsToTxn, AddOffsetsToTxn) and v2 (implicit
// adds, an epoch bump at every end).
func TestGroupTransactSessionExactlyOnce(t *testing.T) {
	for _, tv := range []string{"1", "2"} {
		t.Run("transaction.version="+tv, func(t *testing.T) {
			groupTransactSessionExactlyOnce(t, tv)
		})
	}
}

func groupTransactSessionExactlyOnce(t *testing.T, tv string) {
	b := startBroker(t, "", map[string]string{"transaction.version": tv})
	createTopics(t, b, 3, "in", "out")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const n = 3000
	prod := b.client(t, kgo.DefaultProduceTopic("in"))
	for i := range n {
		prod.Produce(ctx, kgo.StringRecord(strconv.Itoa(i)), func(_ *kgo.Record, err error) {
			if err != nil {
				t.Errorf("produce: %v", err)
			}
		})
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	seen := 0
	worker := func(name string, stop <-chan struct{}) error {
		s, err := kgo.NewGroupTransactSession(
			kgo.SeedBrokers(b.Addr), kgo.TransactionalID(name), kgo.DefaultProduceTopic("out"),
			kgo.ConsumerGroup("etl"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
			kgo.RequireStableFetchOffsets(), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		)
		if err != nil {
			return err
		}
		defer s.Close()
		for {
			select {
			case <-stop:
				return nil
			case <-ctx.Done():
				return nil
			default:
			}
			pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
			fs := s.PollFetches(pctx)
			pcancel()
			if err := s.Begin(); err != nil {
				return fmt.Errorf("begin: %w", err)
			}
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) {
				recs = append(recs, &kgo.Record{Value: append([]byte("out-"), r.Value...)})
			})
			for _, r := range recs {
				s.Produce(ctx, r, nil)
			}
			committed, err := s.End(ctx, kgo.TryCommit)
			if err != nil {
				return fmt.Errorf("end: %w", err)
			}
			if committed {
				mu.Lock()
				seen += len(recs)
				mu.Unlock()
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	stopA, stopB, stopC := make(chan struct{}), make(chan struct{}), make(chan struct{})
	run := func(name string, stop chan struct{}) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := worker(name, stop); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	run("etl-a", stopA)
	run("etl-b", stopB)
	progress := func(target int) {
		deadline := time.Now().Add(45 * time.Second)
		for {
			mu.Lock()
			s := seen
			mu.Unlock()
			if s >= target {
				return
			}
			select {
			case err := <-errs:
				t.Fatal(err)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("pipeline stuck at %d of %d", s, target)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	progress(n / 3)
	close(stopB) // one member leaves mid-stream; another takes its place
	run("etl-c", stopC)
	progress(n)
	close(stopA)
	close(stopC)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Under transactions v2 every end bumped its producer's epoch.
	bumped := false
	for _, id := range []string{"etl-a", "etl-b", "etl-c"} {
		d, _ := b.Txns.Describe(id)
		bumped = bumped || d.Epoch > 0
	}
	if tv == "2" && !bumped {
		t.Fatal("transaction.version 2: no producer's epoch moved")
	}
	out := readAll(t, b, "out", true)
	count := map[string]int{}
	for _, v := range out {
		count[v]++
	}
	for i := range n {
		if c := count["out-"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("input %d is in the output %d times (%d output records)", i, c, len(out))
		}
	}
	if len(out) != n {
		t.Fatalf("%d output records, want %d", len(out), n)
	}
}

// txnBatch is a transactional batch of one record.
func txnBatch(t *testing.T, pid int64, epoch int16, seq int32, value string) []byte {
	t.Helper()
	b, err := record.AppendBatch(nil, record.BatchSpec{
		PartitionLeaderEpoch: -1, Transactional: true, BaseTimestamp: time.Now().UnixMilli(),
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
	}, []record.Record{{Value: []byte(value)}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTxnOffsetCommitChecks: TxnOffsetCommit v3+ checks the member and
// generation (KIP-447) before the offsets join the transaction; the
// offsets reach the group only when the transaction commits, and until
// then an OffsetFetch requiring stable offsets answers
// UNSTABLE_OFFSET_COMMIT. Also AddPartitionsToTxn v4 VerifyOnly.
func TestTxnOffsetCommitChecks(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 1, "src")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// A live member in group "live".
	member := b.client(t, kgo.ConsumerGroup("live"), kgo.ConsumeTopics("src"))
	for {
		pctx, pcancel := context.WithTimeout(ctx, 100*time.Millisecond)
		member.PollFetches(pctx) // joins
		pcancel()
		d, err := b.admin(t).DescribeGroups(ctx, "live")
		if err != nil {
			t.Fatal(err)
		}
		if g := d["live"]; g.State == "Stable" {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the member never joined")
		}
	}
	dc := dpDial(t, b.Addr)
	id := "oc"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
	for _, g := range []string{"live", "new"} {
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.Version = 3
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = id, ir.ProducerID, ir.ProducerEpoch, g
		if r := dpDo[*kmsg.AddOffsetsToTxnResponse](dc, ao); r.ErrorCode != 0 {
			t.Fatalf("add offsets %s: %v", g, kerr.ErrorForCode(r.ErrorCode))
		}
	}
	commit := func(group, memberID string, gen int32) int16 {
		req := kmsg.NewPtrTxnOffsetCommitRequest()
		req.Version = 3
		req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, ir.ProducerID, ir.ProducerEpoch
		req.MemberID, req.Generation = memberID, gen
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = "src"
		rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 7
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return dpDo[*kmsg.TxnOffsetCommitResponse](dc, req).Topics[0].Partitions[0].ErrorCode
	}
	if code := commit("live", "zombie", 1); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %v", kerr.ErrorForCode(code))
	}
	if code := commit("new", "m", 3); code != kerr.IllegalGeneration.Code {
		t.Fatalf("generation of a group that does not exist: %v", kerr.ErrorForCode(code))
	}
	if code := commit("new", "", -1); code != 0 {
		t.Fatalf("a commit without member (pre-KIP-447): %v", kerr.ErrorForCode(code))
	}
	big := kmsg.NewPtrTxnOffsetCommitRequest()
	big.Version = 3
	big.TransactionalID, big.Group, big.ProducerID, big.ProducerEpoch, big.Generation = id, "new", ir.ProducerID, ir.ProducerEpoch, -1
	meta := strings.Repeat("m", 5000) // offset.metadata.max.bytes is 4096
	big.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "src", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 1, Metadata: &meta}}}}
	if code := dpDo[*kmsg.TxnOffsetCommitResponse](dc, big).Topics[0].Partitions[0].ErrorCode; code != kerr.OffsetMetadataTooLarge.Code {
		t.Fatalf("metadata too large: %v", kerr.ErrorForCode(code))
	}
	if code := commit("unadded", "", -1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("a group not added: %v", kerr.ErrorForCode(code))
	}
	fetched := func() int64 {
		os, err := b.admin(t).FetchOffsets(ctx, "new")
		if err != nil {
			t.Fatal(err)
		}
		o, ok := os.Lookup("src", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	if at := fetched(); at != -1 {
		t.Fatalf("offset visible before the commit: %d", at)
	}
	stable := func(version int16) int16 {
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Version, of.RequireStable = version, true
		if version >= 8 {
			g := kmsg.NewOffsetFetchRequestGroup()
			g.Group = "new"
			g.Topics = []kmsg.OffsetFetchRequestGroupTopic{{Topic: "src", Partitions: []int32{0}}}
			of.Groups = append(of.Groups, g)
			return dpDo[*kmsg.OffsetFetchResponse](dc, of).Groups[0].Topics[0].Partitions[0].ErrorCode
		}
		of.Group = "new"
		of.Topics = []kmsg.OffsetFetchRequestTopic{{Topic: "src", Partitions: []int32{0}}}
		return dpDo[*kmsg.OffsetFetchResponse](dc, of).Topics[0].Partitions[0].ErrorCode
	}
	for _, v := range []int16{7, 8} {
		if code := stable(v); code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("OffsetFetch v%d require_stable with a pending transactional commit: %v", v, kerr.ErrorForCode(code))
		}
	}
	// v4 VerifyOnly: nothing added yet.
	add := kmsg.NewPtrAddPartitionsToTxnRequest()
	add.Version = 4
	tx := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tx.TransactionalID, tx.ProducerID, tx.ProducerEpoch, tx.VerifyOnly = id, ir.ProducerID, ir.ProducerEpoch, true
	tx.Topics = []kmsg.AddPartitionsToTxnRequestTransactionTopic{{Topic: "src", Partitions: []int32{0}}}
	add.Transactions = append(add.Transactions, tx)
	if r := dpDo[*kmsg.AddPartitionsToTxnResponse](dc, add); r.Transactions[0].Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("verify-only of a partition not added: %+v", r)
	}
	add.Transactions[0].VerifyOnly = false
	if r := dpDo[*kmsg.AddPartitionsToTxnResponse](dc, add); r.Transactions[0].Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("v4 add: %+v", r)
	}
	add.Transactions[0].VerifyOnly = true
	if r := dpDo[*kmsg.AddPartitionsToTxnResponse](dc, add); r.Transactions[0].Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("verify-only after the add: %+v", r)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, ir.ProducerEpoch, true
	if er := dpDo[*kmsg.EndTxnResponse](dc, end); er.ErrorCode != 0 {
		t.Fatalf("end: %v", kerr.ErrorForCode(er.ErrorCode))
	}
	// The marker (and so the offsets' commit) follows EndTxn's answer.
	deadline := time.Now().Add(10 * time.Second)
	for fetched() != 7 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if at := fetched(); at != 7 {
		t.Fatalf("offset after the commit: %d, want 7", at)
	}
	if code := stable(8); code != 0 {
		t.Fatalf("require_stable after the commit: %v", kerr.ErrorForCode(code))
	}
}

// TestTxnAdminAPIs: ListTransactions, DescribeTransactions and
// DescribeProducers show an open transaction (as kafka-transactions.sh
// does), and WriteTxnMarkers with the producer's id and epoch aborts it
// on its partition, so a hanging transaction can be ended by hand.
func TestTxnAdminAPIs(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 2, "adm")
	ctx := context.Background()
	cl := b.client(t, kgo.TransactionalID("hang"), kgo.DefaultProduceTopic("adm"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("x"), Partition: 1}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	adm := b.admin(t)
	lt, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if l, ok := lt["hang"]; !ok || l.State != "Ongoing" || len(lt) != 1 {
		t.Fatalf("list: %+v", lt)
	}
	if lt, _ := adm.ListTransactions(ctx, nil, []string{"CompleteCommit"}); len(lt) != 0 {
		t.Fatalf("list CompleteCommit: %+v", lt)
	}
	dt, err := adm.DescribeTransactions(ctx, "hang", "nope")
	if err != nil {
		t.Fatal(err)
	}
	d := dt["hang"]
	_, in := d.Topics["adm"][1]
	if !in || d.Err != nil || d.State != "Ongoing" || d.StartTimestamp <= 0 || len(d.Topics) != 1 || len(d.Topics["adm"]) != 1 {
		t.Fatalf("describe: %+v", d)
	}
	if dt["nope"].Err == nil {
		t.Fatalf("describe unknown: %+v", dt["nope"])
	}
	dp, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var found *kadm.DescribedProducer
	dp.EachProducer(func(p kadm.DescribedProducer) {
		if p.ProducerID == d.ProducerID {
			found = &p
		}
	})
	if found == nil || found.CurrentTxnStartOffset != 0 || found.ProducerEpoch != d.ProducerEpoch {
		t.Fatalf("describe producers: %+v (want producer %d)", found, d.ProducerID)
	}
	// Abort it on the partition by hand.
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = found.ProducerID, found.ProducerEpoch, false, found.CoordinatorEpoch
	m.Topics = []kmsg.WriteTxnMarkersRequestMarkerTopic{{Topic: "adm", Partitions: []int32{1}}}
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, b.client(t))
	if err != nil {
		t.Fatal(err)
	}
	if code := resp.Markers[0].Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("write markers: %v", kerr.ErrorForCode(code))
	}
	p1, _ := b.Cluster.Partition("adm", 1)
	if p1.LastStableOffset() != p1.HighWatermark() {
		t.Fatalf("after the manual abort: LSO %d HW %d", p1.LastStableOffset(), p1.HighWatermark())
	}
	if ab := p1.AbortedTxns(0, 10); len(ab) != 1 || ab[0].ProducerID != found.ProducerID {
		t.Fatalf("aborted index: %+v", ab)
	}
}

// TestTxnSurvivesBrokerRestart: a transaction open across a broker
// restart is still open after it (its records invisible read_committed,
// the LSO at its first offset); a new instance of the producer fences and
// aborts it everywhere, and the committed transaction before it stays
// committed.
func TestTxnSurvivesBrokerRestart(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 2, "rs")
	ctx := context.Background()
	opts := []kgo.Opt{kgo.TransactionalID("rs-tx"), kgo.DefaultProduceTopic("rs"), kgo.RecordPartitioner(kgo.ManualPartitioner())}
	cl := b.client(t, opts...)
	txn := func(prefix string) {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for p := range int32(2) {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf("%s-%d", prefix, p)), Partition: p}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	txn("committed")
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	txn("open")
	cl.Close()
	b.Stop(t)

	b2 := startBroker(t, b.dir, nil)
	for p := range int32(2) {
		part, _ := b2.Cluster.Partition("rs", p)
		if part.LastStableOffset() != 2 || part.HighWatermark() != 3 {
			t.Fatalf("partition %d after restart: LSO %d HW %d, want 2 and 3", p, part.LastStableOffset(), part.HighWatermark())
		}
	}
	if d, ok := b2.Txns.Describe("rs-tx"); !ok || d.State.String() != "Ongoing" || len(d.Partitions) != 2 {
		t.Fatalf("coordinator after restart: %+v", d)
	}
	cl2 := b2.client(t, opts...)
	if err := cl2.BeginTransaction(); err != nil { // InitProducerId: fences and aborts
		t.Fatal(err)
	}
	if err := cl2.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		part, _ := b2.Cluster.Partition("rs", p)
		if part.LastStableOffset() != part.HighWatermark() {
			t.Fatalf("partition %d after the fence: LSO %d HW %d", p, part.LastStableOffset(), part.HighWatermark())
		}
	}
	if got := readAll(t, b2, "rs", true); fmt.Sprint(got) != "[committed-0 committed-1]" {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestTxnV2EpochBumpRefusesLateWrite (KIP-890 part 2): Produce v12 adds
// its partition itself; EndTxn v5 bumps the epoch and says so (a retry of
// it at the old epoch gets the same answer); a produce delayed from the
// ended transaction, at the old epoch, is refused and can join no later
// transaction, whatever the partition.
func TestTxnV2EpochBumpRefusesLateWrite(t *testing.T) {
	b := startBroker(t, "", nil)
	createTopics(t, b, 2, "v2")
	dc := dpDial(t, b.Addr)
	id := "v2-tx"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version = 5
	init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
	init.ProducerID, init.ProducerEpoch = -1, -1
	ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
	if ir.ErrorCode != 0 {
		t.Fatalf("init: %v", kerr.ErrorForCode(ir.ErrorCode))
	}
	produce := func(part int32, epoch int16, seq int32) int16 {
		req := kmsg.NewPtrProduceRequest()
		req.Version, req.Acks, req.TimeoutMillis, req.TransactionID = 12, -1, 5000, &id
		tp := kmsg.NewProduceRequestTopic()
		tp.Topic = "v2"
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = part, txnBatch(t, ir.ProducerID, epoch, seq, "v")
		tp.Partitions = append(tp.Partitions, pp)
		req.Topics = append(req.Topics, tp)
		return dpDo[*kmsg.ProduceResponse](dc, req).Topics[0].Partitions[0].ErrorCode
	}
	e0 := ir.ProducerEpoch
	if code := produce(0, e0, 0); code != 0 { // no AddPartitionsToTxn
		t.Fatalf("produce v12: %v", kerr.ErrorForCode(code))
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.Version = 5
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = id, ir.ProducerID, e0, true
	er := dpDo[*kmsg.EndTxnResponse](dc, end)
	if er.ErrorCode != 0 || er.ProducerID != ir.ProducerID || er.ProducerEpoch != e0+1 {
		t.Fatalf("end v5: %v, producer %d epoch %d", kerr.ErrorForCode(er.ErrorCode), er.ProducerID, er.ProducerEpoch)
	}
	if again := dpDo[*kmsg.EndTxnResponse](dc, end); again.ErrorCode != 0 || again.ProducerEpoch != e0+1 {
		t.Fatalf("retried end v5: %v, epoch %d", kerr.ErrorForCode(again.ErrorCode), again.ProducerEpoch)
	}
	// The next transaction, at the new epoch, on partition 1.
	if code := produce(1, e0+1, 0); code != 0 {
		t.Fatalf("next transaction: %v", kerr.ErrorForCode(code))
	}
	p0, _ := b.Cluster.Partition("v2", 0)
	p1, _ := b.Cluster.Partition("v2", 1)
	hw0, hw1 := p0.HighWatermark(), p1.HighWatermark()
	// Delayed writes of the ended transaction (old epoch), to its own
	// partition and to the one the new transaction uses: both refused.
	for part, want := range map[int32][]int16{0: {kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code}, 1: {kerr.InvalidProducerEpoch.Code, kerr.ProducerFenced.Code}} {
		code := produce(part, e0, 1)
		if code != want[0] && code != want[1] {
			t.Fatalf("late write to partition %d: %v", part, kerr.ErrorForCode(code))
		}
	}
	if p0.HighWatermark() != hw0 || p1.HighWatermark() != hw1 {
		t.Fatalf("late writes landed: HW %d->%d, %d->%d", hw0, p0.HighWatermark(), hw1, p1.HighWatermark())
	}
	end.ProducerEpoch = e0 + 1
	if er := dpDo[*kmsg.EndTxnResponse](dc, end); er.ErrorCode != 0 || er.ProducerEpoch != e0+2 {
		t.Fatalf("second end: %v, epoch %d", kerr.ErrorForCode(er.ErrorCode), er.ProducerEpoch)
	}
	if got := readAll(t, b, "v2", true); fmt.Sprint(got) != "[v v]" {
		t.Fatalf("read_committed: %v", got)
	}
}

// TestTxnOffsetCommitV5FollowsTransactionVersion: TxnOffsetCommit v5 adds
// its group to the transaction itself only under transaction.version 2;
// under 1 it is v4, so it needs
// AddOffsetsToTxn (INVALID_TXN_STATE without), as Produce v12 is v11. On
// main a v5 added the group in process, which in a cluster answered
// NOT_COORDINATOR whenever the transaction coordinator was elsewhere.
func TestTxnOffsetCommitV5FollowsTransactionVersion(t *testing.T) {
	for tv, want := range map[string]int16{"1": kerr.InvalidTxnState.Code, "2": 0} {
		t.Run("transaction.version="+tv, func(t *testing.T) {
			b := startBroker(t, "", map[string]string{"transaction.version": tv})
			dc := dpDial(t, b.Addr)
			id := "v5"
			init := kmsg.NewPtrInitProducerIDRequest()
			init.TransactionalID, init.TransactionTimeoutMillis = &id, 60000
			ir := dpDo[*kmsg.InitProducerIDResponse](dc, init)
			req := kmsg.NewPtrTxnOffsetCommitRequest()
			req.Version = 5
			req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch, req.Generation = id, "g", ir.ProducerID, ir.ProducerEpoch, -1
			req.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "src", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 3, LeaderEpoch: -1}}}}
			if code := dpDo[*kmsg.TxnOffsetCommitResponse](dc, req).Topics[0].Partitions[0].ErrorCode; code != want {
				t.Fatalf("v5 without AddOffsetsToTxn: %v, want %v", kerr.ErrorForCode(code), kerr.ErrorForCode(want))
			}
		})
	}
}

// waitStable waits (polling, 10 s at most) until p's last stable offset
// is its high watermark and that is at least hw: EndTxn is answered once
// the prepare record is durable, and the markers follow.
func waitStable(t *testing.T, p interface {
	LastStableOffset() int64
	HighWatermark() int64
}, hw int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.LastStableOffset() != p.HighWatermark() || p.HighWatermark() < hw {
		if time.Now().After(deadline) {
			t.Fatalf("LSO %d HW %d, want both at %d or more", p.LastStableOffset(), p.HighWatermark(), hw)
		}
		time.Sleep(time.Millisecond)
	}
}
