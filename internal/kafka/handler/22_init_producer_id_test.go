package handler

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestInitProducerID(t *testing.T) {
	b := startBroker(t, "", nil)
	dc := dpDial(t, b.Addr)
	ask := func(version int16, txn *string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
		req := kmsg.NewPtrInitProducerIDRequest()
		req.Version, req.TransactionalID, req.ProducerID, req.ProducerEpoch = version, txn, pid, epoch
		req.TransactionTimeoutMillis = 60000
		return dpDo[*kmsg.InitProducerIDResponse](dc, req)
	}
	seen := map[int64]bool{}
	for v := range int16(6) {
		r := ask(v, nil, -1, -1)
		if r.ErrorCode != 0 || r.ProducerID < 0 || r.ProducerEpoch != 0 || seen[r.ProducerID] {
			t.Fatalf("v%d: %+v (ids so far %v)", v, r, seen)
		}
		seen[r.ProducerID] = true
	}
	// KIP-360: an idempotent producer naming its id gets a new one.
	old := ask(4, nil, -1, -1)
	if r := ask(4, nil, old.ProducerID, 0); r.ErrorCode != 0 || r.ProducerID == old.ProducerID || r.ProducerEpoch != 0 {
		t.Fatalf("re-init of %d: %+v", old.ProducerID, r)
	}
	if r := ask(4, nil, old.ProducerID, -1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("id without epoch: %+v", r)
	}
	txn, empty := "my-txn", ""
	first := ask(4, &txn, -1, -1)
	if first.ErrorCode != 0 || first.ProducerID < 0 || first.ProducerEpoch != 0 || seen[first.ProducerID] {
		t.Fatalf("transactional id: %+v", first)
	}
	// Again: the same id, the next epoch (fencing the first instance).
	if r := ask(4, &txn, -1, -1); r.ErrorCode != 0 || r.ProducerID != first.ProducerID || r.ProducerEpoch != 1 {
		t.Fatalf("transactional id again: %+v", r)
	}
	// KIP-360 with a stale epoch: fenced.
	if r := ask(4, &txn, first.ProducerID, 0); r.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("stale epoch: %+v", r)
	}
	if r := ask(3, &txn, first.ProducerID, 0); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("stale epoch v3: %+v", r)
	}
	if r := ask(1, &empty, -1, -1); r.ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("empty transactional id: %+v", r)
	}

	// Ids are never reused, across restarts too.
	b.Stop(t)
	b2 := startBroker(t, b.dir, nil)
	r := dpDo[*kmsg.InitProducerIDResponse](dpDial(t, b2.Addr), kmsg.NewPtrInitProducerIDRequest())
	if r.ErrorCode != 0 || seen[r.ProducerID] || r.ProducerID <= old.ProducerID {
		t.Fatalf("after restart: %+v", r)
	}
}
