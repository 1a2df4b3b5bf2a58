package txn

import (
	"reflect"
	"testing"
)

func TestRecordRoundTrip(t *testing.T) {
	r := record{
		ProducerID: 7, Epoch: 3, TimeoutMs: 60000, State: PrepareCommit, StartMs: 1, UpdateMs: 2,
		Partitions: []TopicPartition{{"a", 0}, {"b", 2}},
		Groups:     []string{"g"},
		Offsets:    []PendingOffset{{Group: "g", Topic: "a", Partition: 1, Offset: 10, LeaderEpoch: -1, Metadata: "m"}},
	}
	got, err := decodeRecord(encodeRecord(r))
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	// Value version 1: the previous end's markers carried (complete.go).
	r.Prev = &prevMarkers{ProducerID: 7, Epoch: 3, Commit: true, Partitions: []TopicPartition{{"a", 0}, {"c", 1}}}
	b1 := encodeRecord(r)
	if got, err := decodeRecord(b1); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip with prev: %+v %v", got, err)
	}
	for i := range b1 {
		if _, err := decodeRecord(b1[:i]); err == nil {
			t.Fatalf("a version 1 value cut at %d of %d bytes decoded", i, len(b1))
		}
	}
	r.Prev = nil
	id, err := decodeKey(txnKey("my-id"))
	if err != nil || id != "my-id" {
		t.Fatalf("key: %q %v", id, err)
	}
	b := encodeRecord(r)
	for i := range b {
		if _, err := decodeRecord(b[:i]); err == nil {
			t.Fatalf("a value cut at %d of %d bytes decoded", i, len(b))
		}
	}
}

// FuzzDecodeRecord: the decoder never panics, never allocates for counts
// the input cannot hold, and what it accepts encodes back to its input.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(record{ProducerID: 1, State: Ongoing, Partitions: []TopicPartition{{"t", 0}}, Groups: []string{"g"}}))
	f.Add(encodeRecord(record{ProducerID: 1, Epoch: 2, State: CompleteAbort}))
	f.Add(encodeRecord(record{ProducerID: 1, Epoch: 2, State: Ongoing, Prev: &prevMarkers{ProducerID: 1, Epoch: 2, Partitions: []TopicPartition{{"t", 0}}}}))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b)
		if err != nil {
			return
		}
		if got := encodeRecord(r); string(got) != string(b) {
			t.Fatalf("accepted %x, encodes to %x", b, got)
		}
		_, _ = decodeKey(b)
	})
}
