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
	if r := ask(4, &txn, -1, -1); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || r.ProducerID != -1 {
		t.Fatalf("transactional id: %+v", r)
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
