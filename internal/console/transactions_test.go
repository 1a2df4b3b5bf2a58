package console_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

// TestTransactionsAndProducers (issue 19): an open transaction shows in
// GET /api/v1/transactions with its producer id and epoch, state Ongoing,
// start time, duration and partitions, and its producer on the topic's
// partitions with the transaction's first offset; once committed it
// leaves the default (open) list, shows under ?state=all as
// CompleteCommit, and its producer has no open transaction.
func TestTransactionsAndProducers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(3)
	txnID := "console-txn-" + fmt.Sprint(time.Now().UnixNano())
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.TransactionalID(txnID), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A record before the transaction, from an idempotent producer.
	e.produce(&kgo.Record{Topic: topic, Value: []byte("before")})
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	begun := time.Now()
	first := map[int32]int64{} // the transaction's first offset per partition
	for _, p := range []int32{0, 2} {
		r := &kgo.Record{Partition: p, Value: []byte("in txn")}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
		first[p] = r.Offset
	}

	var list console.TransactionsJSON
	find := func() *console.TransactionJSON {
		for i := range list.Transactions {
			if list.Transactions[i].TransactionalID == txnID {
				return &list.Transactions[i]
			}
		}
		return nil
	}
	if s := e.do("GET", "/api/v1/transactions", nil, &list); s != 200 {
		t.Fatalf("status %d", s)
	}
	tx := find()
	if tx == nil {
		t.Fatalf("open transaction %s not listed: %+v", txnID, list)
	}
	if tx.State != "Ongoing" || tx.ProducerID < 0 || tx.ProducerEpoch < 0 || tx.TimeoutMs <= 0 || tx.Error != "" ||
		len(tx.Partitions) != 1 || tx.Partitions[0].Topic != topic || !slices.Equal(tx.Partitions[0].Partitions, []int32{0, 2}) {
		t.Fatalf("transaction %+v", tx)
	}
	if tx.StartMs == nil || tx.DurationMs == nil || *tx.StartMs < begun.Add(-time.Minute).UnixMilli() || *tx.DurationMs < 0 || *tx.DurationMs > time.Minute.Milliseconds() {
		t.Fatalf("start %v duration %v", tx.StartMs, tx.DurationMs)
	}

	var prods console.TopicProducersJSON
	if s := e.do("GET", "/api/v1/topics/"+topic+"/producers", nil, &prods); s != 200 {
		t.Fatalf("status %d", s)
	}
	if len(prods.Partitions) != 3 {
		t.Fatalf("producers %+v", prods)
	}
	for _, p := range prods.Partitions {
		if p.Error != "" {
			t.Errorf("partition %d: %s", p.Partition, p.Error)
		}
		i := slices.IndexFunc(p.Producers, func(pr console.ProducerJSON) bool { return pr.ProducerID == tx.ProducerID })
		switch p.Partition {
		case 0, 2:
			if i < 0 || p.Producers[i].TxnStartOffset == nil || *p.Producers[i].TxnStartOffset != first[p.Partition] || p.Producers[i].ProducerEpoch != tx.ProducerEpoch {
				t.Errorf("partition %d: the transactional producer %d with its open transaction at %d: %+v", p.Partition, tx.ProducerID, first[p.Partition], p.Producers)
			}
		case 1:
			if i >= 0 {
				t.Errorf("partition 1 lists the transactional producer it never saw: %+v", p.Producers)
			}
		}
	}

	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() error {
		list = console.TransactionsJSON{}
		e.do("GET", "/api/v1/transactions", nil, &list)
		if tx := find(); tx != nil {
			return fmt.Errorf("committed transaction still listed as open: %+v", tx)
		}
		list = console.TransactionsJSON{}
		e.do("GET", "/api/v1/transactions?state=all", nil, &list)
		if tx := find(); tx == nil || tx.State != "CompleteCommit" || tx.StartMs != nil {
			return fmt.Errorf("?state=all: %+v", tx)
		}
		return nil
	})
	prods = console.TopicProducersJSON{}
	e.do("GET", "/api/v1/topics/"+topic+"/producers", nil, &prods)
	for _, p := range prods.Partitions {
		for _, pr := range p.Producers {
			if pr.TxnStartOffset != nil {
				t.Errorf("partition %d: an open transaction after the commit: %+v", p.Partition, pr)
			}
		}
	}
	e.wantStatus("GET", "/api/v1/topics/nope-"+topic+"/producers", nil, 404, "unknown_topic")
}
