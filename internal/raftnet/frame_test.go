package raftnet

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

func TestFrameRoundTrip(t *testing.T) {
	es := []entry{{Group: 1, Msg: []byte("a")}, {Group: 1 << 40, Msg: nil}, {Group: 7, Msg: bytes.Repeat([]byte{9}, 300)}}
	hi := hello{Node: 3, Incarnation: 1 << 60, Mechanism: "SCRAM-SHA-512", Cluster: "c-1"}
	buf := appendHello(nil, hi)
	buf = appendAuth(buf, []byte("n,,n=user,r=abc"))
	buf = appendVerdict(buf, verdict{Code: verdictRefused, Reason: "no"})
	buf = appendBatch(buf, es)
	r := bytes.NewReader(buf)
	body, err := readFrame(r, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	h, err := decodeHello(body)
	if err != nil || h != hi {
		t.Fatalf("hello %+v, %v", h, err)
	}
	if body, err = readFrame(r, DefaultMaxFrame); err != nil {
		t.Fatal(err)
	}
	if tok, err := decodeAuth(body); err != nil || string(tok) != "n,,n=user,r=abc" {
		t.Fatalf("auth %q, %v", tok, err)
	}
	if body, err = readFrame(r, DefaultMaxFrame); err != nil {
		t.Fatal(err)
	}
	if v, err := decodeVerdict(body); err != nil || v != (verdict{Code: verdictRefused, Reason: "no"}) {
		t.Fatalf("verdict %+v, %v", v, err)
	}
	body, err = readFrame(r, DefaultMaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeBatch(body)
	if err != nil || len(got) != len(es) {
		t.Fatalf("batch %d entries, %v", len(got), err)
	}
	for i := range es {
		if got[i].Group != es[i].Group || !bytes.Equal(got[i].Msg, es[i].Msg) {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], es[i])
		}
	}
	if _, err := readFrame(r, DefaultMaxFrame); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v", err)
	}
}

func TestFrameRejects(t *testing.T) {
	good := appendBatch(nil, []entry{{Group: 1, Msg: []byte("hello")}})
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, frame := range map[string][]byte{
		"crc":       mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }),
		"huge size": mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 1<<31); return b }),
		"tiny size": mutate(func(b []byte) []byte { binary.BigEndian.PutUint32(b, 4); return b }),
	} {
		if _, err := readFrame(bytes.NewReader(frame), 1<<20); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
	if _, err := readFrame(bytes.NewReader(good[:len(good)-1]), 1<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("truncated: %v", err)
	}
	body := good[frameHeader:]
	for name, b := range map[string][]byte{
		"count past the end": append([]byte{kindBatch, 0xff, 0xff, 0xff, 0xff}, body[5:]...),
		"length past the end": func() []byte {
			b := append([]byte(nil), body...)
			binary.BigEndian.PutUint32(b[5+8:], 1000)
			return b
		}(),
		"trailing bytes": append(append([]byte(nil), body...), 0),
		"wrong kind":     append([]byte{kindHello}, body[1:]...),
		"empty":          nil,
	} {
		if _, err := decodeBatch(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("%s: %v, want ErrBadFrame", name, err)
		}
	}
	hb := appendHello(nil, hello{Node: 1, Mechanism: "PLAIN", Cluster: "abc"})[frameHeader:]
	for name, b := range map[string][]byte{
		"short cluster id":   hb[:len(hb)-1],
		"long cluster id":    append(append([]byte(nil), hb...), 'x'),
		"other version":      append([]byte{kindHello, helloVersion + 1}, hb[2:]...),
		"mechanism past end": append(append([]byte(nil), hb[:14]...), 200),
		"negative node":      append(append([]byte{kindHello, helloVersion}, 0xff, 0xff, 0xff, 0xff), hb[6:]...),
		"verdict as a hello": appendVerdict(nil, verdict{})[frameHeader:],
		"only the kind":      {kindHello},
	} {
		if _, err := decodeHello(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("hello, %s: %v, want ErrBadFrame", name, err)
		}
	}
	// Strom's hello before version 2 (kind 1, node, cluster id): refused
	// with a message that names the cause.
	old := []byte{kindHelloV1, 0, 0, 0, 1, 0, 1, 'c'}
	if _, err := decodeHello(old); !errors.Is(err, errOldHello) {
		t.Errorf("an old hello: %v, want errOldHello", err)
	}
	vb := appendVerdict(nil, verdict{Code: verdictDuplicate, Reason: "why"})[frameHeader:]
	for name, b := range map[string][]byte{
		"short reason":    vb[:len(vb)-1],
		"unknown code":    append([]byte{kindVerdict, 9}, vb[2:]...),
		"auth as verdict": appendAuth(nil, []byte("tok"))[frameHeader:],
	} {
		if _, err := decodeVerdict(b); !errors.Is(err, ErrBadFrame) {
			t.Errorf("verdict, %s: %v, want ErrBadFrame", name, err)
		}
	}
}

// FuzzDecode: no input panics readFrame or the decoders, and what decodes
// encodes back to the same bytes. The input is tried both as a whole frame
// and as a frame's body (past the CRC, which random bytes rarely match).
func FuzzDecode(f *testing.F) {
	batch := appendBatch(nil, []entry{{Group: 1, Msg: []byte("x")}, {Group: 2}})
	hi := appendHello(nil, hello{Node: 1, Incarnation: 7, Mechanism: "PLAIN", Cluster: "c"})
	auth := appendAuth(nil, []byte("\x00u\x00p"))
	verd := appendVerdict(nil, verdict{Code: verdictDuplicate, Reason: "node 1 at 10.0.0.1:5"})
	snapHead, _ := appendSnapHeader(nil, 7, &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
		Snapshot: &raftpb.Snapshot{Data: []byte("reference")}})
	snapChunk := appendSnapChunk(nil, []byte("region bytes"))
	snapEnd := appendSnapEnd(nil, 12, 0xdeadbeef)
	snapAck := appendSnapAck(nil, verdict{Code: verdictRefused, Reason: "no replica here"})
	for _, f0 := range [][]byte{batch, hi, auth, verd, snapHead, snapChunk, snapEnd, snapAck} {
		f.Add(f0)
		f.Add(f0[frameHeader:])
	}
	f.Add([]byte{0, 0, 0, 5, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBody(t, data)
		if body, err := readFrame(bytes.NewReader(data), 1<<16); err == nil {
			checkBody(t, body)
		}
	})
}

func checkBody(t *testing.T, body []byte) {
	if es, err := decodeBatch(body); err == nil {
		if again := appendBatch(nil, es); !bytes.Equal(again[frameHeader:], body) {
			t.Fatalf("batch re-encodes differently")
		}
	}
	if h, err := decodeHello(body); err == nil {
		if again := appendHello(nil, h); !bytes.Equal(again[frameHeader:], body) {
			t.Fatalf("hello re-encodes differently")
		}
	}
	if tok, err := decodeAuth(body); err == nil {
		if again := appendAuth(nil, tok); !bytes.Equal(again[frameHeader:], body) {
			t.Fatalf("auth re-encodes differently")
		}
	}
	if g, m, err := decodeSnapHeader(body); err == nil {
		if again, err := appendSnapHeader(nil, g, m); err != nil || len(again) < frameHeader+9 {
			t.Fatalf("snapshot header re-encodes to %d bytes: %v", len(again), err)
		}
	}
	if v, err := decodeSnapAck(body); err == nil {
		if again := appendSnapAck(nil, v); !bytes.Equal(again[frameHeader:], body) {
			t.Fatalf("snapshot ack re-encodes differently")
		}
	}
	if v, err := decodeVerdict(body); err == nil {
		if again := appendVerdict(nil, v); !bytes.Equal(again[frameHeader:], body) {
			t.Fatalf("verdict re-encodes differently")
		}
	}
}
