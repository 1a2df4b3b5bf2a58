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
		for _, level := range []int{DefaultLevel, 1, 9} {
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
