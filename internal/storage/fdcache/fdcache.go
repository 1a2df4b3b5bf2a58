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
		// forgets counts Forget calls, so that a file opened without the
		// lock is not cached when a Forget may have come meanwhile.
		forgets uint64
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
	if e, ok := c.mu.files[path]; ok {
		c.hitLocked(e)
		c.mu.Unlock()
		return e.f, func() { c.release(e) }, nil
	}
	// Make room first: the open below needs a descriptor. The files
	// evicted are closed, and the new one opened, without the lock, so
	// that readers of other segments never wait on this one's syscalls.
	evicted := c.evictLocked(c.max - 1)
	gen := c.mu.forgets
	c.mu.Unlock()
	closeAll(evicted)
	f, err := c.fs.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("fdcache: %w", err)
	}
	c.mu.Lock()
	if e, ok := c.mu.files[path]; ok {
		// Another reader opened it meanwhile: use theirs.
		c.hitLocked(e)
		c.mu.Unlock()
		f.Close()
		return e.f, func() { c.release(e) }, nil
	}
	e := &entry{path: path, f: f, refs: 1}
	if c.mu.forgets != gen {
		// A Forget came while the file was being opened: it may be this
		// path's, whose file is being deleted or replaced. Serve this read
		// and close the file at its release; never cache it.
		e.gone = true
		c.mu.Unlock()
		return f, func() { c.release(e) }, nil
	}
	c.mu.files[path] = e
	c.mu.stats.Opens++
	c.mu.Unlock()
	return f, func() { c.release(e) }, nil
}

// hitLocked takes one more reference to an open file; mu must be held.
func (c *Cache) hitLocked(e *entry) {
	c.mu.stats.Hits++
	if e.refs == 0 {
		c.mu.idle.Remove(e.idle)
		e.idle = nil
	}
	e.refs++
}

func closeAll(files []vfs.File) {
	for _, f := range files {
		f.Close()
	}
}

func (c *Cache) release(e *entry) {
	c.mu.Lock()
	e.refs--
	if e.refs > 0 {
		c.mu.Unlock()
		return
	}
	if e.gone {
		c.mu.Unlock()
		e.f.Close()
		return
	}
	e.idle = c.mu.idle.PushBack(e)
	evicted := c.evictLocked(c.max)
	c.mu.Unlock()
	closeAll(evicted)
}

// evictLocked takes the least recently used idle files out of the cache
// until at most keep files are open (or none is idle), and returns them
// for the caller to close once it has let go of mu; mu must be held.
func (c *Cache) evictLocked(keep int) []vfs.File {
	var out []vfs.File
	for len(c.mu.files) > keep {
		front := c.mu.idle.Front()
		if front == nil {
			break
		}
		e := c.mu.idle.Remove(front).(*entry)
		e.idle = nil
		delete(c.mu.files, e.path)
		out = append(out, e.f)
		c.mu.stats.Evictions++
	}
	return out
}

// Forget drops path from the cache: its file is closed now, or when the
// last reader releases it, and never handed out again. Call it before the
// file is deleted or replaced.
func (c *Cache) Forget(path string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mu.forgets++
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
