package seglog

import (
	"errors"
	"testing"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// at is batch with its base offset and epoch set, as a leader stored it.
func at(t *testing.T, tag string, n int, base int64, epoch int32) []byte {
	t.Helper()
	b := batch(t, tag, n, 100)
	record.SetBaseOffset(b, base)
	record.SetPartitionLeaderEpoch(b, epoch)
	return b
}

// A follower's append keeps the batches' offsets and epochs, gaps
// included; SkipTo moves the end past a gap so the next append gets it;
// both survive a power cut once flushed; an append below the end is
// refused.
func TestAppendAsFollowerKeepsOffsets(t *testing.T) {
	fs := memfs.New()
	l := openLog(t, fs, "/d", crashCfg, State{})
	if err := l.ResetAt(10); err != nil {
		t.Fatal(err)
	}
	var region []byte
	for _, b := range [][]byte{at(t, "a", 2, 10, 3), at(t, "b", 1, 17, 3), at(t, "c", 3, 40, 5)} {
		region = append(region, b...)
	}
	if err := l.AppendAsFollower(region); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 43 {
		t.Fatalf("end %d after the region, want 43", l.EndOffset())
	}
	if err := l.AppendAsFollower(at(t, "d", 1, 42, 5)); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("append below the end: %v", err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := l.SkipTo(60); err != nil {
		t.Fatal(err)
	}
	if err := l.SkipTo(50); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("skip backwards: %v", err)
	}
	res, err := l.Append(batch(t, "next", 1, 200), AppendOptions{LeaderEpoch: 6})
	if err != nil || res.FirstOffset != 60 {
		t.Fatalf("append after the skip at %d, %v; want 60", res.FirstOffset, err)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	check := func(l *Log, label string) {
		t.Helper()
		want := map[int64]int32{10: 3, 17: 3, 40: 5, 60: 6}
		got := map[int64]int32{}
		if err := l.WalkHeaders(10, func(h record.BatchHeader) bool {
			got[h.BaseOffset] = h.PartitionLeaderEpoch
			return true
		}); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: batches %v, want %v", label, got, want)
		}
		for off, ep := range want {
			if got[off] != ep {
				t.Fatalf("%s: batches %v, want %v", label, got, want)
			}
		}
		if l.StartOffset() != 10 || l.EndOffset() != 61 {
			t.Fatalf("%s: log [%d, %d), want [10, 61)", label, l.StartOffset(), l.EndOffset())
		}
	}
	check(l, "live")
	crashed := fs.Crash(memfs.CrashOptions{})
	l2, err := Open(crashed, "/d", crashCfg, State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	check(l2, "after a power cut")
}
