// Command txnprobe times 1 MiB transactions (and idempotent flushes)
// against running brokers, unit by unit in turn across them, so that a
// shared machine's load falls on every side alike (a measurement aid).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

type side struct {
	name      string
	cl        *kgo.Client
	txn       bool
	data, end []time.Duration
	unit      []time.Duration
	mu        sync.Mutex
	perr      error
}

func pct(d []time.Duration) string {
	if len(d) == 0 {
		return "-"
	}
	d = append([]time.Duration(nil), d...)
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	q := func(f float64) time.Duration { return d[int(f*float64(len(d)-1))] }
	return fmt.Sprintf("p50=%v p90=%v mean=%v", q(.5).Round(time.Microsecond), q(.9).Round(time.Microsecond), (sum / time.Duration(len(d))).Round(time.Microsecond))
}

func main() {
	addrs := flag.String("addrs", "127.0.0.1:9092", "comma-separated name=addr")
	n := flag.Int("n", 300, "units per side")
	parts := flag.Int("parts", 8, "")
	records := flag.Int("records", 1024, "")
	idem := flag.Bool("idem", true, "an idempotent side per broker too")
	flag.Parse()
	ctx := context.Background()
	var sides []*side
	for _, na := range strings.Split(*addrs, ",") {
		name, addr, _ := strings.Cut(na, "=")
		topic := fmt.Sprintf("probe-%d", time.Now().UnixNano())
		adm, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			log.Fatal(err)
		}
		if _, err := kadm.NewClient(adm).CreateTopic(ctx, int32(*parts), 1, nil, topic); err != nil {
			log.Fatal(err)
		}
		adm.Close()
		modes := []bool{true}
		if *idem {
			modes = append(modes, false)
		}
		for _, txn := range modes {
			opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.ProducerBatchMaxBytes(1 << 20),
				kgo.MaxBufferedRecords(64 << 20 / 1024), kgo.RecordPartitioner(kgo.ManualPartitioner())}
			sn := name + "/idem"
			if txn {
				sn = name + "/txn"
				opts = append(opts, kgo.TransactionalID(fmt.Sprintf("probe-%d", time.Now().UnixNano())), kgo.TransactionTimeout(time.Minute))
			}
			cl, err := kgo.NewClient(opts...)
			if err != nil {
				log.Fatal(err)
			}
			defer cl.Close()
			sides = append(sides, &side{name: sn, cl: cl, txn: txn})
		}
	}
	val := make([]byte, 1024)
	run := func(s *side, record bool) {
		t0 := time.Now()
		if s.txn {
			if err := s.cl.BeginTransaction(); err != nil {
				log.Fatal(err)
			}
		}
		for i := 0; i < *records; i++ {
			s.cl.Produce(ctx, &kgo.Record{Value: val, Partition: int32(i % *parts)}, func(_ *kgo.Record, err error) {
				if err != nil {
					s.mu.Lock()
					s.perr = err
					s.mu.Unlock()
				}
			})
		}
		if err := s.cl.Flush(ctx); err != nil || s.perr != nil {
			log.Fatal(err, s.perr)
		}
		t1 := time.Now()
		if s.txn {
			if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
				log.Fatal(err)
			}
		}
		t2 := time.Now()
		if record {
			s.data = append(s.data, t1.Sub(t0))
			s.end = append(s.end, t2.Sub(t1))
			s.unit = append(s.unit, t2.Sub(t0))
		}
	}
	for i := 0; i < 20; i++ {
		for _, s := range sides {
			run(s, false)
		}
	}
	// Runs of 10 units per side in turn: a side's consecutive units
	// still follow one another (as in the bench scenario).
	for i := 0; i < *n; i += 10 {
		for _, s := range sides {
			for j := 0; j < 10; j++ {
				run(s, true)
			}
		}
	}
	var base float64
	for _, s := range sides {
		var sum time.Duration
		for _, u := range s.unit {
			sum += u
		}
		mbps := float64(len(s.unit)**records*1024) / sum.Seconds() / 1e6
		if base == 0 {
			base = mbps
		}
		fmt.Printf("%-12s MB/s=%6.1f (x%.2f of first) unit %s | data %s | end %s\n", s.name, mbps, mbps/base, pct(s.unit), pct(s.data), pct(s.end))
	}
}
