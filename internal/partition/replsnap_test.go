package partition

import (
	"errors"
	"reflect"
	"testing"
)

func sampleProducers() map[int64]*producer {
	return map[int64]*producer{
		7:       {Epoch: 2, LastSeen: 1700, Batches: []batchMeta{{FirstSeq: 0, LastSeq: 4, FirstOffset: 10, LastOffset: 14, Timestamp: -1}, {FirstSeq: 5, LastSeq: 5, FirstOffset: 20, LastOffset: 20, Timestamp: 99}}},
		1 << 40: {Epoch: 0, LastSeen: 3, Batches: []batchMeta{{FirstSeq: 2147483647, LastSeq: 2147483647, FirstOffset: 0, LastOffset: 0}}},
	}
}

func TestReplicaSnapshotRoundTrip(t *testing.T) {
	b := encodeReplicaSnapshot(100, sampleProducers())
	start, prods, err := decodeReplicaSnapshot(b)
	if err != nil || start != 100 || !reflect.DeepEqual(prods, sampleProducers()) {
		t.Fatalf("decode: %d %v %v", start, prods, err)
	}
	// Every truncation and a version change are refused, never a panic.
	for n := 0; n < len(b); n++ {
		if _, _, err := decodeReplicaSnapshot(b[:n]); !errors.Is(err, ErrBadReplicaSnapshot) {
			t.Fatalf("cut at %d: %v", n, err)
		}
	}
	b[0] = 2
	if _, _, err := decodeReplicaSnapshot(b); !errors.Is(err, ErrBadReplicaSnapshot) {
		t.Fatalf("version 2: %v", err)
	}
	// A batch at or above the log start cannot be in the state as of it.
	if _, _, err := decodeReplicaSnapshot(encodeReplicaSnapshot(20, sampleProducers())); !errors.Is(err, ErrBadReplicaSnapshot) {
		t.Fatalf("batch at the start: %v", err)
	}
}

// FuzzDecodeReplicaSnapshot: the decoder never panics, and what it
// accepts encodes back to the same state.
func FuzzDecodeReplicaSnapshot(f *testing.F) {
	f.Add(encodeReplicaSnapshot(100, sampleProducers()))
	f.Add(encodeReplicaSnapshot(0, nil))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		start, prods, err := decodeReplicaSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadReplicaSnapshot) {
				t.Fatalf("error %v is not ErrBadReplicaSnapshot", err)
			}
			return
		}
		start2, prods2, err := decodeReplicaSnapshot(encodeReplicaSnapshot(start, prods))
		if err != nil || start2 != start || !reflect.DeepEqual(prods, prods2) {
			t.Fatalf("re-encoded: %d %v %v; was %d %v", start2, prods2, err, start, prods)
		}
	})
}
