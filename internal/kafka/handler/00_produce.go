package handler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
)

// Produce: appends each partition's records to its log and answers with the
// offsets they got.
//
// Behavior:
//   - Partitions are independent: each gets its own error code (and, v8+,
//     error message); a Go error is returned only to close the connection.
//   - An unknown topic is UNKNOWN_TOPIC_OR_PARTITION (UNKNOWN_TOPIC_ID when
//     addressed by id): Produce never creates topics. Kafka does not either;
//     clients create them through Metadata, which honours
//     auto.create.topics.enable.
//   - Internal topics take records only from the client id "__admin_client"
//     (INVALID_TOPIC_EXCEPTION otherwise), as in Kafka.
//   - v3+ must carry exactly one v2 record batch per partition, and no
//     control batch (INVALID_RECORD); zstd needs v7+
//     (UNSUPPORTED_COMPRESSION_TYPE). These are Kafka's checks
//     (ProduceRequest.validateRecords and LogValidator).
//   - v0-2 carry message sets (magic 0/1): each is converted to v2 batches
//     (record.ConvertMessageSet: one batch per compressed wrapper or per run
//     of plain messages), appended in a single Append. A v2 batch sent at
//     v0-2 is accepted as is, as Kafka did.
//   - acks=0: no response. As in Kafka, a partition error closes the
//     connection (after the earlier replies), the only way to tell the
//     client to refresh its metadata.
//   - acks=1: answered once the records are written (readable).
//   - acks=-1: answered once they are fsynced (Partition.WaitDurable; the log
//     group-commits concurrent waiters), partitions waited for in parallel,
//     at most TimeoutMillis from the request's arrival: a partition not yet
//     durable then is REQUEST_TIMED_OUT (its records stay written, as in
//     Kafka). TimeoutMillis <= 0 waits for the fsync without a deadline.
//     A topic with min.insync.replicas > 1 is NOT_ENOUGH_REPLICAS (one
//     replica here), nothing written.
//   - A replicated partition (a raft group, internal/replica): acks=1 is
//     answered at the leader's append (fsynced there; a leader change can
//     cut it, as in Kafka), acks=-1 at commit (fsynced on a majority;
//     Partition.WaitCommitted), NOT_LEADER_OR_FOLLOWER when a leader change
//     cut the batch or this broker does not lead, NOT_ENOUGH_REPLICAS when
//     the ISR is smaller than min.insync.replicas (checked before writing).
//   - Any other acks value is INVALID_REQUIRED_ACKS, nothing written.
//   - A retried idempotent batch (same producer, epoch and sequences as one
//     of the producer's last 5) is a success with its original offsets.
//     Sequence gaps are OUT_OF_ORDER_SEQUENCE_NUMBER, stale epochs
//     INVALID_PRODUCER_EPOCH.
//   - Transactional batches (KIP-890 part 1): a producer's first batch of a
//     transaction on a partition is accepted only if the transaction
//     coordinator confirms, in process and under the partition's lock,
//     that its ongoing transaction at that epoch includes the partition
//     (AddPartitionsToTxn came first); otherwise INVALID_TXN_STATE
//     (PRODUCER_FENCED when a newer epoch exists). So a delayed write from
//     a transaction that has ended cannot open a new one, and a marker can
//     never land between the check and the append.
//   - Transactions v2 (KIP-890 part 2, transaction.version=2, Produce
//     v12+ with a transactional id): the produce adds its partitions to
//     the transaction itself, instead of AddPartitionsToTxn: one
//     coordinator write for all the request's partitions new to the
//     transaction, durable before the append (the connection's reader
//     waits for that fsync; nothing is written when none is new). In a
//     cluster a leader whose broker does not coordinate the transaction
//     asks the coordinator's broker (AddPartitionsToTxn v5, VerifyOnly
//     false, as Kafka's brokers do), only for partitions where the
//     producer has no transaction open yet; the append's verification
//     under the partition's lock still guards against a marker landing
//     in between. A coordinator that cannot answer or is still ending the
//     previous transaction is NOT_ENOUGH_REPLICAS (retried), as Kafka
//     answers a produce whose verification failed so.
//   - LogAppendTime is -1 unless the topic uses LogAppendTime.
//   - A full disk or a failed log is KAFKA_STORAGE_ERROR (retriable;
//     nothing of the batch kept), NOT_LEADER_FOR_PARTITION before v4, which
//     lacks the code (as Kafka does).
//
// Version notes: v1 throttle time; v2 LogAppendTime; v3 transactional id and
// record batches; v5 LogStartOffset; v7 zstd; v8 per-partition ErrorMessage
// (ErrorRecords never set: a batch is accepted or rejected whole); v9+
// flexible; v10 KIP-951: NOT_LEADER_OR_FOLLOWER names the partition's
// current leader (CurrentLeader) and its endpoint (NodeEndpoints) when
// another live broker leads it (leaders.go); v11-12 transactions v2
// (KIP-890 part 2: a transactional produce adds its partition to the
// transaction); v13 topics by id.
func init() { register(0, 0, 13, handleProduce) }

// durableWait is an acks=-1 partition waiting for fsync.
type durableWait struct {
	p      *partition.Partition
	offset int64
	epoch  int32 // the leader epoch it was appended in (replicated partitions)
	ti, pi int   // where its answer is in the response
	topic  metadata.Topic
}

func handleProduce(h *Handler, _ context.Context, req *server.Request) (server.Reply, error) {
	r := req.Msg.(*kmsg.ProduceRequest)
	resp := r.ResponseKind().(*kmsg.ProduceResponse)
	arrived := time.Now()
	var (
		waits   []durableWait
		failed  bool
		leaders endpoints // KIP-951's NodeEndpoints
	)
	added := h.addImplicitly(req)
	resp.Topics = make([]kmsg.ProduceResponseTopic, 0, len(r.Topics))
	if r.Acks == -1 {
		n := 0
		for i := range r.Topics {
			n += len(r.Topics[i].Partitions)
		}
		waits = make([]durableWait, 0, n)
	}
	for ti, rt := range r.Topics {
		st := kmsg.NewProduceResponseTopic()
		st.Topic, st.TopicID = rt.Topic, rt.TopicID
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, 0, len(rt.Partitions))
		t, topicErr := h.requestTopic(req.Version >= 13, rt.Topic, rt.TopicID)
		minISR := int64(1)
		if topicErr == nil && r.Acks == -1 {
			if ts := h.c.TopicSettings(t.Name); ts != nil {
				minISR = ts.MinInsyncReplicas
			}
		}
		for pi := range rt.Partitions {
			rp := &rt.Partitions[pi]
			sp := kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			err := topicErr
			var p *partition.Partition
			var res partition.AppendResult
			if err == nil {
				p, res, err = h.produceTo(req, r.Acks, minISR, t, rp, added)
			}
			if err != nil {
				failed = true
				sp.ErrorCode, sp.ErrorMessage = errorCodeFor(err, req.Version >= 4), errorMessage(err)
				sp.BaseOffset = -1
				if b, epoch, ok := h.leaderHint(req, t, rp.Partition, err); ok && req.Version >= 10 {
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = b.ID, epoch
					leaders.add(b)
				}
				st.Partitions = append(st.Partitions, sp)
				continue
			}
			sp.BaseOffset = res.BaseOffset
			sp.LogAppendTime = res.LogAppendTime
			sp.LogStartOffset = p.StartOffset()
			if r.Acks == -1 {
				waits = append(waits, durableWait{p: p, offset: res.LastOffset, epoch: res.LeaderEpoch, ti: ti, pi: pi, topic: t})
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	for _, b := range leaders {
		addProduceBroker(resp, b)
	}
	switch {
	case r.Acks == 0 && failed:
		return server.Reply{}, errors.New("produce with acks=0 failed on a partition: closing the connection so that the client refreshes its metadata")
	case r.Acks == 0:
		return server.Reply{NoResponse: true}, nil
	case len(waits) == 0:
		return now(resp)
	}
	var deadline time.Time
	if r.TimeoutMillis > 0 {
		deadline = arrived.Add(time.Duration(r.TimeoutMillis) * time.Millisecond)
	}
	return server.Reply{Finish: func(ctx context.Context) kmsg.Response {
		if !deadline.IsZero() {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
		for i, err := range waitDurable(ctx, waits) {
			if err != nil {
				w := waits[i]
				sp := &resp.Topics[w.ti].Partitions[w.pi]
				sp.ErrorCode, sp.ErrorMessage = errorCodeFor(err, req.Version >= 4), errorMessage(err)
				// Leadership moved while the batch waited for its
				// commit (a hand-over, an election): name the new
				// leader, as at the append.
				if b, epoch, ok := h.leaderHint(req, w.topic, sp.Partition, err); ok && req.Version >= 10 {
					sp.CurrentLeader.LeaderID, sp.CurrentLeader.LeaderEpoch = b.ID, epoch
					addProduceBroker(resp, b)
				}
			}
		}
		return resp
	}}, nil
}

// waitDurable waits for every partition's fsync and returns their errors in
// order. Each wait runs on its own goroutine (partitions sync their own
// files in parallel) and this returns at ctx's deadline even when an fsync
// is stuck: the waiter that runs an fsync cannot abandon it, so its
// goroutine finishes it in the background (the channel is buffered) while
// the partition is answered with ctx's error.
func waitDurable(ctx context.Context, waits []durableWait) []error {
	type result struct {
		i   int
		err error
	}
	errs := make([]error, len(waits))
	done := make(chan result, len(waits))
	pending := map[int]bool{}
	for i, w := range waits {
		if !w.p.Replicated() && w.p.DurableOffset() > w.offset {
			continue
		}
		pending[i] = true
		go func() { done <- result{i, w.p.WaitCommitted(ctx, w.offset, w.epoch)} }()
	}
	for len(pending) > 0 {
		select {
		case r := <-done:
			errs[r.i] = r.err
			delete(pending, r.i)
		case <-ctx.Done():
			for i := range pending {
				errs[i] = ctx.Err()
			}
			return errs
		}
	}
	return errs
}

// becomingLeaderWait bounds a produce's wait at a broker becoming the
// partition's leader (a hand-over or an election takes a few quorum round
// trips; a candidate that loses stops waiting when it hears the winner).
const becomingLeaderWait = time.Second

// produceTo validates and appends one partition's records.
func (h *Handler) produceTo(req *server.Request, acks int16, minISR int64, t metadata.Topic, rp *kmsg.ProduceRequestTopicPartition, added map[txn.TopicPartition]error) (*partition.Partition, partition.AppendResult, error) {
	var res partition.AppendResult
	// A leadership change here is waited out rather than refused: a
	// refusal with a hint naming a broker that refuses too makes franz-go
	// back off and load metadata, which still has the previous epoch, and
	// it then waits out its metadata age (5 s). A broker becoming the
	// partition's leader (a client moved here by a KIP-951 hint) takes the
	// batch a quorum round trip later; a leader handing over refuses it
	// only once the new leader is known. Both cost nothing otherwise.
	// After a wait the partition is asked for again: a leader that handed
	// over is a follower now (NOT_LEADER_OR_FOLLOWER with the new leader's
	// hint, not the min.insync.replicas check of a replica that has no
	// ISR any more).
	p, err := h.c.Partition(t.Name, rp.Partition)
	if err == nil && p.WaitLeadershipSettled(becomingLeaderWait) ||
		errors.Is(err, cluster.ErrNotLeader) && h.c.AwaitLeadership(t.Name, rp.Partition, becomingLeaderWait) {
		p, err = h.c.Partition(t.Name, rp.Partition)
	}
	if err != nil {
		return nil, res, err
	}
	switch {
	case acks != -1 && acks != 0 && acks != 1:
		return nil, res, fmt.Errorf("acks must be -1, 0 or 1, got %d: %w", acks, kerr.InvalidRequiredAcks)
	case t.Internal && req.ClientID != "__admin_client":
		return nil, res, fmt.Errorf("%q is an internal topic: %w", t.Name, kerr.InvalidTopicException)
	case acks == -1 && p.Replicated() && int64(p.InSyncReplicas()) < minISR:
		return nil, res, fmt.Errorf("min.insync.replicas=%d, %d in sync: %w", minISR, p.InSyncReplicas(), kerr.NotEnoughReplicas)
	case acks == -1 && !p.Replicated() && minISR > 1:
		return nil, res, fmt.Errorf("min.insync.replicas=%d but this broker is the only replica: %w", minISR, kerr.NotEnoughReplicas)
	}
	// v0-2 carry message sets; v3+ exactly one v2 batch; zstd from v7.
	data, err := record.ToBatches(rp.Records, req.Version < 3, maxDecompressedBytes)
	if err != nil {
		return nil, res, err
	}
	if err := added[txn.TopicPartition{Topic: t.Name, Partition: rp.Partition}]; err != nil {
		return nil, res, err
	}
	rules := partition.AppendRules{OneBatch: req.Version >= 3, NoZstd: req.Version < 7, NoControl: true}
	if h.txns != nil {
		topic, index := t.Name, rp.Partition
		txnID := req.Msg.(*kmsg.ProduceRequest).TransactionID
		rules.VerifyTxn = func(pid int64, epoch int16) error { return h.verifyTxn(txnID, pid, epoch, topic, index) }
	}
	res, err = p.Append(data, rules)
	return p, res, err
}

// verifyTimeout bounds a verification asked of the coordinator on another
// broker: the partition's lock is held meanwhile.
const verifyTimeout = 5 * time.Second

// verifyTxn asks the transaction coordinator whether producer pid at
// epoch has an ongoing transaction that includes the partition (KIP-890
// part 1): in process when this broker coordinates, else the coordinator's
// broker through TxnPeer. The partition calls it under its lock, so no
// marker lands between the answer and the append, wherever the
// coordinator is: the marker's WriteTxnMarkers waits for the same lock.
func (h *Handler) verifyTxn(txnID *string, pid int64, epoch int16, topic string, index int32) error {
	lead, local, err := h.txnCoordinator()
	switch {
	case err != nil:
		return fmt.Errorf("%w: the transaction coordinator: %v", partition.ErrTxnVerifyUnavailable, err)
	case local && !h.c.Replicated():
		return h.txns.Verify(pid, epoch, topic, index)
	case local:
		err := h.txns.Verify(pid, epoch, topic, index)
		if errors.Is(err, txn.ErrCoordinatorLoading) {
			return fmt.Errorf("%w: %v", partition.ErrTxnVerifyUnavailable, err)
		}
		return err
	case h.cfg.TxnPeer == nil || txnID == nil:
		return fmt.Errorf("the transaction coordinator is broker %d and this broker cannot ask it", lead)
	}
	ctx, cancel := context.WithTimeout(context.Background(), verifyTimeout)
	defer cancel()
	return h.cfg.TxnPeer.Verify(ctx, lead, *txnID, pid, epoch, topic, index)
}

// addImplicitly adds the partitions of a transactional produce to their
// transaction under transactions v2 (Produce v12+, transaction.version
// 2), all in one coordinator write (one fsync) per request, in process or
// at the coordinator's broker (addToTxn), and returns the error of each
// partition it could not add. A partition this broker does not lead is
// left to the append's error; one where the producer's transaction is
// already open at this epoch needs no add (the coordinator has it: the
// partition saw a verified batch of it), which spares the coordinator a
// request per produce when it is on another broker.
func (h *Handler) addImplicitly(req *server.Request) map[txn.TopicPartition]error {
	r := req.Msg.(*kmsg.ProduceRequest)
	if req.Version < 12 || r.TransactionID == nil || h.txns == nil || h.transactionVersion() < 2 { // the cheap checks first: most produces are not transactional
		return nil
	}
	var parts []txn.TopicPartition
	pid, epoch := int64(-1), int16(-1)
	for _, rt := range r.Topics {
		t, err := h.requestTopic(req.Version >= 13, rt.Topic, rt.TopicID)
		if err != nil {
			continue // the partitions get the topic's error
		}
		for _, rp := range rt.Partitions {
			bh, err := record.ReadBatchHeader(rp.Records)
			if err != nil || !bh.IsTransactional() || bh.ProducerID < 0 {
				continue // the append refuses what is wrong
			}
			if pid >= 0 && (bh.ProducerID != pid || bh.ProducerEpoch != epoch) {
				continue // one producer per request; the append's verification refuses the rest
			}
			p, err := h.c.Partition(t.Name, rp.Partition)
			if err != nil || p.TxnOngoing(bh.ProducerID, bh.ProducerEpoch) {
				continue
			}
			pid, epoch = bh.ProducerID, bh.ProducerEpoch
			parts = append(parts, txn.TopicPartition{Topic: t.Name, Partition: rp.Partition})
		}
	}
	if len(parts) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(max(r.TimeoutMillis, 1000))*time.Millisecond)
	defer cancel()
	errs, err := h.addToTxn(ctx, *r.TransactionID, pid, epoch, parts)
	out := map[txn.TopicPartition]error{}
	for i, tp := range parts {
		switch {
		case err != nil:
			out[tp] = err
		case errs[i] != nil:
			out[tp] = errs[i]
		}
	}
	return out
}

// addProduceBroker lists b in the response's NodeEndpoints (KIP-951) once.
func addProduceBroker(resp *kmsg.ProduceResponse, b metadata.BrokerInfo) {
	if slices.ContainsFunc(resp.Brokers, func(x kmsg.ProduceResponseBroker) bool { return x.NodeID == b.ID }) {
		return
	}
	nb := kmsg.NewProduceResponseBroker()
	nb.NodeID, nb.Host, nb.Port, nb.Rack = b.ID, b.Host, b.Port, rackOrNil(b.Rack)
	resp.Brokers = append(resp.Brokers, nb)
}
