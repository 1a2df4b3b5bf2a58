package errorfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestErrorFSOpNames checks which Op each method reports, and with which
// name, and that a failed operation is not performed.
func TestErrorFSOpNames(t *testing.T) {
	m := newDurableDir(t, "/d")
	mustOK(t, m.WriteFile("/d/f", []byte("abc")))
	var mu sync.Mutex
	var fail bool
	type call struct {
		op   Op
		name string
	}
	var calls []call
	efs := Wrap(m, InjectorFunc(func(op Op, name string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{op, name})
		if fail {
			return ErrInjected
		}
		return nil
	}))
	f, err := efs.OpenReadWrite("/d/f")
	mustOK(t, err)
	defer f.Close()

	tests := []struct {
		do   func() error
		op   Op
		name string
	}{
		{func() error { _, err := efs.Create("/d/g"); return err }, OpCreate, "/d/g"},
		{func() error { _, err := efs.Open("/d/f"); return err }, OpOpen, "/d/f"},
		{func() error { _, err := efs.OpenReadWrite("/d/h"); return err }, OpOpen, "/d/h"},
		{func() error { return efs.MkdirAll("/d/sub") }, OpMkdir, "/d/sub"},
		{func() error { _, err := efs.List("/d"); return err }, OpList, "/d"},
		{func() error { _, err := efs.Stat("/d/f"); return err }, OpStat, "/d/f"},
		{func() error { return efs.SyncDir("/d") }, OpSyncDir, "/d"},
		{func() error { _, err := f.ReadAt(make([]byte, 1), 0); return err }, OpRead, "/d/f"},
		{func() error { _, err := f.WriteAt([]byte("x"), 0); return err }, OpWrite, "/d/f"},
		{func() error { _, err := f.Write([]byte("x")); return err }, OpWrite, "/d/f"},
		{func() error { return f.Sync() }, OpSync, "/d/f"},
		{func() error { return f.Truncate(0) }, OpTruncate, "/d/f"},
		{func() error { _, err := f.Size(); return err }, OpStat, "/d/f"},
		// Destructive ones last, for the pass that lets them through.
		{func() error { return efs.Rename("/d/f", "/d/z") }, OpRename, "/d/f"},
		{func() error { return efs.Remove("/d/z") }, OpRemove, "/d/z"},
		{func() error { return efs.RemoveAll("/d") }, OpRemove, "/d"},
	}
	fail = true
	for _, tt := range tests {
		calls = nil
		err := tt.do()
		if len(calls) != 1 || calls[0] != (call{tt.op, tt.name}) {
			t.Errorf("%v %s: injector saw %v", tt.op, tt.name, calls)
		}
		if !errors.Is(err, ErrInjected) {
			t.Errorf("%v %s: err = %v; want ErrInjected", tt.op, tt.name, err)
		}
		var pe *fs.PathError
		var le *os.LinkError
		if !errors.As(err, &pe) && !errors.As(err, &le) {
			t.Errorf("%v %s: err %T is neither *fs.PathError nor *os.LinkError", tt.op, tt.name, err)
		}
	}
	// Nothing happened: the file, its content and the tree are unchanged.
	wantFile(t, m, "/d/f", "abc")
	if names, err := m.List("/d"); err != nil || len(names) != 1 {
		t.Fatalf("List = %v, %v; want [f]", names, err)
	}

	// With the injector quiet, every operation goes through.
	fail = false
	for _, tt := range tests {
		if err := tt.do(); err != nil {
			t.Errorf("%v %s: %v", tt.op, tt.name, err)
		}
	}
}

func TestErrorOnce(t *testing.T) {
	m := newDurableDir(t, "/d")
	efs := Wrap(m, ErrorOnce(OpCreate, "segment", nil))
	_, err := efs.Create("/d/other")
	mustOK(t, err)
	if _, err := efs.Create("/d/segment-1"); !errors.Is(err, ErrInjected) {
		t.Fatalf("first matching Create = %v; want ErrInjected", err)
	}
	wantMissing(t, m, "/d/segment-1")
	_, err = efs.Create("/d/segment-1")
	mustOK(t, err)
	// Other operations on matching names are not affected.
	_, err = efs.Stat("/d/segment-1")
	mustOK(t, err)

	custom := errors.New("boom")
	efs = Wrap(m, ErrorOnce(OpSyncDir, "", custom))
	if err := efs.SyncDir("/d"); !errors.Is(err, custom) {
		t.Fatalf("SyncDir = %v; want %v", err, custom)
	}
	mustOK(t, efs.SyncDir("/d"))
}

func TestErrorAfter(t *testing.T) {
	m := newDurableDir(t, "/d")
	efs := Wrap(m, ErrorAfter(2, OpSync, syscall.EIO))
	f, err := efs.Create("/d/f")
	mustOK(t, err)
	mustOK(t, efs.SyncDir("/d"))
	for i := range 4 {
		f.Write([]byte{'0' + byte(i)})
		err := f.Sync()
		if (i < 2) != (err == nil) {
			t.Fatalf("Sync %d = %v", i, err)
		}
		if err != nil && !errors.Is(err, syscall.EIO) {
			t.Fatalf("Sync %d = %v; want EIO", i, err)
		}
	}
	// A failed Sync made nothing durable: a crash keeps the first two bytes.
	wantFile(t, m.Crash(memfs.CrashOptions{}), "/d/f", "01")
}

func TestPartialWrite(t *testing.T) {
	m := newDurableDir(t, "/d")
	efs := Wrap(m, ErrorOnce(OpWrite, "log", &PartialWrite{N: 3}))
	f, err := efs.Create("/d/log")
	mustOK(t, err)
	n, err := f.Write([]byte("hello"))
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Write = %d, %v; want 3, ENOSPC", n, err)
	}
	var pw *PartialWrite
	if !errors.As(err, &pw) || pw.N != 3 {
		t.Fatalf("err %v is not the injected *PartialWrite", err)
	}
	// The offset moved past the bytes written, as after a short write.
	_, err = f.Write([]byte("!"))
	mustOK(t, err)
	wantFile(t, m, "/d/log", "hel!")

	efs = Wrap(m, ErrorOnce(OpWrite, "", &PartialWrite{N: 100, Err: syscall.EIO}))
	f, err = efs.OpenReadWrite("/d/log")
	mustOK(t, err)
	if n, err := f.WriteAt([]byte("XY"), 1); n != 2 || !errors.Is(err, syscall.EIO) {
		t.Fatalf("WriteAt = %d, %v; want 2, EIO", n, err)
	}
	wantFile(t, m, "/d/log", "hXY!")
}

// TestDiskFull fills the disk after one write with ErrorAfter and a
// zero-length PartialWrite, on the OS filesystem.
func TestDiskFull(t *testing.T) {
	dir := t.TempDir()
	efs := Wrap(vfs.Default, ErrorAfter(1, OpWrite, &PartialWrite{}))
	f, err := efs.Create(filepath.Join(dir, "f"))
	mustOK(t, err)
	defer f.Close()
	_, err = f.Write([]byte("ok"))
	mustOK(t, err)
	for range 2 {
		if n, err := f.Write([]byte("more")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("Write = %d, %v; want 0, ENOSPC", n, err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "f"))
	if err != nil || string(b) != "ok" {
		t.Fatalf("content %q, %v; want ok", b, err)
	}
	// Other operations still work.
	mustOK(t, f.Sync())
	mustOK(t, efs.SyncDir(dir))
}

func TestOpString(t *testing.T) {
	if OpSyncDir.String() != "syncdir" || Op(99).String() != "Op(99)" {
		t.Fatalf("Op strings: %s %s", OpSyncDir, Op(99))
	}
}

func newDurableDir(t *testing.T, dir string) *memfs.FS {
	t.Helper()
	m := memfs.New()
	mustOK(t, m.MkdirAll(dir))
	mustOK(t, m.SyncDir("/"))
	return m
}

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantFile and wantMissing check m's current content.
func wantFile(t *testing.T, m *memfs.FS, name, want string) {
	t.Helper()
	if got, err := m.ReadFile(name); err != nil || string(got) != want {
		t.Fatalf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
	}
}

func wantMissing(t *testing.T, m *memfs.FS, name string) {
	t.Helper()
	if _, err := m.Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(%s) = %v; want ErrNotExist", name, err)
	}
}
