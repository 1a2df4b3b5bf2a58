package vfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestDefaultBasics(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "seg")
	if err := Default.MkdirAll(sub); err != nil {
		t.Fatal(err)
	}
	tmp, final := filepath.Join(sub, "meta.tmp"), filepath.Join(sub, "meta")
	f, err := Default.Create(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("v1")); err != nil || f.Sync() != nil || f.Close() != nil {
		t.Fatalf("write %s: %v", tmp, err)
	}
	if err := Default.Rename(tmp, final); err != nil {
		t.Fatal(err)
	}
	if err := Default.SyncDir(sub); err != nil {
		t.Fatal(err)
	}
	if names, err := Default.List(sub); err != nil || !slices.Equal(names, []string{"meta"}) {
		t.Fatalf("List = %v, %v; want [meta]", names, err)
	}
	fi, err := Default.Stat(final)
	if err != nil || fi.Name() != "meta" || fi.Size() != 2 || fi.IsDir() {
		t.Fatalf("Stat = %v, %v", fi, err)
	}
	if b, err := os.ReadFile(final); err != nil || string(b) != "v1" {
		t.Fatalf("read %q, %v; want v1", b, err)
	}
	if _, err := Default.Open(tmp); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open(renamed away) = %v; want ErrNotExist", err)
	}
	if err := Default.RemoveAll(sub); err != nil {
		t.Fatal(err)
	}
	if _, err := Default.Stat(sub); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Stat(removed) = %v; want ErrNotExist", err)
	}
}

// Sync racing with Close (a partition deleted while a producer waits for
// fsync) is an error, never a data race on the descriptor (go test -race).
func TestSyncConcurrentWithClose(t *testing.T) {
	for i := 0; i < 50; i++ {
		f, err := Default.Create(filepath.Join(t.TempDir(), "f"))
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x"))
		done := make(chan error, 1)
		go func() { done <- f.Sync() }()
		f.Close()
		if err := <-done; err != nil && !errors.Is(err, os.ErrClosed) {
			t.Fatalf("sync during close: %v", err)
		}
	}
}
