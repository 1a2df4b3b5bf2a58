package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"
)

func TestAppendBatchRoundTrip(t *testing.T) {
	for _, c := range allCodecs {
		for _, headers := range []bool{false, true} {
			for _, n := range []int{1, 3, 1000} {
				t.Run(fmt.Sprintf("%s/headers=%v/n=%d", c, headers, n), func(t *testing.T) {
					recs := genRecords(n, headers, uint64(n))
					spec := defaultSpec(c)
					spec.BaseOffset = 42
					spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = 7, 3, 100
					b := mustBatch(t, spec, recs)

					h, err := ValidateBatch(b, testMax)
					if err != nil {
						t.Fatalf("ValidateBatch: %v", err)
					}
					maxDelta := int64(math.MinInt64)
					for _, r := range recs {
						maxDelta = max(maxDelta, r.TimestampDelta)
					}
					want := BatchHeader{
						BaseOffset: 42, Length: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
						CRC: h.CRC, Attributes: int16(c), LastOffsetDelta: int32(n - 1),
						BaseTimestamp: spec.BaseTimestamp, MaxTimestamp: spec.BaseTimestamp + maxDelta,
						ProducerID: 7, ProducerEpoch: 3, BaseSequence: 100, NumRecords: int32(n),
					}
					if h != want {
						t.Fatalf("header\n got %+v\nwant %+v", h, want)
					}
					if h.Size() != len(b) || h.Codec() != c || h.LastOffset() != 42+int64(n-1) {
						t.Fatalf("Size %d Codec %v LastOffset %d", h.Size(), h.Codec(), h.LastOffset())
					}
					h2, got, err := Records(b, testMax)
					if err != nil {
						t.Fatalf("Records: %v", err)
					}
					if h2 != h {
						t.Fatalf("Records header %+v, ValidateBatch %+v", h2, h)
					}
					equalRecords(t, got, recs)
				})
			}
		}
	}
}

func TestAppendBatchAppends(t *testing.T) {
	prefix := []byte("prefix")
	b, err := AppendBatch(prefix, defaultSpec(CodecLZ4), genRecords(5, false, 1))
	if err != nil {
		t.Fatal(err)
	}
	if string(b[:6]) != "prefix" {
		t.Fatalf("prefix clobbered: %q", b[:6])
	}
	if _, err := ValidateBatch(b[6:], testMax); err != nil {
		t.Fatal(err)
	}
}

func TestAppendBatchRejects(t *testing.T) {
	for name, tc := range map[string]struct {
		spec BatchSpec
		recs []Record
		want error
	}{
		"no records":       {defaultSpec(CodecNone), nil, ErrInvalidRecord},
		"bad codec":        {defaultSpec(Codec(5)), genRecords(1, false, 1), ErrUnsupportedCodec},
		"negative delta":   {defaultSpec(CodecNone), []Record{{OffsetDelta: -1}}, ErrInvalidRecord},
		"repeated delta":   {defaultSpec(CodecNone), []Record{{OffsetDelta: 0}, {OffsetDelta: 0}}, ErrInvalidRecord},
		"decreasing delta": {defaultSpec(CodecNone), []Record{{OffsetDelta: 3}, {OffsetDelta: 1}}, ErrInvalidRecord},
	} {
		t.Run(name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := AppendBatch(dst, tc.spec, tc.recs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err %v, want %v", err, tc.want)
			}
			if string(got) != "keep" {
				t.Fatalf("dst changed on error: %q", got)
			}
		})
	}
}

func TestBatchFlagsAndTimestamps(t *testing.T) {
	spec := defaultSpec(CodecGzip)
	spec.Transactional, spec.Control = true, true
	spec.LogAppendTime, spec.AppendTime = true, 1_800_000_000_000
	recs := genRecords(4, false, 2)
	b := mustBatch(t, spec, recs)
	h, err := ValidateBatch(b, testMax)
	if err != nil {
		t.Fatal(err)
	}
	if !h.IsTransactional() || !h.IsControl() || !h.LogAppendTime() || h.Codec() != CodecGzip {
		t.Fatalf("flags lost: attributes %#x", h.Attributes)
	}
	if h.MaxTimestamp != spec.AppendTime || h.BaseTimestamp != spec.BaseTimestamp {
		t.Fatalf("timestamps: base %d max %d", h.BaseTimestamp, h.MaxTimestamp)
	}
	if got := h.RecordTimestamp(&recs[2]); got != spec.AppendTime {
		t.Fatalf("RecordTimestamp under LogAppendTime = %d", got)
	}
	h.Attributes &^= attrLogAppendTime
	if got := h.RecordTimestamp(&recs[2]); got != spec.BaseTimestamp+recs[2].TimestampDelta {
		t.Fatalf("RecordTimestamp under CreateTime = %d", got)
	}
}

func TestLastSequence(t *testing.T) {
	for _, tc := range []struct {
		base, delta, want int32
	}{
		{-1, 5, -1},
		{0, 0, 0},
		{10, 4, 14},
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 2, 5, 2},
		{math.MaxInt32 - 5, 5, math.MaxInt32},
	} {
		h := BatchHeader{BaseSequence: tc.base, LastOffsetDelta: tc.delta}
		if got := h.LastSequence(); got != tc.want {
			t.Errorf("LastSequence(base %d, delta %d) = %d, want %d", tc.base, tc.delta, got, tc.want)
		}
	}
}

func TestCodecString(t *testing.T) {
	want := []string{"none", "gzip", "snappy", "lz4", "zstd", "codec(5)"}
	for i, w := range want {
		if got := Codec(i).String(); got != w {
			t.Errorf("Codec(%d) = %q, want %q", i, got, w)
		}
	}
}

func TestReadBatchHeaderErrors(t *testing.T) {
	good := mustBatch(t, defaultSpec(CodecNone), genRecords(2, false, 3))
	withMagic := func(m byte) []byte {
		b := append([]byte(nil), good...)
		b[offMagic] = m
		return b
	}
	withLength := func(l int32) []byte {
		b := append([]byte(nil), good...)
		binary.BigEndian.PutUint32(b[offLength:], uint32(l))
		return b
	}
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"empty":           {nil, ErrShortBuffer},
		"16 bytes":        {good[:16], ErrShortBuffer},
		"17 bytes":        {good[:17], ErrShortBuffer},
		"60 bytes":        {good[:60], ErrShortBuffer},
		"magic 1":         {withMagic(1), ErrUnsupportedMagic},
		"magic 1 short":   {withMagic(1)[:20], ErrUnsupportedMagic},
		"magic 3":         {withMagic(3), ErrUnsupportedMagic},
		"length 48":       {withLength(48), ErrCorrupt},
		"length negative": {withLength(-5), ErrCorrupt},
	} {
		if _, err := ReadBatchHeader(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	if _, err := ReadBatchHeader(append(good[:len(good):len(good)], 1, 2, 3)); err != nil {
		t.Errorf("trailing bytes after the header must be fine: %v", err)
	}
	if m, err := PeekMagic(good); err != nil || m != 2 {
		t.Errorf("PeekMagic = %d, %v", m, err)
	}
	if _, err := PeekMagic(good[:16]); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("PeekMagic short: %v", err)
	}
}

func TestCheckCRCSize(t *testing.T) {
	b := mustBatch(t, defaultSpec(CodecNone), genRecords(3, true, 4))
	if _, err := CheckCRC(b); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckCRC(b[:len(b)-1]); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("truncated: %v", err)
	}
	if _, err := CheckCRC(append(b[:len(b):len(b)], 0)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("trailing byte: %v", err)
	}
}

// Flipping any byte the CRC covers, or the CRC itself, must be detected.
func TestCRCFlippedByte(t *testing.T) {
	for _, c := range allCodecs {
		b := mustBatch(t, defaultSpec(c), genRecords(20, true, 5))
		for i := offCRC; i < len(b); i++ {
			for _, mask := range []byte{0x01, 0x80, 0xFF} {
				b[i] ^= mask
				_, err1 := CheckCRC(b)
				_, err2 := ValidateBatch(b, testMax)
				_, _, err3 := Records(b, testMax)
				b[i] ^= mask
				for _, err := range []error{err1, err2, err3} {
					if !errors.Is(err, ErrCorrupt) {
						t.Fatalf("%s: byte %d ^ %#x: err %v, want ErrCorrupt", c, i, mask, err)
					}
				}
			}
		}
	}
}

func TestSetters(t *testing.T) {
	for _, c := range allCodecs {
		recs := genRecords(10, false, 6)
		b := mustBatch(t, defaultSpec(c), recs)
		SetBaseOffset(b, 1<<40)
		SetPartitionLeaderEpoch(b, 17)
		h, err := ValidateBatch(b, testMax)
		if err != nil {
			t.Fatalf("%s: after SetBaseOffset: %v", c, err)
		}
		if h.BaseOffset != 1<<40 || h.PartitionLeaderEpoch != 17 {
			t.Fatalf("%s: header %+v", c, h)
		}
		SetLogAppendTime(b, 1_900_000_000_000)
		h, err = ValidateBatch(b, testMax)
		if err != nil {
			t.Fatalf("%s: after SetLogAppendTime: %v", c, err)
		}
		if !h.LogAppendTime() || h.MaxTimestamp != 1_900_000_000_000 || h.BaseTimestamp != defaultSpec(c).BaseTimestamp || h.Codec() != c {
			t.Fatalf("%s: header %+v", c, h)
		}
		_, got, err := Records(b, testMax)
		if err != nil {
			t.Fatal(err)
		}
		equalRecords(t, got, recs)
	}
}

// encodeRecord encodes one record by hand, so tests can build malformed
// ones.
func encodeRecord(body []byte) []byte {
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func recordBody(offsetDelta int64, extra ...byte) []byte {
	b := []byte{0}                // attributes
	b = binary.AppendVarint(b, 0) // timestamp delta
	b = binary.AppendVarint(b, offsetDelta)
	b = binary.AppendVarint(b, -1) // null key
	b = binary.AppendVarint(b, 1)
	b = append(b, 'v')
	if extra == nil {
		return binary.AppendVarint(b, 0) // no headers
	}
	return append(b, extra...)
}

func TestValidateBatchRejects(t *testing.T) {
	rec := func(delta int64) []byte { return encodeRecord(recordBody(delta)) }
	cat := func(parts ...[]byte) []byte {
		var b []byte
		for _, p := range parts {
			b = append(b, p...)
		}
		return b
	}
	for name, tc := range map[string]struct {
		b        []byte
		validate error // from ValidateBatch
		records  error // from Records (nil: accepted)
	}{
		"ok":                     {rawBatch(2, 1, cat(rec(0), rec(1))), nil, nil},
		"count above deltas":     {rawBatch(3, 1, cat(rec(0), rec(1))), ErrInvalidRecord, ErrInvalidRecord},
		"count below bytes":      {rawBatch(1, 0, cat(rec(0), rec(1))), ErrInvalidRecord, ErrInvalidRecord},
		"negative count":         {rawBatch(-1, 0, nil), ErrInvalidRecord, ErrInvalidRecord},
		"negative last delta":    {rawBatch(0, -1, nil), ErrInvalidRecord, ErrInvalidRecord},
		"empty (compacted)":      {rawBatch(0, 4, nil), ErrInvalidRecord, nil},
		"gap (compacted)":        {rawBatch(2, 3, cat(rec(0), rec(3))), ErrInvalidRecord, nil},
		"delta not index":        {rawBatch(2, 1, cat(rec(1), rec(0))), ErrInvalidRecord, ErrInvalidRecord},
		"delta past last":        {rawBatch(2, 1, cat(rec(0), rec(2))), ErrInvalidRecord, ErrInvalidRecord},
		"repeated delta":         {rawBatch(2, 1, cat(rec(0), rec(0))), ErrInvalidRecord, ErrInvalidRecord},
		"record length short":    {rawBatch(1, 0, append([]byte{byte(2 * (len(recordBody(0)) - 1))}, recordBody(0)...)), ErrInvalidRecord, ErrInvalidRecord},
		"record length long":     {rawBatch(1, 0, append([]byte{byte(2 * (len(recordBody(0)) + 1))}, recordBody(0)...)), ErrInvalidRecord, ErrInvalidRecord},
		"negative record length": {rawBatch(1, 0, []byte{1}), ErrInvalidRecord, ErrInvalidRecord},
		"negative header count":  {rawBatch(1, 0, encodeRecord(recordBody(0, 1))), ErrInvalidRecord, ErrInvalidRecord},
		"header count too big":   {rawBatch(1, 0, encodeRecord(recordBody(0, 0x80, 0x80, 0x80, 0x08))), ErrInvalidRecord, ErrInvalidRecord},
		"null header key":        {rawBatch(1, 0, encodeRecord(recordBody(0, 2, 1, 1))), ErrInvalidRecord, ErrInvalidRecord},
		"key length -2":          {rawBatch(1, 0, encodeRecord([]byte{0, 0, 0, 3, 0, 0})), ErrInvalidRecord, ErrInvalidRecord},
		"overlong varint":        {rawBatch(1, 0, encodeRecord([]byte{0, 0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00, 1, 1, 0})), ErrInvalidRecord, ErrInvalidRecord},
		"bad codec":              {func() []byte { b := rawBatch(1, 0, rec(0)); b[offAttributes+1] |= 5; fixCRC(b); return b }(), ErrUnsupportedCodec, ErrUnsupportedCodec},
		"garbage gzip":           {func() []byte { b := rawBatch(1, 0, rec(0)); b[offAttributes+1] |= 1; fixCRC(b); return b }(), ErrCorrupt, ErrCorrupt},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ValidateBatch(tc.b, testMax)
			if !errors.Is(err, tc.validate) || (tc.validate == nil) != (err == nil) {
				t.Errorf("ValidateBatch: %v, want %v", err, tc.validate)
			}
			_, _, err = Records(tc.b, testMax)
			if !errors.Is(err, tc.records) || (tc.records == nil) != (err == nil) {
				t.Errorf("Records: %v, want %v", err, tc.records)
			}
		})
	}
}

func TestRecordsCompacted(t *testing.T) {
	recs := []Record{{OffsetDelta: 0, Value: []byte("a")}, {OffsetDelta: 2, Value: []byte("b")}, {OffsetDelta: 5, Key: []byte("k")}}
	b := mustBatch(t, defaultSpec(CodecSnappy), recs)
	if _, err := ValidateBatch(b, testMax); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("ValidateBatch of a gapped batch: %v", err)
	}
	h, got, err := Records(b, testMax)
	if err != nil {
		t.Fatal(err)
	}
	if h.LastOffsetDelta != 5 || h.NumRecords != 3 {
		t.Fatalf("header %+v", h)
	}
	equalRecords(t, got, recs)
}

func TestRecordsAliasing(t *testing.T) {
	b := mustBatch(t, defaultSpec(CodecNone), []Record{{Key: []byte("k"), Value: []byte("value")}})
	_, recs, err := Records(b, testMax)
	if err != nil {
		t.Fatal(err)
	}
	if cap(recs[0].Key) != len(recs[0].Key) {
		t.Fatalf("key slice not capped: len %d cap %d", len(recs[0].Key), cap(recs[0].Key))
	}
	_ = append(recs[0].Key, 'X') // must not overwrite the value
	if string(recs[0].Value) != "value" {
		t.Fatalf("value overwritten: %q", recs[0].Value)
	}
}
