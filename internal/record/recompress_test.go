package record

import (
	"fmt"
	"testing"
)

// TestRecompressKeepsTheBatch: a batch rebuilt with another codec keeps
// everything but the codec and the CRC: producer id, epoch, base
// sequence, flags, timestamps, offsets, and every record; a level applies.
func TestRecompressKeepsTheBatch(t *testing.T) {
	spec := defaultSpec(CodecGzip)
	spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence, spec.Transactional = 7, 2, 40, true
	recs := genRecords(50, true, 3)
	b := mustBatch(t, spec, recs)
	for _, c := range []Codec{CodecNone, CodecSnappy, CodecLZ4, CodecZstd} {
		for _, level := range []int{DefaultLevel, 1, 9, 17} {
			out, h, err := Recompress(b, c, level, testMax)
			if err != nil {
				t.Fatalf("%s level %d: %v", c, level, err)
			}
			orig, _ := ReadBatchHeader(b)
			want := orig
			want.Attributes = orig.Attributes&^attrCodecMask | int16(c)
			want.Length, want.CRC = h.Length, h.CRC
			if h != want {
				t.Fatalf("%s level %d: header %+v, want %+v", c, level, h, want)
			}
			_, got, err := Records(out, testMax)
			if err != nil || fmt.Sprint(got) != fmt.Sprint(recs) {
				t.Fatalf("%s level %d: records differ (%v)", c, level, err)
			}
		}
	}
	if _, _, err := Recompress(b, CodecGzip, 42, testMax); err == nil {
		t.Fatal("gzip level 42 accepted")
	}
}

// TestLZ4LevelApplies: compression.lz4.level is applied, as Kafka applies
// it: the default (9) is the fast compressor's output, any other level
// the high-compression compressor's, which on repetitive records is
// smaller at 17 than at the default; every level decodes to the records.
// (Before, every level gave the fast compressor's output.)
func TestLZ4LevelApplies(t *testing.T) {
	recs := make([]Record, 200)
	for i := range recs {
		recs[i] = Record{OffsetDelta: int32(i), Value: []byte(fmt.Sprintf(`{"user":%d,"event":"click","page":"/items/%d","ok":true}`, i%17, i%5))}
	}
	b := mustBatch(t, defaultSpec(CodecNone), recs)
	size := map[int]int{}
	for _, level := range []int{1, 9, 17} {
		out, _, err := Recompress(b, CodecLZ4, level, testMax)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if _, got, err := Records(out, testMax); err != nil || fmt.Sprint(got) != fmt.Sprint(recs) {
			t.Fatalf("level %d: records differ (%v)", level, err)
		}
		size[level] = len(out)
	}
	fast, _, _ := Recompress(b, CodecLZ4, DefaultLevel, testMax)
	if size[9] != len(fast) {
		t.Errorf("level 9 gave %d bytes, the fast compressor %d: the default must stay the fast compressor", size[9], len(fast))
	}
	if size[17] >= size[9] {
		t.Errorf("level 17 gave %d bytes, level 9 %d: the high-compression compressor was not used", size[17], size[9])
	}
	t.Logf("lz4 batch of %d records: level 1 %d bytes, 9 %d, 17 %d", len(recs), size[1], size[9], size[17])
}

// BenchmarkRecompress is the cost of compression.type=zstd for a producer
// sending gzip: one 1 MiB batch of 1 KiB records rebuilt as zstd, in MB/s
// of uncompressed records.
//
//	go test -run '^$' -bench Recompress ./internal/record/
func BenchmarkRecompress(b *testing.B) {
	recs := make([]Record, 1024)
	for i := range recs {
		v := []byte(fmt.Sprintf("%01024d", i*7919))
		recs[i] = Record{OffsetDelta: int32(i), Key: []byte(fmt.Sprint("k", i)), Value: v}
	}
	for _, from := range []Codec{CodecNone, CodecGzip} {
		batch := mustBatch(b, defaultSpec(from), recs)
		b.Run(from.String()+"-to-zstd", func(b *testing.B) {
			b.SetBytes(1 << 20)
			for range b.N {
				if _, _, err := Recompress(batch, CodecZstd, DefaultLevel, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
