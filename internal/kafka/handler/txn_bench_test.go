package handler

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// BenchmarkTxnSmall: transactions per second of one franz-go
// transactional producer writing 1 record to each of 10 partitions per
// transaction (every commit: prepare record fsynced, 10 markers fsynced,
// completion fsynced). In-process broker on the OS disk, real TCP.
//
//	go test -run '^$' -bench TxnSmall -benchtime 200x ./internal/kafka/handler/
func BenchmarkTxnSmall(b *testing.B) {
	tb := startBroker(&testing.T{}, b.TempDir(), nil)
	ctx := context.Background()
	adm := tb.admin(b)
	if _, err := adm.CreateTopics(ctx, 10, 1, nil, "small"); err != nil {
		b.Fatal(err)
	}
	cl := tb.client(&testing.T{}, kgo.TransactionalID("bench-small"), kgo.DefaultProduceTopic("small"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for p := range int32(10) {
			cl.Produce(ctx, &kgo.Record{Value: []byte("x"), Partition: p}, nil)
		}
		if err := cl.Flush(ctx); err != nil { // EndTransaction does not flush
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "tx/s")
}

// BenchmarkTxnThroughput: MB/s of 1 KiB records through a transactional
// producer committing every 1 MiB, against an idempotent producer (acks=all)
// writing the same records, in the same run; the ratio is the goal
// (>= 0.8x).
//
//	go test -run '^$' -bench TxnThroughput -benchtime 3x ./internal/kafka/handler/
func BenchmarkTxnThroughput(b *testing.B) {
	tb := startBroker(&testing.T{}, b.TempDir(), nil)
	ctx := context.Background()
	adm := tb.admin(b)
	if _, err := adm.CreateTopics(ctx, 8, 1, nil, "tput-tx", "tput-idem"); err != nil {
		b.Fatal(err)
	}
	const total = 64 << 20
	const perTxn = 1 << 20
	value := make([]byte, 1024)
	run := func(cl *kgo.Client, txn bool) float64 {
		start := time.Now()
		for sent := 0; sent < total; {
			if txn {
				if err := cl.BeginTransaction(); err != nil {
					b.Fatal(err)
				}
			}
			for n := 0; n < perTxn; n += len(value) {
				cl.Produce(ctx, &kgo.Record{Value: value}, func(_ *kgo.Record, err error) {
					if err != nil {
						b.Error(err)
					}
				})
			}
			sent += perTxn
			if err := cl.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			if txn {
				if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
					b.Fatal(err)
				}
			}
		}
		return float64(total) / (1 << 20) / time.Since(start).Seconds()
	}
	txCl := tb.client(&testing.T{}, kgo.TransactionalID("bench-tput"), kgo.DefaultProduceTopic("tput-tx"))
	idCl := tb.client(&testing.T{}, kgo.DefaultProduceTopic("tput-idem"))
	b.ResetTimer()
	var tx, idem float64
	for range b.N {
		idem += run(idCl, false)
		tx += run(txCl, true)
	}
	b.ReportMetric(tx/float64(b.N), "txn-MB/s")
	b.ReportMetric(idem/float64(b.N), "idem-MB/s")
	b.ReportMetric(tx/idem, "ratio")
}
