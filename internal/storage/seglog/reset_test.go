package seglog

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// resetFixture writes fsynced batches over several segments of an
// in-memory log and returns the values by offset.
func resetFixture(t *testing.T, fsys vfs.FS, n int) (*Log, map[int64]string) {
	t.Helper()
	l := openLog(t, fsys, "/d", crashCfg, State{})
	values := map[int64]string{}
	for i := 0; i < n; i++ {
		res, err := l.Append(batch(t, fmt.Sprintf("v%d", i), 1+i%3, int64(100+i)), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for o := res.FirstOffset; o <= res.LastOffset; o++ {
			values[o] = fmt.Sprintf("v%d-%d", i, o-res.FirstOffset)
		}
	}
	if err := l.WaitDurable(context.Background(), l.EndOffset()-1); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() < 3 {
		t.Fatalf("%d segments: the fixture must span several", l.NumSegments())
	}
	return l, values
}

// checkResetOutcome reopens img and checks it holds the old log whole or
// the new empty one at offset, and that it takes an append at its end.
func checkResetOutcome(t *testing.T, img *memfs.FS, values map[int64]string, oldEnd, offset int64, label string) (reset bool) {
	t.Helper()
	l, err := Open(img, "/d", crashCfg, State{})
	if err != nil {
		t.Fatalf("%s: reopen: %v", label, err)
	}
	defer l.Close()
	switch {
	case l.StartOffset() == offset && l.EndOffset() == offset:
		reset = true
		if l.NumSegments() != 1 {
			t.Fatalf("%s: reset log has %d segments", label, l.NumSegments())
		}
	case l.StartOffset() == 0 && l.EndOffset() == oldEnd:
		got := readAll(t, l)
		if len(got) != len(values) {
			t.Fatalf("%s: old log kept %d records of %d", label, len(got), len(values))
		}
		for o, v := range values {
			if got[o] != v {
				t.Fatalf("%s: offset %d = %q, want %q", label, o, got[o], v)
			}
		}
	default:
		t.Fatalf("%s: log [%d, %d): neither the old [0, %d) nor the reset [%d, %d)", label, l.StartOffset(), l.EndOffset(), oldEnd, offset, offset)
	}
	end := l.EndOffset()
	if res, err := l.Append(batchFor(t), AppendOptions{}); err != nil || res.FirstOffset != end {
		t.Fatalf("%s: append after reopen: %+v %v, want offset %d", label, res, err, end)
	}
	return reset
}

// A power cut at every filesystem operation of ResetAt (each operation
// fails in turn and the image is what a power loss would leave at that
// moment, with all or none of the unsynced bytes) leaves either the old
// log whole or the new empty log at the offset, above or below the old
// end; and once ResetAt has returned, the reset survives a cut.
func TestResetAtCrashAtEveryStep(t *testing.T) {
	for _, offset := range []int64{5, 1000} {
		for _, keep := range []string{"none", "all"} {
			opts := memfs.CrashOptions{}
			if keep == "all" {
				opts.KeepUnsyncedPrefix = memfs.KeepAll
			}
			sawOld, sawNew := false, false
			for k := 1; ; k++ {
				mem := memfs.New()
				var armed atomic.Bool
				var ops atomic.Int64
				var img *memfs.FS
				fsys := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
					if !armed.Load() || op == errorfs.OpRead || op == errorfs.OpStat {
						return nil
					}
					if ops.Add(1) == int64(k) {
						img = mem.Crash(opts)
						return errorfs.ErrInjected
					}
					return nil
				}))
				l, values := resetFixture(t, fsys, 60)
				oldEnd := l.EndOffset()
				armed.Store(true)
				err := l.ResetAt(offset)
				armed.Store(false)
				label := fmt.Sprintf("offset %d keep %s op %d", offset, keep, k)
				if img == nil {
					// Fewer than k operations: ResetAt ran whole.
					if err != nil {
						t.Fatalf("%s: %v", label, err)
					}
					if l.StartOffset() != offset || l.EndOffset() != offset {
						t.Fatalf("%s: after ResetAt [%d, %d)", label, l.StartOffset(), l.EndOffset())
					}
					l.Close()
					if !checkResetOutcome(t, mem.Crash(opts), values, oldEnd, offset, label+" (returned)") {
						t.Fatalf("%s: a returned reset was lost to a power cut", label)
					}
					if !sawOld || !sawNew {
						t.Fatalf("offset %d keep %s: cuts gave old %v, new %v: the test missed a side", offset, keep, sawOld, sawNew)
					}
					break
				}
				if err == nil {
					t.Fatalf("%s: ResetAt succeeded with an operation failing", label)
				}
				_, statErr := img.Stat("/d/" + ResetIntentFile)
				committed := statErr == nil
				if checkResetOutcome(t, img, values, oldEnd, offset, label) {
					sawNew = true
				} else {
					sawOld = true
					if committed {
						t.Fatalf("%s: the reset intent was durable but the old log came back", label)
					}
				}
				// The process lives on after the failure: a reopen of
				// its filesystem finishes what the intent decided.
				l.Close()
				checkResetOutcome(t, mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: memfs.KeepAll}), values, oldEnd, offset, label+" (live reopen)")
				if k > 200 {
					t.Fatal("ResetAt takes more than 200 operations?")
				}
			}
		}
	}
}

func TestResetAtRefusesNegative(t *testing.T) {
	l := openLog(t, memfs.New(), "/d", crashCfg, State{})
	defer l.Close()
	if err := l.ResetAt(-1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ResetAt(-1): %v", err)
	}
}
