package record

import (
	"errors"
	"runtime"
	"runtime/debug"
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

// allocsPer counts the allocations and bytes per call of f over runs
// calls, after one to warm the pools, with the GC off and on one P
// meanwhile: a GC empties sync.Pools (this package's and the codecs', such
// as zstd's encoders with their 8 MiB windows), and an item Put on one P
// can be missed by a Get on another; their refill is noise, not the
// per-batch cost measured.
func allocsPer(t *testing.T, runs int, f func() []byte) (allocs, bytes float64, kept int) {
	t.Helper()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	f()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		kept = cap(f())
	}
	runtime.ReadMemStats(&after)
	return float64(after.Mallocs-before.Mallocs) / float64(runs), float64(after.TotalAlloc-before.TotalAlloc) / float64(runs), kept
}

// TestRecompressAllocatesOnlyItsResult is issue 22's third item for
// compression.type: rebuilding a batch with another codec allocates its
// result and nothing else in proportion to the batch (before: the
// decompressed records, the records slice and an output sized like the
// input, grown when the new codec compressed less).
func TestRecompressAllocatesOnlyItsResult(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, n := range []int{16, 256} {
		recs := benchRecords(n)
		for _, tc := range recompressCases {
			batch := mustBatch(t, defaultSpec(tc.from), recs)
			allocs, bytes, kept := allocsPer(t, 100, func() []byte {
				out, _, err := Recompress(batch, tc.to, DefaultLevel, 1<<20)
				if err != nil {
					t.Fatalf("%s to %s: %v", tc.from, tc.to, err)
				}
				return out
			})
			t.Logf("%s to %s, %d records of 1 KiB: %.2f allocations, %.0f bytes per batch, result %d bytes", tc.from, tc.to, n, allocs, bytes, kept)
			// The result's allocation is rounded up to whole 8 KiB pages.
			if allocs > 1.5 || bytes > float64(kept)+8192 {
				t.Errorf("%s to %s, %d records: %.2f allocations and %.0f bytes per batch for a result of %d bytes; want one allocation, the result's", tc.from, tc.to, n, allocs, bytes, kept)
			}
		}
	}
}

// TestDownConvertAllocatesOnlyItsResult is the same for the
// down-conversion of compressed batches for old fetches (a zstd batch
// becomes gzip): a call allocates its result, not a decompressed buffer
// per batch.
func TestDownConvertAllocatesOnlyItsResult(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race")
	}
	for _, c := range []Codec{CodecGzip, CodecSnappy, CodecLZ4, CodecZstd} {
		var log []byte
		for i := range 64 {
			spec := defaultSpec(c)
			spec.BaseOffset = int64(i * 16)
			log = append(log, mustBatch(t, spec, benchRecords(16))...)
		}
		allocs, bytes, kept := allocsPer(t, 20, func() []byte {
			out, err := DownConvert(log, MagicV1, 1<<20)
			if err != nil {
				t.Fatalf("%s: %v", c, err)
			}
			return out
		})
		t.Logf("%s: %d bytes of batches: %.1f allocations, %.0f bytes per call, result's capacity %d", c, len(log), allocs, bytes, kept)
		// The result may grow by appends (what it outgrew is garbage), and
		// a few small objects are allowed; a decompressed buffer per
		// batch (64 x 16 KiB) is not.
		if bytes > 2*float64(kept)+16<<10 {
			t.Errorf("%s: %.0f bytes allocated per call for a result of capacity %d", c, bytes, kept)
		}
	}
}
