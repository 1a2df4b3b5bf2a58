package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Transactions (issue 19's "Speed"): a real strom serve and franz-go
// clients, transactions v2 (the broker's default, which franz-go uses).
//
//   - txn-1mib: one producer writing 1 KiB records to 8 partitions,
//     transactional and committing every 1 MiB, against an idempotent one
//     (acks=all) flushing every 1 MiB, the same workload on a fresh broker
//     each, rounds rotated; the transactional MB/s as a ratio of the
//     idempotent (goal >= 0.8x).
//   - txn-small: transactions per second of one producer writing 1 record
//     to each of 10 partitions per transaction (no goal stated).
//   - read-committed: one consumer reading Size bytes of 1 KiB records
//     written in 1 MiB transactions, every fourth aborted, from the start:
//     read_committed MB/s (records delivered) against read_uncommitted
//     over the same log (no goal stated).

const (
	txnGoal        = 0.8
	txnRecordBytes = 1024
	txnBytes       = 1 << 20 // per transaction (or flush) in txn-1mib and read-committed
	txnPartitions  = 8
	smallTxnParts  = 10
	abortEvery     = 4 // read-committed: every abortEvery-th transaction aborts
)

// txnClientOpts are the producer options of the transaction scenarios: kgo's
// defaults (acks=all, idempotent) with room for a whole transaction
// buffered, plus TransactionalID when id is not empty.
func txnClientOpts(addr, topic, id string) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(addr),
		kgo.ClientID("strombench"),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerBatchMaxBytes(produceBatchMaxBytes),
		kgo.MaxBufferedRecords(produceBufferBytes / txnRecordBytes),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
	}
	if id != "" {
		opts = append(opts, kgo.TransactionalID(id), kgo.TransactionTimeout(time.Minute))
	}
	return opts
}

// unitWriter writes units of records: a transaction (begin, produce,
// flush, end) or, without one, a produce and a flush; each unit's records
// are all acknowledged (and its transaction ended) before the next.
type unitWriter struct {
	cl    *kgo.Client
	txn   bool
	value []byte

	mu  sync.Mutex
	err error // the first failed record
}

func (w *unitWriter) promise(_ *kgo.Record, err error) {
	if err != nil {
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
}

// unit writes records records, spread over parts partitions in turn, and
// commits them (or aborts, when commit is false); it returns the bytes
// of record values written.
func (w *unitWriter) unit(ctx context.Context, records int, parts int32, commit bool) (int64, error) {
	if w.txn {
		if err := w.cl.BeginTransaction(); err != nil {
			return 0, fmt.Errorf("begin: %w", err)
		}
	}
	for i := range records {
		w.cl.Produce(ctx, &kgo.Record{Value: w.value, Partition: int32(i) % parts}, w.promise)
	}
	if err := w.cl.Flush(ctx); err != nil { // EndTransaction does not flush
		return 0, fmt.Errorf("flush: %w", err)
	}
	w.mu.Lock()
	err := w.err
	w.mu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("produce: %w", err)
	}
	if w.txn {
		if err := w.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			return 0, fmt.Errorf("end transaction: %w", err)
		}
	}
	return int64(records * len(w.value)), nil
}

// unitsTimed writes units until warmup has passed, then for d with the CPU
// of the harness and srv metered, and reports that second part (whole units
// only: the last one ends after d).
func (w *unitWriter) unitsTimed(ctx context.Context, srv *Server, records int, parts int32, warmup, d time.Duration) (throughput, int64, error) {
	for until := time.Now().Add(warmup); time.Now().Before(until); {
		if _, err := w.unit(ctx, records, parts, true); err != nil {
			return throughput{}, 0, fmt.Errorf("warm-up: %w", err)
		}
	}
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, 0, err
	}
	var t throughput
	var units int64
	for until := time.Now().Add(d); time.Now().Before(until); units++ {
		n, err := w.unit(ctx, records, parts, true)
		if err != nil {
			return throughput{}, 0, err
		}
		t.Records += int64(records)
		t.Bytes += n
	}
	if t.Elapsed, t.ClientCPU, t.Broker, err = m.stop(); err != nil {
		return throughput{}, 0, err
	}
	if _, t.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return throughput{}, 0, err
	}
	return t, units, nil
}

// txnOnce runs one timed measurement on a new broker: a transactional
// producer (txn) or an idempotent one, units of records to parts
// partitions.
func txnOnce(ctx context.Context, e *Env, txn bool, records int, parts int32) (throughput, int64, error) {
	cfg := e.Config()
	ctx, cancel := context.WithTimeout(ctx, cfg.Warmup+cfg.Duration+2*time.Minute)
	defer cancel()
	srv, err := e.Start(ctx, Strom)
	if err != nil {
		return throughput{}, 0, err
	}
	const topic = "bench-txn"
	if err := createTopic(ctx, srv.Addr, topic, parts); err != nil {
		return throughput{}, 0, err
	}
	id := ""
	if txn {
		id = "strombench-txn"
	}
	cl, err := kgo.NewClient(txnClientOpts(srv.Addr, topic, id)...)
	if err != nil {
		return throughput{}, 0, err
	}
	w := &unitWriter{cl: cl, txn: txn, value: make([]byte, txnRecordBytes)}
	t, units, err := w.unitsTimed(ctx, srv, records, parts, cfg.Warmup, cfg.Duration)
	cl.Close()
	if err != nil {
		return throughput{}, 0, err
	}
	return t, units, e.Stop(srv)
}

func runTxn1MiB(ctx context.Context, e *Env) error {
	cfg := e.Config()
	records := txnBytes / txnRecordBytes
	e.Notef("Workload: one franz-go producer, %d-byte values (zeros), no key, %d partitions in turn (ManualPartitioner), acks=all, idempotent; kgo: default linger, ProducerBatchMaxBytes(%s), MaxBufferedRecords(%d). Transactional: TransactionalID, BeginTransaction, %d records (%s), Flush, EndTransaction(TryCommit), again. Idempotent: the same records, Flush, again.",
		txnRecordBytes, txnPartitions, FormatSize(produceBatchMaxBytes), produceBufferBytes/txnRecordBytes, records, FormatSize(txnBytes))
	e.Notef("Each measurement: a new strom serve on an empty data dir, the topic created, %v of warm-up, then whole units for %v (timed from the first unit to the end of the last: its commit answered, or its flush); %d round(s) each, rotating which goes first; the median round by MB/s is reported, the transactional one as a ratio of the idempotent one (goal >= %gx, issue 19).",
		cfg.Warmup, cfg.Duration, cfg.Rounds, txnGoal)
	e.Notef("A transaction adds to its data's fsync, in series: the implicit add of its partitions (one __transaction_state record, fsynced), the prepare record (fsynced) before EndTxn is answered; the markers are appended before the answer and, on a single node with transactions v2, made durable by the next transaction's data fsyncs (the next transaction does not wait for them: internal/coordinator/txn complete.go).")
	names := []string{"transactional", "idempotent"}
	runs := map[string][]throughput{}
	for round := range cfg.Rounds {
		for i := range names {
			name := names[(round+i)%len(names)]
			t, n, err := txnOnce(ctx, e, name == "transactional", records, txnPartitions)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, name, err)
			}
			e.Logf("round %d %s: %.1f MB/s, %d units of %s, broker CPU %v, client CPU %v", round+1, name, t.MBps(), n, FormatSize(txnBytes), t.Broker, t.ClientCPU)
			runs[name] = append(runs[name], t)
		}
	}
	tx, txAll := median(runs["transactional"], "MB/s")
	idem, idemAll := median(runs["idempotent"], "MB/s")
	perTxn := tx.Elapsed / time.Duration(max(1, tx.Bytes/txnBytes))
	perFlush := idem.Elapsed / time.Duration(max(1, idem.Bytes/txnBytes))
	e.Figure(Figure{Name: "strom transactional", Value: tx.MBps(), Unit: "MB/s", Versus: "strom idempotent", Ratio: tx.MBps() / idem.MBps(), Goal: AtLeast, Target: txnGoal,
		Note: fmt.Sprintf("rounds %s; %v per 1 MiB transaction against %v per 1 MiB flush", txAll, perTxn.Round(10*time.Microsecond), perFlush.Round(10*time.Microsecond))})
	e.Figure(Figure{Name: "strom idempotent", Value: idem.MBps(), Unit: "MB/s", Note: "rounds " + idemAll})
	costFigures(e, "strom transactional", tx)
	costFigures(e, "strom idempotent", idem)
	return nil
}

func runTxnSmall(ctx context.Context, e *Env) error {
	cfg := e.Config()
	e.Notef("Workload: one franz-go transactional producer (TransactionalID, acks=all), each transaction 1 record of %d bytes to each of %d partitions, Flush, EndTransaction(TryCommit); a new strom serve on an empty data dir, %v of warm-up, then whole transactions for %v; %d round(s), the median by transactions/s reported. The issue states no goal: the figure is reported as measured.",
		txnRecordBytes, smallTxnParts, cfg.Warmup, cfg.Duration, cfg.Rounds)
	var runs []throughput
	for round := range cfg.Rounds {
		t, n, err := txnOnce(ctx, e, true, smallTxnParts, smallTxnParts)
		if err != nil {
			return fmt.Errorf("round %d: %w", round+1, err)
		}
		// records/s / 10 is transactions/s: keep the unit honest.
		e.Logf("round %d: %d transactions in %v (%.0f/s), broker CPU %v", round+1, n, t.Elapsed.Round(time.Millisecond), float64(n)/t.Elapsed.Seconds(), t.Broker)
		runs = append(runs, t)
	}
	med, all := median(runs, "records/s")
	txps := med.RecordsPerSec() / smallTxnParts
	e.Figure(Figure{Name: "strom", Value: txps, Unit: "tx/s",
		Note: fmt.Sprintf("rounds (records/s, %d per transaction) %s; %v per transaction", smallTxnParts, all, (time.Duration(float64(time.Second) / txps)).Round(10*time.Microsecond))})
	e.Figure(Figure{Name: "strom broker CPU per tx", Value: float64(med.Broker.Microseconds()) / 1e3 / (float64(med.Records) / smallTxnParts), Unit: "ms"})
	return nil
}

func runReadCommitted(ctx context.Context, e *Env) error {
	cfg := e.Config()
	records := txnBytes / txnRecordBytes
	txns := max(int(cfg.Size/txnBytes), abortEvery)
	txns -= txns % abortEvery
	e.Notef("Fill: one franz-go transactional producer writes %d transactions of %d records of %d bytes (%s each) to %d partitions in turn, every %dth aborted (EndTransaction(TryAbort)), on a new strom serve.",
		txns, records, txnRecordBytes, FormatSize(txnBytes), txnPartitions, abortEvery)
	e.Notef("Read: one kgo client, ConsumeTopics + ConsumeResetOffset(AtStart), no group, default fetch sizes, FetchIsolationLevel read_committed (the aborted records are fetched too and dropped by the client from the AbortedTransactions list) or read_uncommitted, from the start; MB/s counts the record values delivered to the application (read_committed gets %d of every %d); timed from client creation to the last record; %d round(s) each, rotating which goes first, over the same log; the median by MB/s reported. No goal stated.",
		abortEvery-1, abortEvery, cfg.Rounds)
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute+time.Duration(cfg.Size/MiB)*time.Second)
	defer cancel()
	srv, err := e.Start(ctx, Strom)
	if err != nil {
		return err
	}
	const topic = "bench-rc"
	if err := createTopic(ctx, srv.Addr, topic, txnPartitions); err != nil {
		return err
	}
	cl, err := kgo.NewClient(txnClientOpts(srv.Addr, topic, "strombench-rc")...)
	if err != nil {
		return err
	}
	w := &unitWriter{cl: cl, txn: true, value: make([]byte, txnRecordBytes)}
	start := time.Now()
	for i := range txns {
		if _, err := w.unit(ctx, records, txnPartitions, i%abortEvery != abortEvery-1); err != nil {
			cl.Close()
			return fmt.Errorf("fill, transaction %d: %w", i, err)
		}
	}
	cl.Close()
	e.Logf("filled %d transactions (%s) in %v", txns, FormatSize(int64(txns)*txnBytes), time.Since(start).Round(time.Millisecond))
	all := int64(txns * records)
	committed := all / abortEvery * (abortEvery - 1)
	levels := []struct {
		name string
		iso  kgo.IsolationLevel
		want int64
	}{{"read_committed", kgo.ReadCommitted(), committed}, {"read_uncommitted", kgo.ReadUncommitted(), all}}
	runs := map[string][]throughput{}
	for round := range cfg.Rounds {
		for i := range levels {
			l := levels[(round+i)%len(levels)]
			t, err := consumeIsolated(ctx, srv, topic, l.iso, l.want)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round+1, l.name, err)
			}
			e.Logf("round %d %s: %.1f MB/s, %d records, broker CPU %v", round+1, l.name, t.MBps(), t.Records, t.Broker)
			runs[l.name] = append(runs[l.name], t)
		}
	}
	if err := e.Stop(srv); err != nil {
		return err
	}
	rc, rcAll := median(runs["read_committed"], "MB/s")
	ru, ruAll := median(runs["read_uncommitted"], "MB/s")
	e.Figure(Figure{Name: "strom read_committed", Value: rc.MBps(), Unit: "MB/s", Versus: "strom read_uncommitted", Ratio: rc.MBps() / ru.MBps(),
		Note: fmt.Sprintf("no goal stated; rounds %s; %d of every %d records delivered", rcAll, abortEvery-1, abortEvery)})
	e.Figure(Figure{Name: "strom read_uncommitted", Value: ru.MBps(), Unit: "MB/s", Note: "rounds " + ruAll})
	costFigures(e, "strom read_committed", rc)
	costFigures(e, "strom read_uncommitted", ru)
	return nil
}

// consumeIsolated reads topic from the start at isolation level iso until
// want records arrived, and checks that no more come in a short while
// (read_committed must not deliver the aborted ones).
func consumeIsolated(ctx context.Context, srv *Server, topic string, iso kgo.IsolationLevel, want int64) (throughput, error) {
	m, err := startCPU(srv)
	if err != nil {
		return throughput{}, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(srv.Addr),
		kgo.ClientID("strombench"),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(iso),
	)
	if err != nil {
		return throughput{}, err
	}
	defer cl.Close()
	var t throughput
	poll := func(wait time.Duration) (stalled bool, err error) {
		pctx, cancel := context.WithTimeout(ctx, wait)
		defer cancel()
		fs := cl.PollFetches(pctx)
		if err := ctx.Err(); err != nil {
			return false, err
		}
		var ferr error
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = errors.Join(ferr, fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			t.Records++
			t.Bytes += int64(len(r.Value))
		})
		return pctx.Err() != nil, ferr
	}
	for t.Records < want {
		stalled, err := poll(consumeStall)
		if err != nil {
			return throughput{}, err
		}
		if stalled {
			return throughput{}, fmt.Errorf("no record for %v after %d of %d", consumeStall, t.Records, want)
		}
	}
	if t.Elapsed, t.ClientCPU, t.Broker, err = m.stop(); err != nil {
		return throughput{}, err
	}
	if _, t.BrokerPeakRSS, err = srv.RSS(); err != nil {
		return throughput{}, err
	}
	if _, err := poll(200 * time.Millisecond); err != nil {
		return throughput{}, err
	}
	if t.Records != want {
		return throughput{}, fmt.Errorf("read %d records, want %d", t.Records, want)
	}
	return t, nil
}
