package cleaner

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// appendTxnBatch appends, in a segment of its own, a batch of producer pid
// (-1: none): records key=value, transactional when txn is set, or (typ
// >= 0) a COMMIT (1) or ABORT (0) marker.
func appendTxnBatch(t *testing.T, l *seglog.Log, pid int64, txn bool, typ int16, kvs ...string) {
	t.Helper()
	spec := record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		spec.ProducerID, spec.ProducerEpoch, spec.Transactional = pid, 0, txn
	}
	var recs []record.Record
	if typ >= 0 {
		spec.Control = true
		key := binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, 0), uint16(typ))
		recs = []record.Record{{Key: key, Value: []byte{0, 0, 0, 0, 0, 0}}}
	}
	for i := 0; i+1 < len(kvs); i += 2 {
		recs = append(recs, record.Record{OffsetDelta: int32(i / 2), Key: []byte(kvs[i]), Value: []byte(kvs[i+1])})
	}
	b, err := record.AppendBatch(nil, spec, recs)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(b, seglog.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := l.Roll(); err != nil {
		t.Fatal(err)
	}
}

// TestTransactionsCleaned: Kafka's cleaner rules for transactions (the
// offsets log holds the offsets of transactions). A later aborted
// transactional record of a key does not remove the key's committed value
// and is itself removed; a committed one supersedes older values like any
// record; markers stay (a replay needs them); nothing from the first
// batch of a transaction without a marker on is cleaned, so its records
// keep the values they may yet lose to an abort. Before these rules the
// aborted record removed the committed value it hid, and the open
// transaction's record was removed by a later value.
func TestTransactionsCleaned(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_000_000)}
	mem := memfs.New()
	l, err := seglog.Create(mem, dir, logConfig(clk, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendTxnBatch(t, l, -1, false, -1, "K", "v1") // 0
	appendTxnBatch(t, l, -1, false, -1, "J", "j0") // 1
	appendTxnBatch(t, l, 1, true, -1, "K", "v2")   // 2: aborted at 4
	appendTxnBatch(t, l, 2, true, -1, "J", "j1")   // 3: committed at 5
	appendTxnBatch(t, l, 1, true, 0)               // 4: ABORT
	appendTxnBatch(t, l, 2, true, 1)               // 5: COMMIT
	appendTxnBatch(t, l, 3, true, -1, "L", "x")    // 6: no marker yet
	appendTxnBatch(t, l, -1, false, -1, "L", "y")  // 7
	appendTxnBatch(t, l, -1, false, -1, "M", "m")  // 8: the active segment's neighbour
	c := New(mem, Options{Now: clk.now})
	res, err := c.Clean(context.Background(), l, l.EndOffset())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range readAll(t, l) {
		if len(r.key) == 4 && r.key[0] == 0 && r.key[1] == 0 { // a marker
			got = append(got, fmt.Sprintf("%d:marker%d", r.off, r.key[3]))
			continue
		}
		got = append(got, fmt.Sprintf("%d:%s=%s", r.off, r.key, r.value))
	}
	want := "[0:K=v1 3:J=j1 4:marker0 5:marker1 6:L=x 7:L=y 8:M=m]"
	if fmt.Sprint(got) != want {
		t.Fatalf("after cleaning (%+v):\n got %v\nwant %s", res, got, want)
	}
}

// TestMarkersCleaned: a compacted log with many transactions (committed
// and aborted, three producers rewriting the same few keys) cleaned again
// and again does not keep a marker per transaction: a marker goes once no
// batch of its transaction is left and delete.retention.ms has passed
// (Kafka's rule), so what stays is bounded by the live keys and the
// producers, not the transactions written. Every key keeps its latest
// committed value, no aborted value comes back, and no transactional batch
// is left without its marker (it would read as an open transaction and
// hold the last stable offset). Before, every marker stayed forever.
func TestMarkersCleaned(t *testing.T) {
	clk := &clock{t: time.UnixMilli(1_000_000)}
	mem := memfs.New()
	l, err := seglog.Create(mem, dir, logConfig(clk, time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c := New(mem, Options{Now: clk.now})
	rng := rand.New(rand.NewSource(7))
	const keys, producers = 5, 3
	want := map[string]string{} // the latest committed value per key
	txns := 0
	clean := func() {
		t.Helper()
		clk.t = clk.t.Add(2 * time.Minute) // past delete.retention.ms
		if _, err := c.Clean(context.Background(), l, l.EndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 30 {
		for i := range 10 {
			pid := int64(1 + rng.Intn(producers))
			var kvs []string
			for j := range 2 {
				kvs = append(kvs, fmt.Sprintf("k%d", rng.Intn(keys)), fmt.Sprintf("p%d-%d-%d-%d", pid, round, i, j))
			}
			appendTxnBatch(t, l, pid, true, -1, kvs...)
			commit := rng.Intn(3) != 0
			typ := int16(0)
			if commit {
				typ = 1
				for j := 0; j < len(kvs); j += 2 {
					want[kvs[j]] = kvs[j+1]
				}
			}
			appendTxnBatch(t, l, pid, true, typ)
			txns++
		}
		clean()
	}
	// Later passes (something new to clean each time) let the horizons
	// set by the last ones pass.
	for i := range 3 {
		appendTxnBatch(t, l, -1, false, -1, "other", fmt.Sprint(i))
		clean()
	}
	want["other"] = "2"

	got := map[string]string{}
	pending := map[int64][][2]string{}
	markers := 0
	for _, b := range readBatches(t, l) {
		switch {
		case b.h.IsControl():
			markers++
			if b.recs[0].Key[3] == 1 {
				for _, kv := range pending[b.h.ProducerID] {
					got[kv[0]] = kv[1]
				}
			}
			delete(pending, b.h.ProducerID)
		case b.h.IsTransactional():
			for _, r := range b.recs {
				pending[b.h.ProducerID] = append(pending[b.h.ProducerID], [2]string{string(r.Key), string(r.Value)})
			}
			if len(b.recs) == 0 {
				pending[b.h.ProducerID] = append(pending[b.h.ProducerID], [2]string{}) // an empty batch is still open
			}
		default:
			for _, r := range b.recs {
				got[string(r.Key)] = string(r.Value)
			}
		}
	}
	if len(pending) != 0 {
		t.Fatalf("transactional batches left without their marker (open transactions): %v", pending)
	}
	delete(got, "")
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed view of the cleaned log:\n got %v\nwant %v", got, want)
	}
	// At most one transaction per live key still has records, plus a
	// producer's last batch.
	if markers > keys+producers {
		t.Fatalf("%d markers left after %d transactions (at most %d expected)", markers, txns, keys+producers)
	}
	t.Logf("%d transactions, %d markers left", txns, markers)
}

type readBatch struct {
	h    record.BatchHeader
	recs []record.Record
}

// readBatches reads the log from its start: every batch with its records.
func readBatches(t *testing.T, l *seglog.Log) []readBatch {
	t.Helper()
	var out []readBatch
	for off := l.StartOffset(); off < l.EndOffset(); {
		res, err := l.Read(off, 1<<20, true)
		if err != nil {
			t.Fatalf("read at %d: %v", off, err)
		}
		if len(res.Data) == 0 {
			break
		}
		for data := res.Data; len(data) > 0; {
			h, recs, err := record.Records(data[:mustHeader(t, data).Size()], 64<<20)
			if err != nil {
				t.Fatalf("batch at %d: %v", off, err)
			}
			if h.LastOffset() >= off {
				out = append(out, readBatch{h, recs})
			}
			off = h.LastOffset() + 1
			data = data[h.Size():]
		}
	}
	return out
}
