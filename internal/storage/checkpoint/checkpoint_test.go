package checkpoint

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/stromhq/strom/internal/storage/atomicfile"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func TestWriteReadAtomic(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	if _, err := Read(mem, "/d/ck"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	a := map[Partition]int64{{"t", 0}: 10, {"t", 1}: 20, {"a-b.c", 7}: 1 << 40}
	if err := Write(mem, "/d/ck", a); err != nil {
		t.Fatal(err)
	}
	got, err := Read(mem, "/d/ck")
	if err != nil || len(got) != 3 || got[Partition{"a-b.c", 7}] != 1<<40 {
		t.Fatalf("read back %v %v", got, err)
	}
	// A second write, then a power loss: the new content survives whole.
	b := map[Partition]int64{{"t", 0}: 11}
	if err := Write(mem, "/d/ck", b); err != nil {
		t.Fatal(err)
	}
	crashed := mem.Crash(memfs.CrashOptions{})
	got, err = Read(crashed, "/d/ck")
	if err != nil || len(got) != 1 || got[Partition{"t", 0}] != 11 {
		t.Fatalf("after crash %v %v", got, err)
	}
}

func TestDecodeRejectsDamage(t *testing.T) {
	good := Encode(map[Partition]int64{{"topic", 3}: 42})
	for i := range good {
		bad := append([]byte(nil), good...)
		bad[i] ^= 0x10
		if _, err := Decode(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	for n := 0; n < len(good); n++ {
		if _, err := Decode(good[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d accepted", n)
		}
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(Encode(map[Partition]int64{{"t", 0}: 1}))
	f.Add(Encode(nil))
	f.Add([]byte("STCK\x00\x01\x00\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes survives a round trip.
		m2, err := Decode(Encode(m))
		if err != nil || len(m2) != len(m) {
			t.Fatalf("round trip: %v, %d vs %d entries", err, len(m2), len(m))
		}
		for k, v := range m {
			if m2[k] != v {
				t.Fatalf("round trip changed %v", k)
			}
		}
	})
}

// Encode returns the file content for entries, as Write writes it.
func Encode(entries map[Partition]int64) []byte {
	return atomicfile.Encode(magic, version, encodePayload(entries))
}
