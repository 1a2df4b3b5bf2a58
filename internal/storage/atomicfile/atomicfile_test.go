package atomicfile

import (
	"bytes"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func TestRoundTripAndCorruption(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	if _, _, err := Read(mem, "/d/f", "TEST", 1<<20); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	if err := Write(mem, "/d/f", "TEST", 3, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	v, p, err := Read(mem, "/d/f", "TEST", 1<<20)
	if err != nil || v != 3 || string(p) != "hello" {
		t.Fatalf("read back v%d %q %v", v, p, err)
	}
	if _, _, err := Read(mem, "/d/f", "ELSE", 1<<20); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("other magic: %v", err)
	}
	if _, _, err := Read(mem, "/d/f", "TEST", 4); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("over the size bound: %v", err)
	}
	good := Encode("TEST", 3, []byte("hello"))
	for i := range good {
		for _, b := range [][]byte{good[:i], flip(good, i)} {
			if _, _, err := Decode(b, "TEST"); !errors.Is(err, ErrCorrupt) && !(i >= 4 && i < 6 && len(b) == len(good)) {
				t.Fatalf("damaged at byte %d (%d bytes) decoded: %v", i, len(b), err)
			}
		}
	}
	if names, _ := mem.List("/d"); strings.Join(names, ",") != "f" {
		t.Fatalf("files left: %v", names)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x40
	return c
}

// A write that fails (here: the disk is full at the write) leaves the old
// file as it was and no temporary file behind; a power cut after a
// successful Write keeps the new content.
func TestFailedWriteKeepsOldFile(t *testing.T) {
	mem := memfs.New()
	mem.MkdirAll("/d")
	mem.SyncDir("/")
	if err := Write(mem, "/d/f", "TEST", 1, []byte("old")); err != nil {
		t.Fatal(err)
	}
	full := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if op == errorfs.OpWrite {
			return &errorfs.PartialWrite{N: 3, Err: errorfs.ErrInjected}
		}
		return nil
	}))
	if err := Write(full, "/d/f", "TEST", 1, []byte("new content")); err == nil {
		t.Fatal("write on a full disk succeeded")
	}
	if _, p, err := Read(mem, "/d/f", "TEST", 1<<20); err != nil || string(p) != "old" {
		t.Fatalf("after the failed write: %q %v", p, err)
	}
	if _, err := mem.Stat("/d/f.tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("temporary file left: %v", err)
	}
	if err := Write(mem, "/d/f", "TEST", 1, []byte("new")); err != nil {
		t.Fatal(err)
	}
	if _, p, err := Read(mem.Crash(memfs.CrashOptions{}), "/d/f", "TEST", 1<<20); err != nil || string(p) != "new" {
		t.Fatalf("after a power cut: %q %v", p, err)
	}
}

// Read reads and decodes the file at path, as the callers of ReadBytes
// and Decode do.
func Read(fs vfs.FS, path, magic string, maxSize int64) (uint16, []byte, error) {
	b, err := ReadBytes(fs, path, maxSize)
	if err != nil {
		return 0, nil, err
	}
	return Decode(b, magic)
}
