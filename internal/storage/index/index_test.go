package index

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func TestOffsetIndexAppendLookupReload(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	x, err := OpenOffsetIndex(mem, "/d/0.index", 100, 80, true)
	if err != nil {
		t.Fatal(err)
	}
	for i := int64(1); i <= 10; i++ {
		if err := x.Append(100+i*10, i*1000); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	if err := x.Append(300, 20000); !errors.Is(err, ErrFull) {
		t.Fatalf("append to a full index: %v", err)
	}
	if err := x.Append(105, 500); err == nil {
		t.Fatal("out-of-order append accepted")
	}
	for _, c := range []struct{ off, wantOff, wantPos int64 }{
		{50, 100, 0}, {100, 100, 0}, {109, 100, 0}, {110, 110, 1000}, {155, 150, 5000}, {1 << 40, 200, 10000},
	} {
		e := x.Lookup(c.off)
		if e.Offset != c.wantOff || e.Position != c.wantPos {
			t.Errorf("lookup %d: %+v, want %d@%d", c.off, e, c.wantOff, c.wantPos)
		}
	}
	// Appends stay in memory until a sync: no file (and no descriptor) yet.
	if _, err := mem.Stat("/d/0.index"); err == nil {
		t.Fatal("an active index made its file before its first sync")
	}
	if err := x.Sync(); err != nil {
		t.Fatal(err)
	}
	b, _ := mem.ReadFile("/d/0.index")
	if len(b) != 80 {
		t.Fatalf("synced size %d, want 80 (10 entries)", len(b))
	}
	if err := x.TruncateAfterPosition(5000); err != nil {
		t.Fatal(err)
	}
	if x.Len() != 4 {
		t.Fatalf("%d entries after truncating at position 5000, want 4", x.Len())
	}
	if err := x.Seal(); err != nil {
		t.Fatal(err)
	}
	x.Close()
	b, _ = mem.ReadFile("/d/0.index")
	if len(b) != 32 {
		t.Fatalf("sealed size %d, want 32", len(b))
	}
	y, err := OpenOffsetIndex(mem, "/d/0.index", 100, 80, false)
	if err != nil {
		t.Fatal(err)
	}
	if y.Len() != 4 || y.Lookup(135) != (OffsetEntry{130, 3000}) {
		t.Fatalf("reloaded: %v", y.Entries())
	}
}

func TestIndexLoadKeepsSortedPrefix(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	var raw []byte
	for _, e := range [][2]uint32{{1, 10}, {2, 20}, {3, 30}, {0, 0}, {0, 0}, {9, 90}} {
		raw = binary.BigEndian.AppendUint32(raw, e[0])
		raw = binary.BigEndian.AppendUint32(raw, e[1])
	}
	mem.WriteFile("/d/0.index", append(raw, 1, 2, 3)) // and a torn entry
	x, err := OpenOffsetIndex(mem, "/d/0.index", 0, 1<<10, true)
	if err != nil {
		t.Fatal(err)
	}
	if x.Len() != 3 {
		t.Fatalf("loaded %d entries from a zero-filled tail, want 3", x.Len())
	}
	// The stale entry {9, 90} past the zeros is wiped, not resurrected.
	if err := x.Append(4, 40); err != nil {
		t.Fatal(err)
	}
	x.Seal()
	x.Close()
	b, _ := mem.ReadFile("/d/0.index")
	if len(b) != 32 {
		t.Fatalf("file %d bytes after seal, want 32", len(b))
	}
}

func TestTimeIndex(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	x, err := OpenTimeIndex(mem, "/d/0.timeindex", 1000, 1200, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := x.Last(); ok {
		t.Fatal("empty index has a last entry")
	}
	for _, e := range []TimeEntry{{100, 1001}, {100, 1002}, {90, 1003}, {200, 1005}, {300, 1009}} {
		if err := x.Append(e.Timestamp, e.Offset); err != nil {
			t.Fatal(err)
		}
	}
	// Entries that do not raise the timestamp are skipped.
	if x.Len() != 3 {
		t.Fatalf("%d entries: %v", x.Len(), x.Entries())
	}
	if _, ok := x.Lookup(99); ok {
		t.Fatal("lookup below every timestamp found an entry")
	}
	if e, ok := x.Lookup(250); !ok || e != (TimeEntry{200, 1005}) {
		t.Fatalf("lookup 250: %+v %v", e, ok)
	}
	if e, _ := x.Last(); e != (TimeEntry{300, 1009}) {
		t.Fatalf("last %+v", e)
	}
	if err := x.TruncateAfterOffset(1005); err != nil {
		t.Fatal(err)
	}
	if e, _ := x.Last(); e != (TimeEntry{100, 1001}) {
		t.Fatalf("last after truncate %+v", e)
	}
}

// FuzzLoadIndex: any bytes on disk load without panicking, and what loads
// is sorted.
func FuzzLoadIndex(f *testing.F) {
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 20})
	f.Add(make([]byte, 24))
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		mem := memfs.New()
		mem.MkdirAll("/d")
		mem.WriteFile("/d/i", data)
		mem.WriteFile("/d/t", data)
		x, err := OpenOffsetIndex(mem, "/d/i", 0, 4096, true)
		if err != nil {
			t.Fatal(err)
		}
		es := x.Entries()
		for i := 1; i < len(es); i++ {
			if es[i].Offset <= es[i-1].Offset || es[i].Position <= es[i-1].Position {
				t.Fatalf("unsorted offset entries loaded: %v", es)
			}
		}
		_ = x.Lookup(int64(len(data)))
		y, err := OpenTimeIndex(mem, "/d/t", 0, 4096, false)
		if err != nil {
			t.Fatal(err)
		}
		ts := y.Entries()
		for i := 1; i < len(ts); i++ {
			if ts[i].Timestamp <= ts[i-1].Timestamp || ts[i].Offset < ts[i-1].Offset {
				t.Fatalf("unsorted time entries loaded: %v", ts)
			}
		}
		_, _ = y.Lookup(int64(len(data)))
	})
}
