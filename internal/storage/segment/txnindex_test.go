package segment

import (
	"errors"
	"reflect"
	"testing"
)

func TestTxnIndexRoundTrip(t *testing.T) {
	es := []TxnEntry{{7, 0, 3, 1}, {9, 2, 10, 11}}
	var b []byte
	for _, e := range es {
		b = AppendTxnEntry(b, e)
	}
	if len(b) != 2*TxnEntrySize {
		t.Fatalf("%d bytes", len(b))
	}
	got, err := ParseTxnIndex(b)
	if err != nil || !reflect.DeepEqual(got, es) {
		t.Fatalf("%+v %v", got, err)
	}
	for _, bad := range [][]byte{b[:40], append(AppendTxnEntry(nil, TxnEntry{1, 5, 4, 0}), 0), AppendTxnEntry(AppendTxnEntry(nil, es[1]), es[0])} {
		if _, err := ParseTxnIndex(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%x: %v", bad, err)
		}
	}
	if base, ok := ParseTxnIndexName(TxnIndexName(42)); !ok || base != 42 {
		t.Fatalf("name: %d %v", base, ok)
	}
	if _, ok := ParseTxnIndexName("00000000000000000042.index"); ok {
		t.Fatal("an offset index taken for a txnindex")
	}
}

func FuzzParseTxnIndex(f *testing.F) {
	f.Add(AppendTxnEntry(nil, TxnEntry{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseTxnIndex(b)
		if err != nil {
			return
		}
		var again []byte
		for _, e := range es {
			again = AppendTxnEntry(again, e)
		}
		if string(again) != string(b) {
			t.Fatalf("accepted %x, encodes to %x", b, again)
		}
	})
}
