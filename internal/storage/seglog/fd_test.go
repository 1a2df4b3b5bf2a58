package seglog

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/storage/fdcache"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// fdFS tracks the files open through it, as descriptors would be.
type fdFS struct {
	vfs.FS
	mu   sync.Mutex
	open map[*fdFile]string
}

type fdFile struct {
	vfs.File
	fs *fdFS
}

func newFDFS() *fdFS { return &fdFS{FS: memfs.New(), open: map[*fdFile]string{}} }

func (c *fdFS) track(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	t := &fdFile{File: f, fs: c}
	c.mu.Lock()
	c.open[t] = f.Name()
	c.mu.Unlock()
	return t, nil
}

func (c *fdFS) Create(name string) (vfs.File, error)        { return c.track(c.FS.Create(name)) }
func (c *fdFS) Open(name string) (vfs.File, error)          { return c.track(c.FS.Open(name)) }
func (c *fdFS) OpenReadWrite(name string) (vfs.File, error) { return c.track(c.FS.OpenReadWrite(name)) }

func (f *fdFile) Close() error {
	f.fs.mu.Lock()
	delete(f.fs.open, f)
	f.fs.mu.Unlock()
	return f.File.Close()
}

// openLogFiles counts the open .log files, and says which.
func (c *fdFS) openLogFiles() (int, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var names []string
	for _, n := range c.open {
		if strings.HasSuffix(n, ".log") {
			names = append(names, n)
		}
	}
	return len(names), names
}

// Sealed segments keep no descriptor of their own: a log of 40 segments
// holds one file open (the active segment's), reads of old data go through
// the shared cache and never hold more than it allows, also after a
// restart, and retention closes the cached files of the segments it
// deletes.
func TestSealedSegmentsHoldNoDescriptor(t *testing.T) {
	fsys := newFDFS()
	cache := fdcache.New(fsys, 4)
	now := time.UnixMilli(1_000_000_000)
	cfg := Config{SegmentBytes: 300, IndexIntervalBytes: 256, RetentionMs: time.Hour, Files: cache,
		Now: func() time.Time { return now }}
	l := openLog(t, fsys, "/p-0", cfg, State{})
	for i := range 80 {
		ts := now.Add(-3 * time.Hour).UnixMilli()
		if i >= 40 {
			ts = now.UnixMilli()
		}
		if _, err := l.Append(batch(t, "r", 2, ts), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if l.NumSegments() < 20 {
		t.Fatalf("only %d segments", l.NumSegments())
	}
	if n, names := fsys.openLogFiles(); n != 1 {
		t.Fatalf("%d .log files open with %d segments, want 1 (the active one): %v", n, l.NumSegments(), names)
	}
	if got := readAll(t, l); len(got) != 160 || got[0] != "r-0" || got[159] != "r-1" {
		t.Fatalf("read back %d records", len(got))
	}
	if n, names := fsys.openLogFiles(); n > 1+cache.Max() {
		t.Fatalf("%d .log files open after reading every segment, want at most 1+%d: %v", n, cache.Max(), names)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n, names := fsys.openLogFiles(); n != 0 {
		t.Fatalf("files open after Close: %v", names)
	}

	l = openLog(t, fsys, "/p-0", cfg, State{Clean: true})
	defer l.Close()
	if n, names := fsys.openLogFiles(); n != 1 {
		t.Fatalf("%d .log files open after a clean open, want 1: %v", n, names)
	}
	if got := readAll(t, l); len(got) != 160 {
		t.Fatalf("read back %d records after reopening", len(got))
	}
	res, err := l.ApplyRetention(now)
	if err != nil || res.Segments == 0 {
		t.Fatalf("retention: %+v, %v", res, err)
	}
	_, names := fsys.openLogFiles()
	for _, n := range names {
		if _, err := fsys.Stat(n); err != nil {
			t.Fatalf("descriptor of a deleted segment still open: %s", n)
		}
	}
	if got := readAll(t, l); len(got) == 0 || len(got) >= 160 {
		t.Fatalf("%d records after retention", len(got))
	}
}
