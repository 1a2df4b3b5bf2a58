package cleaner

import (
	"context"
	"encoding/binary"
	"fmt"
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
