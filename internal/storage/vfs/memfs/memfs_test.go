package memfs

import (
	"github.com/stromhq/strom/internal/storage/vfs"

	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sync"
	"testing"
)

// newDurableDir returns a FS whose directory dir exists durably.
func newDurableDir(t *testing.T, dir string) *FS {
	t.Helper()
	m := New()
	if err := m.MkdirAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := m.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return m
}

// wantFile fails unless name holds exactly want in m.
func wantFile(t *testing.T, m *FS, name, want string) {
	t.Helper()
	got, err := m.ReadFile(name)
	if err != nil {
		t.Fatalf("ReadFile(%s): %v; want %q", name, err, want)
	}
	if string(got) != want {
		t.Fatalf("ReadFile(%s) = %q; want %q", name, got, want)
	}
}

// wantMissing fails unless name does not exist in m.
func wantMissing(t *testing.T, m *FS, name string) {
	t.Helper()
	if _, err := m.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%s) = %v; want ErrNotExist", name, err)
	}
}

// newSyncedLog returns a FS with a durable file /d/log holding synced,
// open for writing.
func newSyncedLog(t *testing.T, synced string) (*FS, vfs.File) {
	t.Helper()
	m := newDurableDir(t, "/d")
	f, err := m.Create("/d/log")
	mustOK(t, err)
	mustOK(t, m.SyncDir("/d"))
	f.Write([]byte(synced))
	mustOK(t, f.Sync())
	return m, f
}

func keepN(n int) CrashOptions {
	return CrashOptions{KeepUnsyncedPrefix: func(string, int) int { return n }}
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestCrashKeepsSyncedDropsUnsynced(t *testing.T) {
	m, f := newSyncedLog(t, "abc")
	f.Write([]byte("def"))

	wantFile(t, m.Crash(CrashOptions{}), "/d/log", "abc")
	wantFile(t, m.Crash(CrashOptions{KeepUnsyncedPrefix: KeepAll}), "/d/log", "abcdef")
	wantFile(t, m.Crash(keepN(2)), "/d/log", "abcde")
	wantFile(t, m.Crash(keepN(-5)), "/d/log", "abc")
	wantFile(t, m.Crash(keepN(99)), "/d/log", "abcdef")

	var calls []string
	m.Crash(CrashOptions{KeepUnsyncedPrefix: func(name string, unsynced int) int {
		calls = append(calls, fmt.Sprintf("%s:%d", name, unsynced))
		return 0
	}})
	if want := []string{"/d/log:3"}; !slices.Equal(calls, want) {
		t.Fatalf("KeepUnsyncedPrefix calls = %v; want %v", calls, want)
	}

	// The crash does not disturb the running filesystem.
	wantFile(t, m, "/d/log", "abcdef")
}

func TestCrashAtWrite(t *testing.T) {
	m, f := newSyncedLog(t, "abc")

	// The cut lands on the second write, before its sync: the image has
	// what was synced plus the two writes' bytes, and nothing after.
	cuts := 0
	cut := m.CrashAtWrite(2, CrashOptions{KeepUnsyncedPrefix: KeepAll}, func() { cuts++ })
	f.Write([]byte("de"))
	if cuts != 0 {
		t.Fatal("the cut came at the first write")
	}
	f.WriteAt([]byte("fg"), 5)
	if cuts != 1 {
		t.Fatal("no cut at the second write")
	}
	mustOK(t, f.Sync())
	f.WriteAt([]byte("hi"), 7)
	image := cut()
	wantFile(t, image, "/d/log", "abcdefg")
	if again := cut(); again != image || cuts != 1 {
		t.Fatal("a second call of cut took a new image")
	}
	wantFile(t, m.CrashAtWrite(1, CrashOptions{}, nil)(), "/d/log", "abcdefg") // "hi" unsynced, dropped

	// Too few writes: cut disarms and takes the image at once.
	cut = m.CrashAtWrite(5, CrashOptions{KeepUnsyncedPrefix: KeepAll}, func() { cuts++ })
	f.WriteAt([]byte("j"), 9)
	wantFile(t, cut(), "/d/log", "abcdefghij")
	f.WriteAt([]byte("k"), 10) // disarmed: no image taken, nothing panics
	if cuts != 2 {
		t.Fatalf("atCut ran %d times; want 2", cuts)
	}
	wantFile(t, m, "/d/log", "abcdefghijk")

	// Arming again replaces an untaken cut.
	first := m.CrashAtWrite(1, CrashOptions{KeepUnsyncedPrefix: KeepAll}, nil)
	second := m.CrashAtWrite(2, CrashOptions{KeepUnsyncedPrefix: KeepAll}, nil)
	f.WriteAt([]byte("l"), 11)
	f.WriteAt([]byte("m"), 12)
	wantFile(t, second(), "/d/log", "abcdefghijklm")
	wantFile(t, first(), "/d/log", "abcdefghijklm") // taken when called
}

// TestCrashAtEveryByte is the shape of a recovery test: crash with every
// possible prefix of the last, unsynced write surviving.
func TestCrashAtEveryByte(t *testing.T) {
	m, f := newSyncedLog(t, "batch1;")
	last := "batch2;"
	f.Write([]byte(last))
	for k := 0; k <= len(last); k++ {
		c := m.Crash(keepN(k))
		wantFile(t, c, "/d/log", "batch1;"+last[:k])
	}
}

func TestCrashUnsyncedOverwriteAndTruncate(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/f", []byte("AAAAAA")))
	f, err := m.OpenReadWrite("/d/f")
	mustOK(t, err)

	// An unsynced truncation is undone.
	mustOK(t, f.Truncate(2))
	wantFile(t, m.Crash(CrashOptions{}), "/d/f", "AAAAAA")

	// New bytes after it land in offset order over the old content.
	f.WriteAt([]byte("BB"), 2)
	wantFile(t, m.Crash(keepN(0)), "/d/f", "AAAAAA")
	wantFile(t, m.Crash(keepN(1)), "/d/f", "AABAAA")
	wantFile(t, m.Crash(keepAllOpts()), "/d/f", "AABBAA")

	// Once synced, the truncation holds.
	mustOK(t, f.Sync())
	wantFile(t, m.Crash(CrashOptions{}), "/d/f", "AABB")

	// An overwrite in the middle is unsynced from its offset on.
	f.WriteAt([]byte("x"), 1)
	wantFile(t, m.Crash(CrashOptions{}), "/d/f", "AABB")
	wantFile(t, m.Crash(keepN(1)), "/d/f", "AxBB")
}

// keepAllOpts is shorthand for tests.
func keepAllOpts() CrashOptions { return CrashOptions{KeepUnsyncedPrefix: KeepAll} }

func TestCrashUndoesCreateWithoutSyncDir(t *testing.T) {
	m := newDurableDir(t, "/d")
	// Synced data does not help when the directory entry is not durable.
	writeFile(t, m, "/d/new", "synced")
	c := m.Crash(keepAllOpts())
	wantMissing(t, c, "/d/new")
	if names, err := c.List("/d"); err != nil || len(names) != 0 {
		t.Fatalf("List = %v, %v; want empty", names, err)
	}

	mustOK(t, m.SyncDir("/d"))
	wantFile(t, m.Crash(CrashOptions{}), "/d/new", "synced")
}

func TestCrashNewDirectoryNeedsParentSync(t *testing.T) {
	m := New()
	mustOK(t, m.MkdirAll("/data/topic-0"))
	writeFile(t, m, "/data/topic-0/00.log", "x")
	mustOK(t, m.SyncDir("/data/topic-0"))
	wantMissing(t, m.Crash(CrashOptions{}), "/data")

	mustOK(t, m.SyncDir("/data"))
	wantMissing(t, m.Crash(CrashOptions{}), "/data")

	mustOK(t, m.SyncDir("/"))
	wantFile(t, m.Crash(CrashOptions{}), "/data/topic-0/00.log", "x")
}

func TestCrashRename(t *testing.T) {
	// The atomic-replace pattern: write tmp, sync, rename over the old file,
	// sync the directory.
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/meta", []byte("v1")))
	writeFile(t, m, "/d/meta.tmp", "v2")
	mustOK(t, m.Rename("/d/meta.tmp", "/d/meta"))
	wantFile(t, m, "/d/meta", "v2")

	c := m.Crash(keepAllOpts())
	wantFile(t, c, "/d/meta", "v1")
	wantMissing(t, c, "/d/meta.tmp")

	mustOK(t, m.SyncDir("/d"))
	c = m.Crash(CrashOptions{})
	wantFile(t, c, "/d/meta", "v2")
	wantMissing(t, c, "/d/meta.tmp")
}

func TestCrashRenameOfDurableFileReverts(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/a", []byte("data")))
	mustOK(t, m.Rename("/d/a", "/d/b"))
	c := m.Crash(CrashOptions{})
	wantFile(t, c, "/d/a", "data")
	wantMissing(t, c, "/d/b")
}

func TestCrashRenameAcrossDirectoriesIsAtomic(t *testing.T) {
	for _, synced := range []string{"/src", "/dst"} {
		t.Run(synced, func(t *testing.T) {
			m := New()
			mustOK(t, m.MkdirAll("/src"))
			mustOK(t, m.MkdirAll("/dst"))
			mustOK(t, m.SyncDir("/"))
			mustOK(t, m.WriteFile("/src/f", []byte("data")))
			mustOK(t, m.Rename("/src/f", "/dst/g"))
			mustOK(t, m.SyncDir(synced))
			c := m.Crash(CrashOptions{})
			wantMissing(t, c, "/src/f")
			wantFile(t, c, "/dst/g", "data")
		})
	}
}

func TestCrashRemove(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/old", []byte("x")))
	mustOK(t, m.Remove("/d/old"))
	wantFile(t, m.Crash(CrashOptions{}), "/d/old", "x")
	mustOK(t, m.SyncDir("/d"))
	wantMissing(t, m.Crash(CrashOptions{}), "/d/old")

	// An unsynced RemoveAll of a durable tree is undone too.
	mustOK(t, m.WriteFile("/d/keep", []byte("k")))
	mustOK(t, m.RemoveAll("/d"))
	wantFile(t, m.Crash(CrashOptions{}), "/d/keep", "k")
}

func TestCrashIsIndependentAndDurable(t *testing.T) {
	m := newDurableDir(t, "/d")
	f, err := m.Create("/d/f")
	mustOK(t, err)
	mustOK(t, m.SyncDir("/d"))
	f.Write([]byte("one"))
	mustOK(t, f.Sync())

	c := m.Crash(CrashOptions{})
	// Writes through a file of the old filesystem do not reach the new one.
	f.Write([]byte("two"))
	mustOK(t, f.Sync())
	wantFile(t, c, "/d/f", "one")
	// Everything in a crashed filesystem is durable: crashing it again
	// changes nothing.
	wantFile(t, c.Crash(CrashOptions{}), "/d/f", "one")
	// And the new filesystem works on its own.
	g, err := c.OpenReadWrite("/d/f")
	mustOK(t, err)
	g.WriteAt([]byte("!"), 3)
	wantFile(t, c, "/d/f", "one!")
	wantFile(t, m, "/d/f", "onetwo")
}

func TestSnapshot(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/durable", []byte("a")))
	f, err := m.Create("/d/pending")
	mustOK(t, err)
	f.Write([]byte("unsynced"))
	mustOK(t, m.Rename("/d/durable", "/d/renamed"))

	s := m.Snapshot()
	wantFile(t, s, "/d/pending", "unsynced")
	wantFile(t, s, "/d/renamed", "a")
	wantMissing(t, s, "/d/durable")

	// The snapshot keeps the durability state: a power loss after a process
	// crash loses the same as one before it.
	c := s.Crash(CrashOptions{})
	wantMissing(t, c, "/d/pending")
	wantFile(t, c, "/d/durable", "a")
	wantMissing(t, c, "/d/renamed")

	// And it is independent of m.
	f.Write([]byte("more"))
	wantFile(t, s, "/d/pending", "unsynced")
	mustOK(t, s.SyncDir("/d"))
	wantFile(t, s.Crash(CrashOptions{}), "/d/renamed", "a")
	wantFile(t, m.Crash(CrashOptions{}), "/d/durable", "a")
}

func TestMutateAndWriteFile(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/f", []byte("hello world")))
	mustOK(t, m.Mutate("/d/f", func(b []byte) []byte {
		b[0] = 'J'
		return b[:5]
	}))
	wantFile(t, m, "/d/f", "Jello")
	// Mutations are the disk's content: they survive a crash.
	wantFile(t, m.Crash(CrashOptions{}), "/d/f", "Jello")

	if err := m.Mutate("/d/missing", func(b []byte) []byte { return b }); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Mutate(missing) = %v; want ErrNotExist", err)
	}
	if err := m.WriteFile("/nodir/f", nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("WriteFile(no parent) = %v; want ErrNotExist", err)
	}
	if _, err := m.ReadFile("/d"); err == nil {
		t.Fatal("ReadFile(dir) succeeded")
	}
}

func TestMemPaths(t *testing.T) {
	m := New()
	mustOK(t, m.MkdirAll("a/b"))
	mustOK(t, m.WriteFile("/a/b/../b/f", []byte("x")))
	wantFile(t, m, "a/b/f", "x")
	wantFile(t, m, "/a//b/./f", "x")
	fi, err := m.Stat("a/b/f")
	mustOK(t, err)
	if fi.Name() != "f" || fi.Size() != 1 || fi.IsDir() || fi.Mode() != 0o644 {
		t.Fatalf("Stat = %s %d %v %v", fi.Name(), fi.Size(), fi.IsDir(), fi.Mode())
	}
	if fi, err := m.Stat("/"); err != nil || !fi.IsDir() {
		t.Fatalf("Stat(/) = %v, %v", fi, err)
	}
	if _, err := m.Open(""); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(\"\") = %v; want ErrNotExist", err)
	}
	if err := m.Remove("/"); err == nil {
		t.Fatal("Remove(/) succeeded")
	}
	if err := m.Rename("/a", "/"); err == nil {
		t.Fatal("Rename(/a, /) succeeded")
	}
	f, err := m.Create("/a/b/f")
	mustOK(t, err)
	if f.Name() != "/a/b/f" {
		t.Fatalf("Name = %q", f.Name())
	}
}

// TestMemConcurrent is for the race detector: writers, syncs, directory
// operations, crashes and snapshots all at once.
func TestMemConcurrent(t *testing.T) {
	m := newDurableDir(t, "/d")
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			name := fmt.Sprintf("/d/f%d", w)
			f, err := m.Create(name)
			if err != nil {
				t.Error(err)
				return
			}
			defer f.Close()
			for i := range 200 {
				f.Write([]byte{byte(i)})
				if i%10 == 0 {
					f.Sync()
					m.SyncDir("/d")
				}
				buf := make([]byte, 1)
				f.ReadAt(buf, int64(i))
				if i%50 == 0 {
					m.Rename(name, name+".tmp")
					m.Rename(name+".tmp", name)
				}
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for range 50 {
				c := m.Crash(keepAllOpts())
				m.Snapshot()
				m.List("/d")
				c.List("/d")
			}
		})
	}
	wg.Wait()
	for w := range 4 {
		b, err := m.ReadFile(fmt.Sprintf("/d/f%d", w))
		mustOK(t, err)
		if len(b) != 200 || !bytes.Equal(b[:3], []byte{0, 1, 2}) {
			t.Fatalf("f%d: %d bytes", w, len(b))
		}
	}
}
