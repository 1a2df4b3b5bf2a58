package fdcache

import (
	"container/list"
	"fmt"
	"sync"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// Cache is a bounded set of open read-only files, keyed by path.
type Cache struct {
	fs  vfs.FS
	max int

	mu struct {
		sync.Mutex
		files map[string]*entry
		idle  list.List // of *entry with refs == 0, least recently used first
		stats Stats
	}
}

type entry struct {
	path string
	f    vfs.File
	refs int
	idle *list.Element // in Cache.mu.idle while refs == 0
	gone bool          // forgotten: not in files; closed at the last release
}

// Stats counts what the cache did.
type Stats struct {
	Open      int   // files open now
	Opens     int64 // files opened
	Hits      int64 // acquisitions served by an open file
	Evictions int64 // idle files closed to stay within Max
}

// New returns a cache on fsys that keeps at most limit files open (at
// least 1).
func New(fsys vfs.FS, limit int) *Cache {
	c := &Cache{fs: fsys, max: max(limit, 1)}
	c.mu.files = map[string]*entry{}
	return c
}

// Max is the bound on idle open files.
func (c *Cache) Max() int { return c.max }

// Acquire returns the file at path opened read-only, and release, which
// the caller must call exactly once when done with it; until then the
// file stays open. The caller must not close the file.
func (c *Cache) Acquire(path string) (vfs.File, func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.files[path]
	if ok {
		c.mu.stats.Hits++
		if e.refs == 0 {
			c.mu.idle.Remove(e.idle)
			e.idle = nil
		}
	} else {
		// Make room first: the open below needs a descriptor.
		c.evictLocked(c.max - 1)
		f, err := c.fs.Open(path)
		if err != nil {
			return nil, nil, fmt.Errorf("fdcache: %w", err)
		}
		e = &entry{path: path, f: f}
		c.mu.files[path] = e
		c.mu.stats.Opens++
	}
	e.refs++
	return e.f, func() { c.release(e) }, nil
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.refs--
	if e.refs > 0 {
		return
	}
	if e.gone {
		e.f.Close()
		return
	}
	e.idle = c.mu.idle.PushBack(e)
	c.evictLocked(c.max)
}

// evictLocked closes the least recently used idle files until at most
// keep files are open (or none is idle); mu must be held.
func (c *Cache) evictLocked(keep int) {
	for len(c.mu.files) > keep {
		front := c.mu.idle.Front()
		if front == nil {
			return
		}
		e := c.mu.idle.Remove(front).(*entry)
		e.idle = nil
		delete(c.mu.files, e.path)
		e.f.Close()
		c.mu.stats.Evictions++
	}
}

// Forget drops path from the cache: its file is closed now, or when the
// last reader releases it, and never handed out again. Call it before the
// file is deleted or replaced.
func (c *Cache) Forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.files[path]
	if !ok {
		return
	}
	delete(c.mu.files, path)
	if e.refs == 0 {
		c.mu.idle.Remove(e.idle)
		e.idle = nil
		e.f.Close()
		return
	}
	e.gone = true
}

// Close closes every idle file and forgets the ones in use (closed at
// their release). The cache stays usable.
func (c *Cache) Close() {
	c.mu.Lock()
	paths := make([]string, 0, len(c.mu.files))
	for p := range c.mu.files {
		paths = append(paths, p)
	}
	c.mu.Unlock()
	for _, p := range paths {
		c.Forget(p)
	}
}

// Stats returns the counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.mu.stats
	s.Open = len(c.mu.files)
	return s
}
