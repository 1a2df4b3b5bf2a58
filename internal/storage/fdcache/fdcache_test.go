package fdcache

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// countingFS counts the files open at once through it.
type countingFS struct {
	vfs.FS
	open, peak atomic.Int64
}

type countedFile struct {
	vfs.File
	fs     *countingFS
	closed atomic.Bool
}

func (c *countingFS) Open(name string) (vfs.File, error) {
	f, err := c.FS.Open(name)
	if err != nil {
		return nil, err
	}
	n := c.open.Add(1)
	for p := c.peak.Load(); n > p && !c.peak.CompareAndSwap(p, n); p = c.peak.Load() {
	}
	return &countedFile{File: f, fs: c}, nil
}

func (f *countedFile) Close() error {
	if !f.closed.CompareAndSwap(false, true) {
		return fmt.Errorf("%s closed twice", f.Name())
	}
	f.fs.open.Add(-1)
	return f.File.Close()
}

func setup(t *testing.T, n int) *countingFS {
	t.Helper()
	mem := memfs.New()
	mem.MkdirAll("/d")
	for i := range n {
		if err := mem.WriteFile(fmt.Sprintf("/d/%d", i), []byte(fmt.Sprint(i))); err != nil {
			t.Fatal(err)
		}
	}
	return &countingFS{FS: mem}
}

func read(t *testing.T, c *Cache, i int) {
	t.Helper()
	f, release, err := c.Acquire(fmt.Sprintf("/d/%d", i))
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	b := make([]byte, len(fmt.Sprint(i)))
	if _, err := f.ReadAt(b, 0); err != nil || string(b) != fmt.Sprint(i) {
		t.Fatalf("file %d reads %q, %v", i, b, err)
	}
}

// Reading many files through a cache of 4 keeps at most 4 open, the most
// recently used ones.
func TestBoundAndLRU(t *testing.T) {
	cfs := setup(t, 20)
	c := New(cfs, 4)
	for i := range 20 {
		read(t, c, i)
		if n := cfs.open.Load(); n > 4 {
			t.Fatalf("%d files open after reading %d, bound 4", n, i+1)
		}
	}
	opens := c.Stats().Opens
	read(t, c, 19) // most recent: still open
	read(t, c, 16)
	if got := c.Stats().Opens; got != opens {
		t.Fatalf("re-reading recent files opened %d more", got-opens)
	}
	read(t, c, 0) // evicted long ago: opened again, 17 goes (least recent)
	read(t, c, 17)
	if got := c.Stats().Opens; got != opens+2 {
		t.Fatalf("opens %d, want %d", got, opens+2)
	}
	c.Close()
	if n := cfs.open.Load(); n != 0 {
		t.Fatalf("%d files open after Close", n)
	}
}

// A file in use is never closed under its reader, even past the bound,
// and Forget of a file in use closes it at its release.
func TestPinnedAndForget(t *testing.T) {
	cfs := setup(t, 4)
	c := New(cfs, 2)
	var releases []func()
	var files []vfs.File
	for i := range 4 {
		f, release, err := c.Acquire(fmt.Sprintf("/d/%d", i))
		if err != nil {
			t.Fatal(err)
		}
		files, releases = append(files, f), append(releases, release)
	}
	if n := cfs.open.Load(); n != 4 {
		t.Fatalf("%d open with 4 in use", n)
	}
	for i, f := range files {
		b := make([]byte, 1)
		if _, err := f.ReadAt(b, 0); err != nil {
			t.Fatalf("file %d in use was closed: %v", i, err)
		}
	}
	c.Forget("/d/0")
	if n := cfs.open.Load(); n != 4 {
		t.Fatal("forgotten file closed while in use")
	}
	for _, r := range releases {
		r()
	}
	if n := cfs.open.Load(); n != 2 {
		t.Fatalf("%d open after release, bound 2", n)
	}
	c.Forget("/d/3") // idle: closed now
	if n := cfs.open.Load(); n != 1 {
		t.Fatalf("%d open after forgetting an idle file", n)
	}
	if _, _, err := c.Acquire("/d/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

// Concurrent readers of overlapping files (run with -race).
func TestConcurrent(t *testing.T) {
	cfs := setup(t, 16)
	c := New(cfs, 5)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				read(t, c, (g*7+i)%16)
			}
		}()
	}
	wg.Wait()
	if n := cfs.open.Load(); n > 5 {
		t.Fatalf("%d open when idle, bound 5", n)
	}
	if p := cfs.peak.Load(); p > 5+8 {
		t.Fatalf("peak %d open, bound 5 plus 8 in use", p)
	}
	c.Close()
	if n := cfs.open.Load(); n != 0 {
		t.Fatalf("%d open after Close", n)
	}
}

// hookFS runs during before each Open returns, as a Forget racing with a
// reader's open would.
type hookFS struct {
	*countingFS
	during func(name string)
}

func (h *hookFS) Open(name string) (vfs.File, error) {
	f, err := h.countingFS.Open(name)
	if h.during != nil {
		h.during(name)
	}
	return f, err
}

// TestForgetDuringOpen: a path forgotten while a reader opens it (the
// segment is being deleted or replaced) serves that read, and its file is
// never cached: the next Acquire opens the path afresh and the old file is
// closed at its release.
func TestForgetDuringOpen(t *testing.T) {
	cfs := setup(t, 2)
	var c *Cache
	h := &hookFS{countingFS: cfs}
	c = New(h, 4)
	h.during = func(name string) { c.Forget(name) }
	read(t, c, 0)
	h.during = nil
	if st := c.Stats(); st.Open != 0 || cfs.open.Load() != 0 {
		t.Fatalf("a file opened during a Forget was cached: %+v, %d open", st, cfs.open.Load())
	}
	read(t, c, 0)
	if st := c.Stats(); st.Open != 1 || st.Opens != 1 {
		t.Fatalf("after: %+v", st)
	}
}
