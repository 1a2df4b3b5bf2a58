package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/klauspost/compress/snappy"
)

// msg is a compact message description for tests.
type msg struct {
	off        int64
	attrs      int8
	ts         int64
	key, value []byte
}

func messageSet(magic int8, msgs ...msg) []byte {
	var b []byte
	for _, m := range msgs {
		b = appendMessage(b, magic, m.off, m.attrs, m.ts, m.key, m.value)
	}
	return b
}

// wrapper compresses inner messages into one wrapper message, as old
// producers do (v1 inner offsets relative 0..n-1, wrapper offset given).
func wrapper(t testing.TB, magic int8, c Codec, off int64, ts int64, inner ...msg) msg {
	t.Helper()
	value, err := Compress(c, nil, messageSet(magic, inner...))
	if err != nil {
		t.Fatal(err)
	}
	if magic == MagicV0 && c == CodecLZ4 {
		breakLZ4HeaderChecksum(value)
	}
	return msg{off: off, attrs: int8(c), ts: ts, value: value}
}

func plainMsgs(n int, ts int64) []msg {
	out := make([]msg, n)
	for i := range out {
		out[i] = msg{ts: ts + int64(i), value: fmt.Appendf(nil, "value-%d", i)}
		if i%3 != 0 {
			out[i].key = fmt.Appendf(nil, "key-%d", i)
		}
		if i%10 == 9 {
			out[i].value = nil
		}
	}
	return out
}

func checkConverted(t testing.TB, batch []byte, c Codec, msgs []msg, magic int8) {
	t.Helper()
	h, err := ValidateBatch(batch, testMax)
	if err != nil {
		t.Fatalf("converted batch invalid: %v", err)
	}
	if h.Codec() != c || h.BaseOffset != 0 || h.ProducerID != -1 || h.BaseSequence != -1 || h.PartitionLeaderEpoch != -1 {
		t.Fatalf("header %+v", h)
	}
	_, recs, err := Records(batch, testMax)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(msgs) {
		t.Fatalf("%d records, want %d", len(recs), len(msgs))
	}
	maxTs := NoTimestamp
	for i, r := range recs {
		want := msgs[i]
		wantTs := want.ts
		if magic == MagicV0 {
			wantTs = NoTimestamp
		}
		maxTs = max(maxTs, wantTs)
		if !bytes.Equal(r.Key, want.key) || (r.Key == nil) != (want.key == nil) ||
			!bytes.Equal(r.Value, want.value) || (r.Value == nil) != (want.value == nil) {
			t.Fatalf("record %d: key %q value %q, want %q %q", i, r.Key, r.Value, want.key, want.value)
		}
		if got := h.RecordTimestamp(&r); got != wantTs {
			t.Fatalf("record %d: timestamp %d, want %d", i, got, wantTs)
		}
	}
	if h.MaxTimestamp != maxTs {
		t.Fatalf("MaxTimestamp %d, want %d", h.MaxTimestamp, maxTs)
	}
}

// kafka-node sends Produce v0 with 100 plain v0 messages, all at offset 0:
// they become one batch.
func TestConvertPlainMessages(t *testing.T) {
	for _, magic := range []int8{MagicV0, MagicV1} {
		msgs := plainMsgs(100, 1_600_000_000_000)
		batches, err := ConvertMessageSet(messageSet(magic, msgs...), testMax)
		if err != nil {
			t.Fatal(err)
		}
		if len(batches) != 1 {
			t.Fatalf("magic %d: %d batches, want 1", magic, len(batches))
		}
		checkConverted(t, batches[0], CodecNone, msgs, magic)
	}
}

func TestConvertWrappers(t *testing.T) {
	for _, magic := range []int8{MagicV0, MagicV1} {
		for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4} {
			t.Run(fmt.Sprintf("v%d/%s", magic, c), func(t *testing.T) {
				inner := plainMsgs(50, 1_650_000_000_000)
				for i := range inner {
					inner[i].off = int64(i)
				}
				before := plainMsgs(3, 1_600_000_000_000)
				after := plainMsgs(2, 1_700_000_000_000)
				var set []msg
				set = append(set, before...)
				set = append(set, wrapper(t, magic, c, 49, 1_650_000_000_049, inner...))
				set = append(set, after...)
				batches, err := ConvertMessageSet(messageSet(magic, set...), testMax)
				if err != nil {
					t.Fatal(err)
				}
				if len(batches) != 3 {
					t.Fatalf("%d batches, want 3", len(batches))
				}
				checkConverted(t, batches[0], CodecNone, before, magic)
				checkConverted(t, batches[1], c, inner, magic)
				checkConverted(t, batches[2], CodecNone, after, magic)
			})
		}
	}
}

// Snappy wrappers from non-Java clients hold a raw snappy block.
func TestConvertRawSnappyWrapper(t *testing.T) {
	inner := plainMsgs(5, 1)
	raw := snappy.Encode(nil, messageSet(MagicV1, inner...))
	set := messageSet(MagicV1, msg{off: 4, attrs: int8(CodecSnappy), ts: 5, value: raw})
	batches, err := ConvertMessageSet(set, testMax)
	if err != nil || len(batches) != 1 {
		t.Fatalf("%d batches, %v", len(batches), err)
	}
	checkConverted(t, batches[0], CodecSnappy, inner, MagicV1)
}

func TestConvertLogAppendTime(t *testing.T) {
	a := plainMsgs(2, 100)
	b := plainMsgs(3, 200)
	for i := range b {
		b[i].attrs = attrLogAppendTime
	}
	batches, err := ConvertMessageSet(messageSet(MagicV1, append(a, b...)...), testMax)
	if err != nil || len(batches) != 2 {
		t.Fatalf("%d batches, %v", len(batches), err)
	}
	h, err := ValidateBatch(batches[1], testMax)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 202 {
		t.Fatalf("LogAppendTime run: %+v, %v", h, err)
	}
	if h, _ := ReadBatchHeader(batches[0]); h.LogAppendTime() {
		t.Fatal("CreateTime run marked LogAppendTime")
	}
	// A LogAppendTime wrapper gives its timestamp to the batch.
	w := wrapper(t, MagicV1, CodecGzip, 1, 999, plainMsgs(2, 5)...)
	w.attrs |= attrLogAppendTime
	batches, err = ConvertMessageSet(messageSet(MagicV1, w), testMax)
	if err != nil {
		t.Fatal(err)
	}
	h, recs, err := Records(batches[0], testMax)
	if err != nil || !h.LogAppendTime() || h.MaxTimestamp != 999 || h.RecordTimestamp(&recs[1]) != 999 {
		t.Fatalf("LogAppendTime wrapper: %+v, %v", h, err)
	}
}

func TestConvertMessageSetErrors(t *testing.T) {
	good := messageSet(MagicV1, plainMsgs(3, 1)...)
	flip := func(b []byte, i int) []byte {
		b = append([]byte(nil), b...)
		b[i] ^= 0xFF
		return b
	}
	setSize := func(b []byte, size int32) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint32(b[8:], uint32(size))
		return b
	}
	// A message whose key length claims more than the message holds, with a
	// valid CRC.
	badKey := appendMessage(nil, MagicV1, 0, 0, 0, []byte("k"), []byte("v"))
	binary.BigEndian.PutUint32(badKey[26:], 100)
	binary.BigEndian.PutUint32(badKey[12:], crc32.ChecksumIEEE(badKey[16:]))

	nested := wrapper(t, MagicV1, CodecGzip, 0, 0, wrapper(t, MagicV1, CodecGzip, 0, 0, plainMsgs(1, 0)...))
	mixed := wrapper(t, MagicV1, CodecGzip, 0, 0)
	mixed.value, _ = Compress(CodecGzip, nil, messageSet(MagicV0, plainMsgs(1, 0)...))
	zstdWrapper := wrapper(t, MagicV1, CodecZstd, 0, 0, plainMsgs(1, 0)...)
	bomb := msg{attrs: int8(CodecGzip), value: gzipBomb(t, 32<<20)}

	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"truncated last message": {good[:len(good)-1], ErrCorrupt},
		"truncated log overhead": {good[:len(good)-len(good)/3*2+5], ErrCorrupt},
		"bad crc":                {flip(good, 12), ErrCorrupt},
		"flipped value byte":     {flip(good, 35), ErrCorrupt},
		"size below minimum":     {setSize(good, 13), ErrCorrupt},
		"negative size":          {setSize(good, -1), ErrCorrupt},
		"magic 2":                {func() []byte { b := append([]byte(nil), good...); b[16] = 2; return b }(), ErrUnsupportedMagic},
		"v1 size below minimum":  {setSize(messageSet(MagicV1, msg{}), 21), ErrCorrupt},
		"key past the end":       {badKey, ErrInvalidRecord},
		"null wrapper value":     {messageSet(MagicV1, msg{attrs: int8(CodecGzip)}), ErrInvalidRecord},
		"empty wrapper":          {messageSet(MagicV1, wrapper(t, MagicV1, CodecGzip, 0, 0)), ErrInvalidRecord},
		"nested compression":     {messageSet(MagicV1, nested), ErrInvalidRecord},
		"inner magic differs":    {messageSet(MagicV1, mixed), ErrInvalidRecord},
		"zstd wrapper":           {messageSet(MagicV1, zstdWrapper), ErrUnsupportedCodec},
		"codec 7":                {messageSet(MagicV1, msg{attrs: 7, value: []byte{1}}), ErrUnsupportedCodec},
		"corrupt gzip":           {messageSet(MagicV1, msg{attrs: int8(CodecGzip), value: []byte("nope")}), ErrCorrupt},
		"decompression bomb":     {messageSet(MagicV0, bomb), ErrTooLarge},
		"inner truncated": {messageSet(MagicV1, func() msg {
			v, _ := Compress(CodecSnappy, nil, messageSet(MagicV1, plainMsgs(2, 0)...)[:40])
			return msg{attrs: int8(CodecSnappy), value: v}
		}()), ErrCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ConvertMessageSet(tc.b, 1<<20); !errors.Is(err, tc.want) {
				t.Fatalf("ConvertMessageSet: %v, want %v", err, tc.want)
			}
		})
	}
	if batches, err := ConvertMessageSet(nil, testMax); err != nil || len(batches) != 0 {
		t.Fatalf("empty set: %d batches, %v", len(batches), err)
	}
}

func TestParseMessageSetOffsets(t *testing.T) {
	// v1: inner offsets relative, the wrapper carries the last absolute one.
	inner := plainMsgs(3, 10)
	for i := range inner {
		inner[i].off = int64(i)
	}
	set := messageSet(MagicV1, msg{off: 7, value: []byte("plain")}, wrapper(t, MagicV1, CodecLZ4, 12, 0, inner...))
	// v0: inner offsets absolute.
	inner0 := plainMsgs(2, 0)
	inner0[0].off, inner0[1].off = 20, 21
	set0 := messageSet(MagicV0, wrapper(t, MagicV0, CodecLZ4, 21, 0, inner0...))

	got, err := ParseMessageSet(set, testMax)
	if err != nil {
		t.Fatal(err)
	}
	var offs []int64
	for _, m := range got {
		offs = append(offs, m.Offset)
	}
	if fmt.Sprint(offs) != "[7 10 11 12]" {
		t.Fatalf("v1 offsets %v", offs)
	}
	if got[2].Timestamp != 11 || got[2].Magic != MagicV1 || string(got[2].Key) != "key-1" {
		t.Fatalf("inner message %+v", got[2])
	}
	got, err = ParseMessageSet(set0, testMax)
	if err != nil || len(got) != 2 || got[0].Offset != 20 || got[1].Offset != 21 || got[0].Timestamp != NoTimestamp {
		t.Fatalf("v0: %+v, %v", got, err)
	}
	// A fetch response cut inside the last message: the partial message is
	// dropped, not an error.
	for cut := 1; cut < len(set)-len(set0); cut++ {
		if _, err := ParseMessageSet(set[:len(set)-cut], testMax); err != nil {
			t.Fatalf("cut %d: %v", cut, err)
		}
	}
}

// batchesOf builds a log segment's worth of batches with base offsets
// assigned, as the partition stores them.
func batchesOf(t testing.TB, codecs ...Codec) (log []byte, want []Message) {
	off := int64(100)
	for i, c := range codecs {
		recs := genRecords(5+i, true, uint64(i))
		spec := defaultSpec(c)
		spec.BaseOffset = off
		b := mustBatch(t, spec, recs)
		log = append(log, b...)
		for _, r := range recs {
			want = append(want, Message{Offset: off + int64(r.OffsetDelta), Timestamp: spec.BaseTimestamp + r.TimestampDelta, Key: r.Key, Value: r.Value})
		}
		off += int64(len(recs)) + 3 // leave a gap, as aborted or compacted data would
	}
	return log, want
}

func TestDownConvert(t *testing.T) {
	log, want := batchesOf(t, CodecNone, CodecGzip, CodecSnappy, CodecLZ4, CodecNone)
	control := mustBatch(t, BatchSpec{BaseOffset: 5000, Control: true, ProducerID: 1, ProducerEpoch: 0, BaseSequence: -1},
		[]Record{{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 0, 0, 0, 0, 0}}})
	log = append(log, control...)
	partial := mustBatch(t, defaultSpec(CodecNone), genRecords(3, false, 1))
	for _, magic := range []int8{MagicV0, MagicV1} {
		for _, cut := range []int{0, 1, 30, len(partial) - 1} {
			in := append(append([]byte(nil), log...), partial[:cut]...)
			set, err := DownConvert(in, magic, testMax)
			if err != nil {
				t.Fatalf("v%d: %v", magic, err)
			}
			got, err := ParseMessageSet(set, testMax)
			if err != nil {
				t.Fatalf("v%d: parse: %v", magic, err)
			}
			if len(got) != len(want) {
				t.Fatalf("v%d: %d messages, want %d", magic, len(got), len(want))
			}
			for i, w := range want {
				g := got[i]
				if magic == MagicV0 {
					w.Timestamp = NoTimestamp
				}
				if g.Offset != w.Offset || g.Timestamp != w.Timestamp || g.Magic != magic ||
					!bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) ||
					!bytes.Equal(g.Value, w.Value) || (g.Value == nil) != (w.Value == nil) {
					t.Fatalf("v%d message %d:\n got %+v\nwant %+v", magic, i, g, w)
				}
			}
		}
	}
}

// The wrapper structure Kafka's consumers expect: one wrapper per compressed
// batch, at the last absolute offset; v1 inner offsets relative to the
// batch, v0 absolute; v0 LZ4 with the KAFKA-3160 header checksum.
func TestDownConvertWrapperLayout(t *testing.T) {
	recs := []Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 2, Value: []byte("b")}, {OffsetDelta: 4, Value: []byte("c")}}
	spec := defaultSpec(CodecLZ4)
	spec.BaseOffset = 1000
	b := mustBatch(t, spec, recs)
	for _, magic := range []int8{MagicV0, MagicV1} {
		set, err := DownConvert(b, magic, testMax)
		if err != nil {
			t.Fatal(err)
		}
		w, n, err := readMessage(set)
		if err != nil || n != len(set) {
			t.Fatalf("v%d: one wrapper expected: %d of %d bytes, %v", magic, n, len(set), err)
		}
		if w.Offset != 1004 || w.Codec() != CodecLZ4 || w.Key != nil {
			t.Fatalf("v%d: wrapper %+v", magic, w)
		}
		k, _ := lz4DescriptorEnd(w.Value)
		correct := w.Value[k] == lz4HeaderChecksum(w.Value[4:k])
		if correct != (magic == MagicV1) {
			t.Fatalf("v%d: header checksum correct=%v", magic, correct)
		}
		data, err := decompress(CodecLZ4, w.Value, testMax, true, nil)
		if err != nil {
			t.Fatal(err)
		}
		var offs []int64
		for len(data) > 0 {
			m, n, err := readMessage(data)
			if err != nil {
				t.Fatal(err)
			}
			offs = append(offs, m.Offset)
			data = data[n:]
		}
		want := "[0 2 4]"
		if magic == MagicV0 {
			want = "[1000 1002 1004]"
		}
		if fmt.Sprint(offs) != want {
			t.Fatalf("v%d inner offsets %v, want %s", magic, offs, want)
		}
	}
}

// TestDownConvertZstdToGzip: a zstd batch, which magic v0/v1 cannot
// carry, is down-converted to a gzip wrapper holding the same records at
// the same offsets (a zstd topic stays readable by Fetch v0-v3 clients).
func TestDownConvertZstdToGzip(t *testing.T) {
	recs := genRecords(3, false, 1)
	zs := mustBatch(t, defaultSpec(CodecZstd), recs)
	plain := mustBatch(t, defaultSpec(CodecNone), recs)
	for _, magic := range []int8{MagicV0, MagicV1} {
		ms, err := DownConvert(zs, magic, testMax)
		if err != nil {
			t.Fatalf("v%d: %v", magic, err)
		}
		m, _, err := readMessage(ms)
		if err != nil || m.Codec() != CodecGzip {
			t.Fatalf("v%d: wrapper %+v %v, want gzip", magic, m, err)
		}
		want, err := DownConvert(plain, magic, testMax)
		if err != nil {
			t.Fatal(err)
		}
		got, err1 := ParseMessageSet(ms, testMax)
		exp, err2 := ParseMessageSet(want, testMax)
		if err1 != nil || err2 != nil || len(got) != len(exp) || len(got) != len(recs) {
			t.Fatalf("v%d: %d messages (%v), want %d (%v)", magic, len(got), err1, len(exp), err2)
		}
		for i := range got {
			if got[i].Offset != exp[i].Offset || string(got[i].Key) != string(exp[i].Key) || string(got[i].Value) != string(exp[i].Value) || got[i].Timestamp != exp[i].Timestamp {
				t.Fatalf("v%d: message %d = %+v, want %+v", magic, i, got[i], exp[i])
			}
		}
	}
}

func TestDownConvertErrors(t *testing.T) {
	ok := mustBatch(t, defaultSpec(CodecNone), genRecords(2, false, 1))
	if _, err := DownConvert(ok, 2, testMax); !errors.Is(err, ErrUnsupportedMagic) {
		t.Errorf("magic 2 target: %v", err)
	}
	bad := append([]byte(nil), ok...)
	bad[len(bad)-1] ^= 1
	if _, err := DownConvert(bad, MagicV1, testMax); !errors.Is(err, ErrCorrupt) {
		t.Errorf("bad crc: %v", err)
	}
	v1 := messageSet(MagicV1, plainMsgs(2, 0)...)
	if _, err := DownConvert(v1, MagicV1, testMax); !errors.Is(err, ErrUnsupportedMagic) {
		t.Errorf("message set input: %v", err)
	}
	big := mustBatch(t, defaultSpec(CodecGzip), []Record{{Value: make([]byte, 2<<20)}})
	if _, err := DownConvert(big, MagicV1, 1<<20); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the cap: %v", err)
	}
	// An empty (compacted) batch yields nothing.
	empty := rawBatch(0, 3, nil)
	if set, err := DownConvert(empty, MagicV1, testMax); err != nil || len(set) != 0 {
		t.Errorf("empty batch: %d bytes, %v", len(set), err)
	}
}

// Old producer -> log -> old consumer keeps keys, values and timestamps.
func TestMessageSetRoundTrip(t *testing.T) {
	for _, magic := range []int8{MagicV0, MagicV1} {
		inner := plainMsgs(4, 50)
		for i := range inner {
			inner[i].off = int64(i)
		}
		in := append(plainMsgs(3, 10), wrapper(t, magic, CodecSnappy, 3, 53, inner...))
		in = append(in, plainMsgs(2, 90)...)
		batches, err := ConvertMessageSet(messageSet(magic, in...), testMax)
		if err != nil {
			t.Fatal(err)
		}
		var log []byte
		next := int64(0)
		for _, b := range batches {
			SetBaseOffset(b, next)
			h, _ := ReadBatchHeader(b)
			next = h.LastOffset() + 1
			log = append(log, b...)
		}
		set, err := DownConvert(log, magic, testMax)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParseMessageSet(set, testMax)
		if err != nil {
			t.Fatal(err)
		}
		flat := append(append(plainMsgs(3, 10), inner...), plainMsgs(2, 90)...)
		if len(got) != len(flat) {
			t.Fatalf("v%d: %d messages, want %d", magic, len(got), len(flat))
		}
		for i, w := range flat {
			wantTs := w.ts
			if magic == MagicV0 {
				wantTs = NoTimestamp
			}
			g := got[i]
			if g.Offset != int64(i) || g.Timestamp != wantTs || !bytes.Equal(g.Key, w.key) || !bytes.Equal(g.Value, w.value) || (g.Value == nil) != (w.value == nil) {
				t.Fatalf("v%d message %d: %+v, want %+v", magic, i, g, w)
			}
		}
	}
}
