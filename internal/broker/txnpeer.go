package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/coordinator/txn"
	"github.com/stromhq/strom/internal/partition"
)

// txnPeer is a cluster broker's client to the other brokers for
// transactions: it writes the transaction coordinator's markers to the
// partitions other brokers lead (WriteTxnMarkers, txn.MarkerSender) and
// asks the coordinator's broker to verify a transactional write to a
// partition led here (AddPartitionsToTxn v4+ VerifyOnly,
// handler.TxnPeer) or, under transactions v2, to add the partition to
// the transaction (AddPartitionsToTxn v5). The coordinator and the handlers stay free of
// sockets; this is the only place they meet the network.
//
// Three franz-go clients, so that the kinds never share a connection:
// a marker waits for a partition's lock, which a verification holds
// while it asks the coordinator's broker; with one connection per pair of
// brokers, a verification queued behind such a marker on a broker that
// answers a connection's requests in order could wait for itself. An add
// (transactions v2: a Produce v12+ or TxnOffsetCommit v5+ at this broker
// asks the coordinator to add its partition, AddPartitionsToTxn v5 with
// VerifyOnly false, handler.TxnPeer) waits at the coordinator for the
// transaction's op lock, which an end holds while its markers wait for
// a partition's lock, which a verification may hold: so adds have a
// connection of their own too, and no verification queues behind one.
//
// The clients are made at first use (the brokers' addresses are known
// from the metadata by then) and closed by close, after the coordinator
// that uses them.
type txnPeer struct {
	cluster *cluster.Cluster
	log     *slog.Logger
	self    int32
	ib      *interBroker // the listener, TLS and SASL of the peers

	lastAuthWarn atomic.Int64 // unix nanos of the last authorization warning

	mu      sync.Mutex
	markers *kgo.Client
	verify  *kgo.Client
	add     *kgo.Client
	closed  bool
}

func newTxnPeer(c *cluster.Cluster, self int32, ib *interBroker, log *slog.Logger) *txnPeer {
	return &txnPeer{cluster: c, log: log, self: self, ib: ib}
}

// refusal says why err is a peer refusing this broker ("" when it is
// not): its authorization (CLUSTER_ACTION) or its SASL login.
func refusal(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, kerr.ClusterAuthorizationFailed):
		return "not authorized: the peers need this broker's principal in super.users or allowed CLUSTER_ACTION on the cluster"
	case errors.Is(err, kerr.SaslAuthenticationFailed), errors.Is(err, kerr.IllegalSaslState), errors.Is(err, kerr.UnsupportedSaslMechanism):
		return "authentication refused: check the inter-broker JAAS credentials and sasl.mechanism.inter.broker.protocol"
	}
	return ""
}

// authWarnEvery spaces the warnings about a peer refusing this broker.
const authWarnEvery = 10 * time.Second

// warnIfRefused logs, at most every authWarnEvery, that a peer refused
// this broker's credentials or authorization: retried markers and refused
// verifications would otherwise only show as transactions that do not end.
func (p *txnPeer) warnIfRefused(peer int32, err error) {
	why := refusal(err)
	if why == "" {
		return
	}
	now := time.Now().UnixNano()
	last := p.lastAuthWarn.Load()
	if now-last < int64(authWarnEvery) || !p.lastAuthWarn.CompareAndSwap(last, now) {
		return
	}
	p.log.Warn("inter-broker client refused by a peer; transactions touching it cannot end or be verified", "peer", peer,
		"client", p.ib.String(), "principal", p.ib.principal(), "why", why, "err", err)
}

// clients returns the three clients, made from the live brokers'
// addresses the first time.
func (p *txnPeer) clients() (markers, verify, add *kgo.Client, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, nil, errors.New("inter-broker client closed")
	}
	if p.markers != nil {
		return p.markers, p.verify, p.add, nil
	}
	var seeds []string
	for _, b := range p.cluster.Brokers() {
		host, port, ok := b.Endpoint(p.ib.listener.Name)
		if !ok { // registered before endpoints were: its first listener
			host, port = b.Host, b.Port
		}
		seeds = append(seeds, net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	if len(seeds) == 0 {
		return nil, nil, nil, errors.New("no broker registered yet")
	}
	mk := func(role string) (*kgo.Client, error) {
		opts := append(p.ib.opts(), kgo.SeedBrokers(seeds...), kgo.ClientID(fmt.Sprintf("strom-broker-%d-%s", p.self, role)))
		return kgo.NewClient(opts...)
	}
	made := make([]*kgo.Client, 0, 3)
	for _, role := range []string{"txn-markers", "txn-verify", "txn-add"} {
		cl, err := mk(role)
		if err != nil {
			for _, cl := range made {
				cl.Close()
			}
			return nil, nil, nil, err
		}
		made = append(made, cl)
	}
	p.markers, p.verify, p.add = made[0], made[1], made[2]
	return p.markers, p.verify, p.add, nil
}

func (p *txnPeer) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	if p.markers != nil {
		p.markers.Close()
		p.verify.Close()
		p.add.Close()
	}
}

// leaderOf is the broker that leads a partition; ok is false when the
// partition no longer exists.
func (p *txnPeer) leaderOf(tp txn.TopicPartition) (lead int32, ok bool) {
	t, ok := p.cluster.Topic(tp.Topic)
	if !ok || tp.Partition < 0 || tp.Partition >= t.Partitions {
		return -1, false
	}
	return p.cluster.Leader(&t, tp.Partition), true
}

// WriteMarkers implements txn.MarkerSender: one WriteTxnMarkers per
// leader, the partitions that were not acknowledged sent again (to their
// leader at that time) with a capped back-off until every one is, or ctx
// ends. A peer that refuses this broker (authorization, SASL) is not
// waited for: the error returns after that round, so EndTxn answers (its
// outcome is decided once prepared) and the coordinator's timeout loop
// completes the transaction later, when the peer accepts; the refusal is
// logged (warnIfRefused).
func (p *txnPeer) WriteMarkers(ctx context.Context, pid int64, epoch int16, commit bool, coordinatorEpoch int32, parts []txn.TopicPartition) error {
	pending := slices.Clone(parts)
	backoff := 20 * time.Millisecond
	var last error
	for {
		var refused error
		byLeader := map[int32][]txn.TopicPartition{}
		var next []txn.TopicPartition
		for _, tp := range pending {
			lead, ok := p.leaderOf(tp)
			switch {
			case !ok: // deleted: nothing left to end
			case lead < 0:
				next = append(next, tp)
				last = fmt.Errorf("%s-%d has no leader", tp.Topic, tp.Partition)
			default:
				byLeader[lead] = append(byLeader[lead], tp)
			}
		}
		for lead, tps := range byLeader {
			failed, err := p.sendMarkers(ctx, lead, pid, epoch, commit, coordinatorEpoch, tps)
			if err != nil {
				last = err
				if refusal(err) != "" {
					refused = err
				}
			}
			next = append(next, failed...)
		}
		pending = next
		if len(pending) == 0 {
			return nil
		}
		if refused != nil {
			return fmt.Errorf("markers to %d partitions not acknowledged, a broker refused this one: %w", len(pending), refused)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("markers to %d partitions not acknowledged (%v): %w", len(pending), last, ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// sendMarkers sends one WriteTxnMarkers to lead and returns the
// partitions it did not acknowledge.
func (p *txnPeer) sendMarkers(ctx context.Context, lead int32, pid int64, epoch int16, commit bool, coordinatorEpoch int32, tps []txn.TopicPartition) ([]txn.TopicPartition, error) {
	cl, _, _, err := p.clients()
	if err != nil {
		return tps, err
	}
	req := kmsg.NewPtrWriteTxnMarkersRequest()
	m := kmsg.NewWriteTxnMarkersRequestMarker()
	m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch = pid, epoch, commit, coordinatorEpoch
	for _, tp := range tps {
		i := slices.IndexFunc(m.Topics, func(t kmsg.WriteTxnMarkersRequestMarkerTopic) bool { return t.Topic == tp.Topic })
		if i < 0 {
			t := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
			t.Topic = tp.Topic
			m.Topics = append(m.Topics, t)
			i = len(m.Topics) - 1
		}
		m.Topics[i].Partitions = append(m.Topics[i].Partitions, tp.Partition)
	}
	req.Markers = append(req.Markers, m)
	resp, err := req.RequestWith(ctx, cl.Broker(int(lead)))
	if err != nil {
		p.warnIfRefused(lead, err)
		return tps, fmt.Errorf("WriteTxnMarkers to broker %d: %w", lead, err)
	}
	acked := map[txn.TopicPartition]bool{}
	var firstErr error
	for _, rm := range resp.Markers {
		for _, rt := range rm.Topics {
			for _, rp := range rt.Partitions {
				tp := txn.TopicPartition{Topic: rt.Topic, Partition: rp.Partition}
				if rp.ErrorCode == 0 {
					acked[tp] = true
				} else if firstErr == nil {
					firstErr = fmt.Errorf("WriteTxnMarkers to broker %d: %s-%d: %w", lead, tp.Topic, tp.Partition, kerr.ErrorForCode(rp.ErrorCode))
				}
			}
		}
	}
	p.warnIfRefused(lead, firstErr)
	var failed []txn.TopicPartition
	for _, tp := range tps {
		if !acked[tp] {
			failed = append(failed, tp)
		}
	}
	return failed, firstErr
}

// Verify implements handler.TxnPeer.
func (p *txnPeer) Verify(ctx context.Context, coordinator int32, txnID string, pid int64, epoch int16, topic string, index int32) error {
	tp := txn.TopicPartition{Topic: topic, Partition: index}
	errs, err := p.addPartitions(ctx, "verify", coordinator, txnID, pid, epoch, true, []txn.TopicPartition{tp})
	if err != nil {
		return err
	}
	return errs[0]
}

// Add implements handler.TxnPeer: AddPartitionsToTxn v5 with VerifyOnly
// false, as Kafka's brokers send it for transactions v2, on a client of
// its own (see txnPeer).
func (p *txnPeer) Add(ctx context.Context, coordinator int32, txnID string, pid int64, epoch int16, parts []txn.TopicPartition) ([]error, error) {
	return p.addPartitions(ctx, "add", coordinator, txnID, pid, epoch, false, parts)
}

// addPartitions sends one AddPartitionsToTxn v4+ (one transaction) to the
// coordinator's broker and returns each partition's error. A request that
// got no answer, or an answer that the coordinator moved or is loading,
// is an error wrapping partition.ErrTxnVerifyUnavailable (the producer
// retries); other refusals are the coordinator's Kafka errors.
func (p *txnPeer) addPartitions(ctx context.Context, what string, coordinator int32, txnID string, pid int64, epoch int16, verifyOnly bool, parts []txn.TopicPartition) ([]error, error) {
	_, verify, add, err := p.clients()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", partition.ErrTxnVerifyUnavailable, err)
	}
	cl := add
	if verifyOnly {
		cl = verify
	}
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
	tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = txnID, pid, epoch, verifyOnly
	for _, tp := range parts {
		i := slices.IndexFunc(tr.Topics, func(t kmsg.AddPartitionsToTxnRequestTransactionTopic) bool { return t.Topic == tp.Topic })
		if i < 0 {
			tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
			tt.Topic = tp.Topic
			tr.Topics = append(tr.Topics, tt)
			i = len(tr.Topics) - 1
		}
		tr.Topics[i].Partitions = append(tr.Topics[i].Partitions, tp.Partition)
	}
	req.Transactions = append(req.Transactions, tr)
	resp, err := req.RequestWith(ctx, cl.Broker(int(coordinator)))
	if err != nil {
		p.warnIfRefused(coordinator, err)
	} else {
		p.warnIfRefused(coordinator, kerr.ErrorForCode(resp.ErrorCode))
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: %s: ask broker %d: %v", partition.ErrTxnVerifyUnavailable, what, coordinator, err)
	case txnCoordinatorMoved(resp.ErrorCode):
		return nil, fmt.Errorf("%w: %s: broker %d: %v", partition.ErrTxnVerifyUnavailable, what, coordinator, kerr.ErrorForCode(resp.ErrorCode))
	case resp.Version < 4:
		return nil, fmt.Errorf("%s with broker %d: it answered AddPartitionsToTxn v%d, which cannot", what, coordinator, resp.Version)
	case resp.ErrorCode != 0:
		return nil, fmt.Errorf("%s with broker %d: %w", what, coordinator, kerr.ErrorForCode(resp.ErrorCode))
	}
	codes := map[txn.TopicPartition]int16{}
	for _, rt := range resp.Transactions {
		if rt.TransactionalID != txnID {
			continue
		}
		for _, rtt := range rt.Topics {
			for _, rp := range rtt.Partitions {
				codes[txn.TopicPartition{Topic: rtt.Topic, Partition: rp.Partition}] = rp.ErrorCode
			}
		}
	}
	errs := make([]error, len(parts))
	for i, tp := range parts {
		code, ok := codes[tp]
		switch {
		case !ok:
			errs[i] = fmt.Errorf("%s with broker %d: no answer for %s-%d", what, coordinator, tp.Topic, tp.Partition)
		case txnCoordinatorMoved(code):
			errs[i] = fmt.Errorf("%w: %s: broker %d: %v", partition.ErrTxnVerifyUnavailable, what, coordinator, kerr.ErrorForCode(code))
		case code != 0:
			errs[i] = fmt.Errorf("%s with broker %d: %s-%d: %w", what, coordinator, tp.Topic, tp.Partition, kerr.ErrorForCode(code))
		}
	}
	return errs, nil
}

// txnCoordinatorMoved: the answer says the coordinator is elsewhere or
// not ready, which a retry resolves.
func txnCoordinatorMoved(code int16) bool {
	return code == kerr.NotCoordinator.Code || code == kerr.CoordinatorNotAvailable.Code || code == kerr.CoordinatorLoadInProgress.Code
}
