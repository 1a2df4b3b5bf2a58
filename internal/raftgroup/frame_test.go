package raftgroup

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
)

func TestFrameRoundTrip(t *testing.T) {
	for _, payload := range [][]byte{nil, {}, []byte("x"), bytes.Repeat([]byte("ab"), 70_000)} {
		id := proposalID{node: 3, incarnation: 0xfeedface, seq: 1 << 40}
		b, err := frame(id, payload, time.UnixMilli(1234))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := record.ValidateBatch(b, len(b)); err != nil {
			t.Fatalf("framed %d bytes: not a valid batch: %v", len(payload), err)
		}
		got, p, err := unframe(b)
		if err != nil || got != id || !bytes.Equal(p, payload) || p == nil {
			t.Fatalf("unframe: %v %q %v; want %v and %d bytes", got, p, err, id, len(payload))
		}
	}
}

// What is not one proposal batch is ErrBadFrame, never a panic.
func TestUnframeRefuses(t *testing.T) {
	good, _ := frame(proposalID{1, 2, 3}, []byte("v"), time.Unix(0, 0))
	other, _ := record.AppendBatch(nil, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Key: []byte("short"), Value: []byte("v")}})
	two, _ := record.AppendBatch(nil, record.BatchSpec{ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Key: make([]byte, keySize)}, {OffsetDelta: 1, Key: make([]byte, keySize)}})
	for name, b := range map[string][]byte{
		"empty": nil, "truncated": good[:len(good)-1], "key not an id": other, "two records": two,
		"bad crc": append(append([]byte(nil), good[:len(good)-1]...), good[len(good)-1]^1),
	} {
		if _, _, err := unframe(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
}

func FuzzUnframe(f *testing.F) {
	good, _ := frame(proposalID{1, 2, 3}, []byte("payload"), time.Unix(0, 0))
	f.Add(good)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, p, err := unframe(b)
		if err != nil {
			return
		}
		again, err := frame(id, p, time.Unix(0, 0))
		if err != nil {
			t.Fatal(err)
		}
		id2, p2, err := unframe(again)
		if err != nil || id2 != id || !bytes.Equal(p, p2) {
			t.Fatalf("reframed: %v %q %v", id2, p2, err)
		}
	})
}
