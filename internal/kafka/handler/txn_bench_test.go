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

// BenchmarkReadCommitted: a franz-go consumer reading 64 MiB of 1 KiB
// records written in 1 MiB transactions (every fourth aborted) from the
// start, read_committed against read_uncommitted, in the same run.
//
//	go test -run '^$' -bench ReadCommitted -benchtime 2x ./internal/kafka/handler/
func BenchmarkReadCommitted(b *testing.B) {
	tb := startBroker(b, "", nil)
	ctx := context.Background()
	if _, err := tb.admin(b).CreateTopics(ctx, 8, 1, nil, "rc"); err != nil {
		b.Fatal(err)
	}
	const total, perTxn = 64 << 20, 1 << 20
	value := make([]byte, 1024)
	cl := tb.client(b, kgo.TransactionalID("bench-rc"), kgo.DefaultProduceTopic("rc"))
	for i := 0; i*perTxn < total; i++ {
		if err := cl.BeginTransaction(); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < perTxn; n += len(value) {
			cl.Produce(ctx, &kgo.Record{Value: value}, nil)
		}
		if err := cl.Flush(ctx); err != nil {
			b.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(i%4 != 3)); err != nil {
			b.Fatal(err)
		}
	}
	read := func(iso kgo.IsolationLevel, want int) float64 {
		c := tb.client(b, kgo.ConsumeTopics("rc"), kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		defer c.Close()
		start := time.Now()
		bytes := 0
		for n := 0; n < want; {
			fs := c.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { n++; bytes += len(r.Value) })
		}
		return float64(bytes) / (1 << 20) / time.Since(start).Seconds()
	}
	records := total / len(value)
	b.ResetTimer()
	var rc, ru float64
	for range b.N {
		ru += read(kgo.ReadUncommitted(), records)
		rc += read(kgo.ReadCommitted(), records*3/4)
	}
	b.ReportMetric(rc/float64(b.N), "committed-MB/s")
	b.ReportMetric(ru/float64(b.N), "uncommitted-MB/s")
	b.ReportMetric(rc/ru, "ratio")
}
