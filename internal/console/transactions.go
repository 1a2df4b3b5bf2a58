package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// The transactions view (issue 19): the transactional ids the
// coordinators know (ListTransactions, API 66) described by their
// coordinators (DescribeTransactions, API 65), and a topic's producers
// per partition (DescribeProducers, API 61): what kafka-transactions.sh
// and `strom transactions` show, over HTTP.

// errTxnUnsupported: the cluster does not list transactions (Kafka before
// 3.0, or a broker that hides the APIs).
var errTxnUnsupported = &apiError{
	Status: http.StatusNotImplemented,
	Code:   "transactions_unsupported",
	Msg:    "this Kafka cluster does not list transactions (it does not advertise the ListTransactions and DescribeTransactions APIs; Kafka 3.0+ does)",
}

// openStates are the states of a transaction that has begun and not
// finished: what ?state=open (the default) lists.
var openStates = []string{"Ongoing", "PrepareCommit", "PrepareAbort", "PrepareEpochFence"}

type txnPartitionsJSON struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type transactionJSON struct {
	TransactionalID string `json:"transactional_id"`
	Coordinator     int32  `json:"coordinator"`
	State           string `json:"state"`
	ProducerID      int64  `json:"producer_id"`
	ProducerEpoch   int16  `json:"producer_epoch"`
	TimeoutMs       int32  `json:"timeout_ms"`
	// StartMs is when the open transaction began (Unix ms), and
	// DurationMs how long it has run when the console answered; both
	// null when no transaction is open.
	StartMs    *int64              `json:"start_ms"`
	DurationMs *int64              `json:"duration_ms"`
	Partitions []txnPartitionsJSON `json:"partitions"`
	Error      string              `json:"error,omitempty"`
}

// transactionsJSON is GET /api/v1/transactions.
type transactionsJSON struct {
	States       []string          `json:"states"` // the filter; empty: every state
	Transactions []transactionJSON `json:"transactions"`
	// Errors name the brokers that could not be asked: their
	// transactions are missing from the list.
	Errors []string `json:"errors,omitempty"`
}

func (c *Console) listTransactions(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	var states []string
	switch q := r.URL.Query().Get("state"); q {
	case "", "open":
		states = openStates
	case "all":
	default:
		states = strings.Split(q, ",")
	}
	if err := c.requireAPIs(ctx, errTxnUnsupported, 65, 66); err != nil {
		return err
	}
	listed, err := c.admin(ctx).ListTransactions(ctx, nil, states)
	// A coordinator that fails leaves the others' transactions listed,
	// and is named in Errors.
	partial, err := shardFailures(err)
	if err != nil {
		return err
	}
	out := transactionsJSON{States: nonNilStrings(states), Transactions: []transactionJSON{}, Errors: partial}
	var ids []string
	for _, l := range listed.Sorted() {
		// Brokers before ListTransactions v1 ignore the state filter.
		if len(states) > 0 && !slices.Contains(states, l.State) {
			continue
		}
		ids = append(ids, l.TxnID)
	}
	if len(ids) > 0 {
		described, err := c.admin(ctx).DescribeTransactions(ctx, ids...)
		// An id its coordinator did not describe carries an error.
		if _, err := shardFailures(err); err != nil {
			return err
		}
		out.Transactions = transactionsOf(listed, ids, described, time.Now())
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// transactionsOf joins the listing and the descriptions of ids, in the
// order of ids. A transaction its coordinator did not describe keeps what
// the listing says, with the error.
func transactionsOf(listed kadm.ListedTransactions, ids []string, described kadm.DescribedTransactions, now time.Time) []transactionJSON {
	out := make([]transactionJSON, 0, len(ids))
	for _, id := range ids {
		l := listed[id]
		tj := transactionJSON{TransactionalID: id, Coordinator: l.Coordinator, State: l.State, ProducerID: l.ProducerID, Partitions: []txnPartitionsJSON{}}
		d, ok := described[id]
		switch {
		case !ok:
			tj.Error = "not described by its coordinator (it may have just moved)"
		case d.Err != nil:
			tj.Error = d.Err.Error()
		default:
			tj.Coordinator, tj.State, tj.ProducerID, tj.ProducerEpoch, tj.TimeoutMs = d.Coordinator, d.State, d.ProducerID, d.ProducerEpoch, d.TimeoutMillis
			if d.StartTimestamp >= 0 && slices.Contains(openStates, d.State) {
				start, dur := d.StartTimestamp, max(now.UnixMilli()-d.StartTimestamp, 0)
				tj.StartMs, tj.DurationMs = &start, &dur
			}
			for _, t := range d.Topics.Sorted() {
				ps := slices.Clone(t.Partitions)
				slices.Sort(ps)
				tj.Partitions = append(tj.Partitions, txnPartitionsJSON{Topic: t.Topic, Partitions: ps})
			}
		}
		out = append(out, tj)
	}
	return out
}

type producerJSON struct {
	ProducerID       int64 `json:"producer_id"`
	ProducerEpoch    int16 `json:"producer_epoch"`
	LastSequence     int32 `json:"last_sequence"`
	LastTimestampMs  int64 `json:"last_timestamp_ms"`
	CoordinatorEpoch int32 `json:"coordinator_epoch"`
	// TxnStartOffset is the first offset of the producer's open
	// transaction on the partition; null when none is open.
	TxnStartOffset *int64 `json:"txn_start_offset"`
}

type partitionProducersJSON struct {
	Partition int32          `json:"partition"`
	Leader    int32          `json:"leader"`
	Producers []producerJSON `json:"producers"`
	Error     string         `json:"error,omitempty"`
}

// topicProducersJSON is GET /api/v1/topics/{topic}/producers.
type topicProducersJSON struct {
	Topic      string                   `json:"topic"`
	Partitions []partitionProducersJSON `json:"partitions"`
}

func (c *Console) getTopicProducers(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return err
	}
	if err := c.requireAPIs(ctx, &apiError{Status: http.StatusNotImplemented, Code: "producers_unsupported",
		Msg: "this Kafka cluster does not describe producers (it does not advertise the DescribeProducers API; Kafka 2.8+ does)"}, 61); err != nil {
		return err
	}
	set := kadm.TopicsSet{}
	for p := range td.Partitions {
		set.Add(topic, p)
	}
	described, err := c.admin(ctx).DescribeProducers(ctx, set)
	// A leader that fails leaves its partitions with an error.
	if _, err := shardFailures(err); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, producersOf(topic, td, described))
	return nil
}

// producersOf lists every partition of td with its producers; a partition
// no leader answered for says so.
func producersOf(topic string, td kadm.TopicDetail, described kadm.DescribedProducersTopics) topicProducersJSON {
	out := topicProducersJSON{Topic: topic, Partitions: []partitionProducersJSON{}}
	parts := described[topic].Partitions
	for _, pd := range td.Partitions.Sorted() {
		pj := partitionProducersJSON{Partition: pd.Partition, Leader: pd.Leader, Producers: []producerJSON{}}
		dp, ok := parts[pd.Partition]
		switch {
		case !ok:
			pj.Error = "its leader did not answer"
		case dp.Err != nil:
			pj.Error = dp.Err.Error()
			if dp.ErrMessage != "" {
				pj.Error += ": " + dp.ErrMessage
			}
		default:
			pj.Leader = dp.Leader
			for _, p := range dp.ActiveProducers.Sorted() {
				prj := producerJSON{ProducerID: p.ProducerID, ProducerEpoch: p.ProducerEpoch, LastSequence: p.LastSequence,
					LastTimestampMs: p.LastTimestamp, CoordinatorEpoch: p.CoordinatorEpoch}
				if p.CurrentTxnStartOffset >= 0 {
					off := p.CurrentTxnStartOffset
					prj.TxnStartOffset = &off
				}
				pj.Producers = append(pj.Producers, prj)
			}
		}
		out.Partitions = append(out.Partitions, pj)
	}
	return out
}

// requireAPIs returns unsupported unless some broker advertises every
// one of the API keys.
func (c *Console) requireAPIs(ctx context.Context, unsupported error, keys ...int16) error {
	vs, err := c.admin(ctx).ApiVersions(ctx)
	if err != nil {
		return err
	}
	ok := false
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			return
		}
		all := true
		for _, k := range keys {
			if _, has := v.KeyMaxVersion(k); !has {
				all = false
			}
		}
		ok = ok || all
	})
	if !ok {
		return unsupported
	}
	return nil
}

// shardFailures splits a sharded request's error: the brokers that failed
// while others answered, or err itself when nothing was answered (or it is
// not a shard error).
func shardFailures(err error) ([]string, error) {
	if err == nil {
		return nil, nil
	}
	se, ok := errors.AsType[*kadm.ShardErrors](err)
	if !ok || se.AllFailed {
		return nil, err
	}
	var out []string
	for _, e := range se.Errs {
		out = append(out, fmt.Sprintf("broker %d: %v", e.Broker.NodeID, e.Err))
	}
	return out, nil
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
