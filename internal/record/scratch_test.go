package record

import (
	"errors"
	"runtime"
	"testing"
)

// TestValidateBatchSteadyStateAllocs is issue 22's goal: validating a
// stream of compressed batches allocates less than 0.1 times per batch
// (before the scratch pool it was once per batch: the decompressed records).
// Mallocs are counted over many batches rather than with AllocsPerRun,
// which truncates the average to an integer.
func TestValidateBatchSteadyStateAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	const runs = 500
	for _, n := range []int{16, 256} {
		recs := benchRecords(n)
		batches := map[string][]byte{"snappy-raw": rawSnappyBatch(t, recs)}
		for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
			batches[c.String()] = mustBatch(t, defaultSpec(c), recs)
		}
		for name, batch := range batches {
			if _, err := ValidateBatch(batch, 1<<20); err != nil { // warm the pools
				t.Fatalf("%s: %v", name, err)
			}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range runs {
				if _, err := ValidateBatch(batch, 1<<20); err != nil {
					t.Fatalf("%s: %v", name, err)
				}
			}
			runtime.ReadMemStats(&after)
			allocs := float64(after.Mallocs-before.Mallocs) / runs
			bytes := float64(after.TotalAlloc-before.TotalAlloc) / runs
			t.Logf("%s, %d records of 1 KiB: %.3f allocations, %.0f bytes per batch", name, n, allocs, bytes)
			if allocs >= 0.1 {
				t.Errorf("%s, %d records: %.3f allocations per batch, want < 0.1", name, n, allocs)
			}
		}
	}
}

// TestValidateBatchScratchReuse validates batches of different codecs and
// sizes one after another, so that pooled buffers are reused by batches
// other than the one that filled them, and a corrupt batch after a valid one
// of the same size: stale bytes of a reused buffer never make a bad batch
// pass, and the cap holds with a pooled buffer larger than it.
func TestValidateBatchScratchReuse(t *testing.T) {
	big := benchRecords(256)
	small := benchRecords(3)
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		good := mustBatch(t, defaultSpec(c), big)
		for range 3 {
			if _, err := ValidateBatch(good, 1<<20); err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			if _, err := ValidateBatch(mustBatch(t, defaultSpec(c), small), 1<<20); err != nil {
				t.Fatalf("%s small: %v", c, err)
			}
		}
		// The same records, one record count too many: the walk must run
		// past the end of the decompressed bytes, not into stale ones.
		bad := append([]byte(nil), good...)
		setNumRecords(bad, 257, 256)
		if _, err := ValidateBatch(bad, 1<<20); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("%s: one record too many: %v, want ErrInvalidRecord", c, err)
		}
		// A pooled buffer larger than the cap does not lift the cap.
		if _, err := ValidateBatch(good, 64<<10); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: 256 KiB under a 64 KiB cap: %v, want ErrTooLarge", c, err)
		}
	}
}

// setNumRecords rewrites NumRecords and LastOffsetDelta and the CRC.
func setNumRecords(b []byte, n, lastDelta int32) {
	b[offNumRecords], b[offNumRecords+1], b[offNumRecords+2], b[offNumRecords+3] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	b[offLastOffsetDelta], b[offLastOffsetDelta+1], b[offLastOffsetDelta+2], b[offLastOffsetDelta+3] = byte(lastDelta>>24), byte(lastDelta>>16), byte(lastDelta>>8), byte(lastDelta)
	fixCRC(b)
}
