package memfs

import (
	"github.com/stromhq/strom/internal/storage/vfs"

	"errors"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxMemFileSize bounds a FS file so that a bad offset fails with EFBIG
// instead of exhausting the test's memory.
const maxMemFileSize = 1 << 34

var errNegativeOffset = errors.New("negative offset")

// FS is an in-memory FS that models durability, for crash tests.
//
// For every file it keeps two contents: as written, and as of the last
// successful File.Sync. For every directory it keeps two sets of entries: the
// current ones, and the durable ones as of the last SyncDir on it. Crash builds
// the filesystem a power loss would leave behind; Snapshot the one a process
// crash would (the OS page cache survives). See the package documentation for
// the crash model and its simplifications.
//
// Paths are cleaned with filepath.Clean; a relative path is taken relative to
// the root, so "a/b" and "/a/b" name the same file. The root always exists and
// is always durable.
//
// Errors mirror the operating system's: *fs.PathError (*os.LinkError for
// Rename) wrapping a syscall.Errno, so errors.Is(err, fs.ErrNotExist) and
// friends work. Deliberate differences from the OS: Open of a directory fails
// with EISDIR (the OS opens it and fails on read), directory sizes are 0, and
// ModTime is always the zero time.
//
// A FS is safe for concurrent use. One mutex guards everything, files
// included: tests want determinism and a consistent Crash, not parallelism.
type FS struct {
	mu struct {
		sync.Mutex
		root  *memNode
		cut   *armedCut       // a crash armed by CrashAtWrite, or nil
		locks map[string]bool // paths held by Lock; a Crash image has none
	}
}

// armedCut is a power cut waiting for a write: after writesLeft more file
// writes it takes the crash image. Guarded by FS.mu.
type armedCut struct {
	writesLeft int
	opts       CrashOptions
	atCut      func() // or nil
	image      *FS    // taken, or nil
}

// memNode is a file or a directory (an inode). A node is linked under at most
// one current name and at most one durable name, which may differ while a
// rename or a remove is not yet durable. All fields are guarded by FS.mu.
type memNode struct {
	isDir bool

	// Files. Invariant: clean <= min(len(data), len(synced)) and
	// data[:clean] == synced[:clean]; the bytes from clean on were written (or
	// truncated) since the last Sync. Neither slice is shared with anything
	// else, so both may be appended to in place.
	data   []byte
	synced []byte
	clean  int

	// Directories: the current entries and the durable entries.
	children map[string]*memNode
	durable  map[string]*memNode

	// The current link (parent nil when unlinked, and for the root), and the
	// durable link. Invariant: durParent.durable[durName] == this node.
	parent    *memNode
	name      string
	durParent *memNode
	durName   string
}

func newMemDir() *memNode {
	return &memNode{isDir: true, children: map[string]*memNode{}, durable: map[string]*memNode{}}
}

// New returns an empty in-memory filesystem holding only the root directory.
func New() *FS {
	m := &FS{}
	m.mu.root = newMemDir()
	m.mu.locks = map[string]bool{}
	return m
}

// CrashOptions say what of a file's unsynced data survives a Crash.
type CrashOptions struct {
	// KeepUnsyncedPrefix returns how many of the unsynced bytes of the file
	// at name (its path in the crashed filesystem) to keep, from 0 to
	// unsynced; other values are clamped. It is called only for files with
	// unsynced bytes, depth first with names sorted, with the FS locked:
	// it must not call the FS. Nil keeps none.
	KeepUnsyncedPrefix func(name string, unsynced int) int
}

// KeepAll is a KeepUnsyncedPrefix that keeps every unsynced byte: the OS
// happened to write back everything before the power went out.
func KeepAll(name string, unsynced int) int { return unsynced }

// Crash returns a new FS holding what a power loss now would leave on disk.
// m itself is unchanged and stays usable; files open on m do not affect the
// result. In the result everything is durable.
//
// Only entries made durable by SyncDir survive, following durable entries from
// the root: an unsynced create disappears, an unsynced remove or rename is
// undone. Each surviving file holds its synced content plus, per opts, a
// prefix of its unsynced changes (see the package documentation).
func (m *FS) Crash(opts CrashOptions) *FS {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.crashLocked(opts)
}

// CrashAtWrite arms a power cut at the k-th file write (Write or WriteAt)
// from now, k >= 1: right after that write lands and before it returns, the
// image Crash(opts) would give is taken, so the cut finds the written bytes
// not yet synced. The returned cut gives that image, or, if fewer than k
// writes came meanwhile, disarms and takes it at once. atCut, if not nil,
// runs just before the image is taken (a test stops its network there, so
// that no client hears of a sync the image lacks). atCut and
// opts.KeepUnsyncedPrefix run on the writing goroutine with the FS
// locked and must not call it; cut's return orders them before the
// caller's next step. One cut is armed at a time: arming again replaces an
// untaken one.
func (m *FS) CrashAtWrite(k int, opts CrashOptions, atCut func()) (cut func() *FS) {
	m.mu.Lock()
	defer m.mu.Unlock()
	a := &armedCut{writesLeft: max(k, 1), opts: opts, atCut: atCut}
	m.mu.cut = a
	return func() *FS {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.mu.cut == a {
			m.mu.cut = nil
		}
		if a.image == nil {
			a.take(m)
		}
		return a.image
	}
}

// take runs atCut and takes the image. m.mu must be held.
func (a *armedCut) take(m *FS) {
	if a.atCut != nil {
		a.atCut()
	}
	a.image = m.crashLocked(a.opts)
}

// wroteLocked counts a write towards an armed cut. m.mu must be held.
func (m *FS) wroteLocked() {
	a := m.mu.cut
	if a == nil {
		return
	}
	if a.writesLeft--; a.writesLeft == 0 {
		m.mu.cut = nil
		a.take(m)
	}
}

// crashLocked is Crash with m.mu held.
func (m *FS) crashLocked(opts CrashOptions) *FS {
	out := New()
	seen := map[*memNode]bool{}
	var copyDir func(from, to *memNode, dirPath string)
	copyDir = func(from, to *memNode, dirPath string) {
		for _, name := range slices.Sorted(maps.Keys(from.durable)) {
			n := from.durable[name]
			if seen[n] { // impossible while the one-durable-link invariant holds
				continue
			}
			seen[n] = true
			p := filepath.Join(dirPath, name)
			var c *memNode
			if n.isDir {
				c = newMemDir()
				copyDir(n, c, p)
			} else {
				data := n.crashContent(p, opts.KeepUnsyncedPrefix)
				c = &memNode{data: data, synced: slices.Clone(data), clean: len(data)}
			}
			linkNode(to, name, c)
			setDurable(to, name, c)
		}
	}
	copyDir(m.mu.root, out.mu.root, string(filepath.Separator))
	return out
}

// crashContent is the content n has after a crash: the bytes up to clean,
// then keep bytes of the unsynced region, then whatever of the synced
// content lies beyond. Writes are assumed to reach the disk in offset order.
func (n *memNode) crashContent(name string, keepFn func(string, int) int) []byte {
	unsynced := len(n.data) - n.clean
	keep := 0
	if keepFn != nil && unsynced > 0 {
		keep = min(max(keepFn(name, unsynced), 0), unsynced)
	}
	end := n.clean + keep
	out := slices.Clone(n.data[:end])
	if len(n.synced) > end {
		out = append(out, n.synced[end:]...)
	}
	return out
}

// Snapshot returns a deep copy of m with everything as written, as a process
// crash without power loss leaves it: the new FS still tells synced from
// unsynced data and durable from pending directory entries, so it can Crash
// later. Files open on m are not carried over and do not affect the copy.
func (m *FS) Snapshot() *FS {
	m.mu.Lock()
	defer m.mu.Unlock()
	memo := map[*memNode]*memNode{}
	var clone func(o *memNode) *memNode
	clone = func(o *memNode) *memNode {
		if c := memo[o]; c != nil {
			return c
		}
		c := &memNode{isDir: o.isDir}
		memo[o] = c
		if !o.isDir {
			c.data, c.synced, c.clean = slices.Clone(o.data), slices.Clone(o.synced), o.clean
			return c
		}
		c.children = make(map[string]*memNode, len(o.children))
		c.durable = make(map[string]*memNode, len(o.durable))
		for name, ch := range o.children {
			c.children[name] = clone(ch)
		}
		for name, ch := range o.durable {
			c.durable[name] = clone(ch)
		}
		return c
	}
	out := New() // a process's view after a kill -9: no lock held
	out.mu.root = clone(m.mu.root)
	// A link to a node the walk did not reach (an unlinked subtree) becomes
	// nil: nothing in the copy can refer to it.
	for o, c := range memo {
		if c.parent = memo[o.parent]; c.parent != nil {
			c.name = o.name
		}
		if c.durParent = memo[o.durParent]; c.durParent != nil {
			c.durName = o.durName
		}
	}
	return out
}

// ReadFile returns the current content of the file name (as written, synced
// or not).
func (m *FS) ReadFile(name string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.isDir {
		return nil, &fs.PathError{Op: "read", Path: name, Err: syscall.EISDIR}
	}
	return slices.Clone(n.data), nil
}

// WriteFile creates or replaces the file name with data, durably: as if it
// was written, synced and its directory synced. The parent directory must
// exist; its own entry in its parent is not made durable.
func (m *FS) WriteFile(name string, data []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err != nil {
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	n := dir.children[base]
	switch {
	case n == nil:
		n = &memNode{}
		linkNode(dir, base, n)
	case n.isDir:
		return &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	}
	n.data, n.synced, n.clean = slices.Clone(data), slices.Clone(data), len(data)
	setDurable(dir, base, n)
	return nil
}

// Mutate replaces the content of the file name with fn(content), both as
// written and as synced, as if the disk itself changed: use it to corrupt or
// truncate a file behind the program's back, typically on the result of
// Crash. fn receives a copy it may modify and return. It runs with the FS
// locked and must not call it.
func (m *FS) Mutate(name string, fn func([]byte) []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return &fs.PathError{Op: "open", Path: name, Err: err}
	}
	if n.isDir {
		return &fs.PathError{Op: "write", Path: name, Err: syscall.EISDIR}
	}
	data := fn(slices.Clone(n.data))
	n.data, n.synced, n.clean = data, slices.Clone(data), len(data)
	return nil
}

// Create implements FS.
func (m *FS) Create(name string) (vfs.File, error) { return m.open(name, true, true, false) }

// Open implements FS. Unlike the OS, opening a directory fails with EISDIR.
func (m *FS) Open(name string) (vfs.File, error) { return m.open(name, false, false, true) }

// OpenReadWrite implements FS.
func (m *FS) OpenReadWrite(name string) (vfs.File, error) { return m.open(name, true, false, false) }

func (m *FS) open(name string, create, truncate, readOnly bool) (vfs.File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: err}
	}
	var n *memNode
	if base == "" {
		n = m.mu.root
	} else {
		n = dir.children[base]
	}
	switch {
	case n == nil && !create:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.ENOENT}
	case n == nil:
		n = &memNode{}
		linkNode(dir, base, n)
	case n.isDir:
		return nil, &fs.PathError{Op: "open", Path: name, Err: syscall.EISDIR}
	case truncate:
		n.truncate(0)
	}
	f := &memFile{fs: m, n: n, name: name, readOnly: readOnly}
	return f, nil
}

// Remove implements FS.
func (m *FS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	if err == nil && base == "" {
		err = syscall.EBUSY
	}
	if err != nil {
		return &fs.PathError{Op: "remove", Path: name, Err: err}
	}
	n := dir.children[base]
	switch {
	case n == nil:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOENT}
	case n.isDir && len(n.children) > 0:
		return &fs.PathError{Op: "remove", Path: name, Err: syscall.ENOTEMPTY}
	}
	unlinkNode(dir, base)
	return nil
}

// RemoveAll implements FS. Like os.RemoveAll, a missing name is not an error.
func (m *FS) RemoveAll(name string) error {
	if name == "" {
		return nil
	}
	if b := filepath.Base(name); b == "." || b == ".." {
		return &fs.PathError{Op: "RemoveAll", Path: name, Err: syscall.EINVAL}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	dir, base, err := m.parentLocked(name)
	switch {
	case errors.Is(err, syscall.ENOENT):
		return nil
	case err != nil:
		return &fs.PathError{Op: "unlinkat", Path: name, Err: err}
	case base == "":
		return &fs.PathError{Op: "RemoveAll", Path: name, Err: syscall.EINVAL}
	}
	if dir.children[base] != nil {
		unlinkNode(dir, base)
	}
	return nil
}

// Rename implements FS. Like os.Rename, it refuses an existing directory as
// newname (EEXIST), even an empty one.
func (m *FS) Rename(oldname, newname string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	lerr := func(err error) error {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	if t, err := m.lookupLocked(newname); err == nil && t.isDir {
		if _, err := m.lookupLocked(oldname); err != nil {
			return lerr(err)
		}
		return lerr(syscall.EEXIST)
	}
	odir, obase, err := m.parentLocked(oldname)
	if err == nil && obase == "" {
		err = syscall.EBUSY
	}
	if err != nil {
		return lerr(err)
	}
	n := odir.children[obase]
	if n == nil {
		return lerr(syscall.ENOENT)
	}
	ndir, nbase, err := m.parentLocked(newname)
	if err != nil {
		return lerr(err)
	}
	target := ndir.children[nbase]
	if target == n {
		return nil
	}
	if n.isDir {
		if target != nil { // a file: directories were refused above
			return lerr(syscall.ENOTDIR)
		}
		for d := ndir; d != nil; d = d.parent {
			if d == n {
				return lerr(syscall.EINVAL)
			}
		}
	}
	if target != nil {
		unlinkNode(ndir, nbase)
	}
	unlinkNode(odir, obase)
	linkNode(ndir, nbase, n)
	return nil
}

// MkdirAll implements FS. New directories are not durable until SyncDir on
// their parent.
func (m *FS) MkdirAll(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	parts := splitPath(dir)
	n := m.mu.root
	prefix := ""
	if filepath.IsAbs(dir) {
		prefix = string(filepath.Separator)
	}
	for i, p := range parts {
		c := n.children[p]
		if c == nil {
			c = newMemDir()
			linkNode(n, p, c)
		} else if !c.isDir {
			return &fs.PathError{Op: "mkdir", Path: prefix + filepath.Join(parts[:i+1]...), Err: syscall.ENOTDIR}
		}
		n = c
	}
	return nil
}

// List implements FS.
func (m *FS) List(dir string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(dir)
	if err == nil && !n.isDir {
		err = syscall.ENOTDIR
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	return slices.Sorted(maps.Keys(n.children)), nil
}

// Stat implements FS.
func (m *FS) Stat(name string) (os.FileInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(name)
	if err != nil {
		return nil, &fs.PathError{Op: "stat", Path: name, Err: err}
	}
	return memFileInfo{name: filepath.Base(name), size: int64(len(n.data)), dir: n.isDir}, nil
}

// SyncDir implements FS: it makes durable every create, remove and rename in
// dir since the last SyncDir on it. As on the OS, SyncDir of a regular file
// syncs the file's data.
func (m *FS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.lookupLocked(dir)
	if err != nil {
		return &fs.PathError{Op: "open", Path: dir, Err: err}
	}
	if !n.isDir {
		n.sync()
		return nil
	}
	// Durable entries that no longer match: the file was removed, or renamed
	// away. A rename completes atomically: the file becomes durable under its
	// current name, wherever that is.
	for name, c := range n.durable {
		if n.children[name] == c {
			continue
		}
		clearDurable(c)
		if c.parent != nil {
			setDurable(c.parent, c.name, c)
		}
	}
	for name, c := range n.children {
		setDurable(n, name, c)
	}
	return nil
}

// splitPath cleans name and returns its components below the root.
func splitPath(name string) []string {
	c := filepath.Clean(name)
	c = filepath.ToSlash(c[len(filepath.VolumeName(c)):])
	var parts []string
	for p := range strings.SplitSeq(c, "/") {
		switch p {
		case "", ".":
		case "..": // only at the start of a relative path: the root's parent is the root
			if len(parts) > 0 {
				parts = parts[:len(parts)-1]
			}
		default:
			parts = append(parts, p)
		}
	}
	return parts
}

// lookupLocked returns the node at name, or ENOENT or ENOTDIR. m.mu must be
// held.
func (m *FS) lookupLocked(name string) (*memNode, error) {
	if name == "" {
		return nil, syscall.ENOENT
	}
	n := m.mu.root
	for _, p := range splitPath(name) {
		if !n.isDir {
			return nil, syscall.ENOTDIR
		}
		if n = n.children[p]; n == nil {
			return nil, syscall.ENOENT
		}
	}
	return n, nil
}

// parentLocked returns the directory that holds name's last component, and
// that component; for the root it returns the root and "". m.mu must be held.
func (m *FS) parentLocked(name string) (dir *memNode, base string, err error) {
	if name == "" {
		return nil, "", syscall.ENOENT
	}
	parts := splitPath(name)
	if len(parts) == 0 {
		return m.mu.root, "", nil
	}
	n := m.mu.root
	for _, p := range parts[:len(parts)-1] {
		if n = n.children[p]; n == nil {
			return nil, "", syscall.ENOENT
		}
		if !n.isDir {
			return nil, "", syscall.ENOTDIR
		}
	}
	return n, parts[len(parts)-1], nil
}

func linkNode(dir *memNode, name string, n *memNode) {
	dir.children[name] = n
	n.parent, n.name = dir, name
}

func unlinkNode(dir *memNode, name string) {
	n := dir.children[name]
	delete(dir.children, name)
	n.parent, n.name = nil, ""
}

// setDurable makes dir/name durably refer to n, dropping n's previous durable
// name and the durability of whatever dir/name durably referred to.
func setDurable(dir *memNode, name string, n *memNode) {
	if n.durParent == dir && n.durName == name {
		return
	}
	clearDurable(n)
	if old := dir.durable[name]; old != nil {
		old.durParent, old.durName = nil, ""
	}
	dir.durable[name] = n
	n.durParent, n.durName = dir, name
}

func clearDurable(n *memNode) {
	if n.durParent != nil {
		delete(n.durParent.durable, n.durName)
		n.durParent, n.durName = nil, ""
	}
}

// markDirty records that the bytes from off on differ from the synced ones.
func (n *memNode) markDirty(off int) {
	if off < n.clean {
		n.clean = off
	}
}

func (n *memNode) sync() {
	n.synced = append(n.synced[:n.clean], n.data[n.clean:]...)
	n.clean = len(n.data)
}

// resize grows (with zeros) or shrinks n.data to size.
func (n *memNode) resize(size int) {
	old := len(n.data)
	if size <= old {
		n.data = n.data[:size]
		return
	}
	n.data = slices.Grow(n.data, size-old)[:size]
	clear(n.data[old:])
}

func (n *memNode) truncate(size int) {
	n.markDirty(min(size, len(n.data)))
	n.resize(size)
}

func (n *memNode) writeAt(p []byte, off int) {
	n.markDirty(min(off, len(n.data)))
	if end := off + len(p); end > len(n.data) {
		n.resize(end)
	}
	copy(n.data[off:], p)
}

// memFile is an open FS file. Its fields, like its node, are guarded by
// fs.mu.
type memFile struct {
	fs       *FS
	n        *memNode
	name     string
	readOnly bool
	closed   bool
	off      int64 // where Write writes next
}

func (f *memFile) pathErr(op string, err error) error {
	return &fs.PathError{Op: op, Path: f.name, Err: err}
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("read", fs.ErrClosed)
	}
	if off < 0 {
		return 0, f.pathErr("readat", errNegativeOffset)
	}
	if off >= int64(len(f.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("write", fs.ErrClosed)
	}
	if off < 0 {
		return 0, f.pathErr("writeat", errNegativeOffset)
	}
	return f.writeAtLocked(p, off)
}

func (f *memFile) Write(p []byte) (int, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("write", fs.ErrClosed)
	}
	n, err := f.writeAtLocked(p, f.off)
	f.off += int64(n)
	return n, err
}

// writeAtLocked writes p at off. f.fs.mu must be held.
func (f *memFile) writeAtLocked(p []byte, off int64) (int, error) {
	if f.readOnly {
		return 0, f.pathErr("write", syscall.EBADF)
	}
	if off > maxMemFileSize-int64(len(p)) {
		return 0, f.pathErr("write", syscall.EFBIG)
	}
	f.n.writeAt(p, int(off))
	f.fs.wroteLocked()
	return len(p), nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return f.pathErr("sync", fs.ErrClosed)
	}
	f.n.sync()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	switch {
	case f.closed:
		return f.pathErr("truncate", fs.ErrClosed)
	case size < 0 || f.readOnly:
		return f.pathErr("truncate", syscall.EINVAL)
	case size > maxMemFileSize:
		return f.pathErr("truncate", syscall.EFBIG)
	}
	f.n.truncate(int(size))
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return 0, f.pathErr("stat", fs.ErrClosed)
	}
	return int64(len(f.n.data)), nil
}

func (f *memFile) Close() error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	if f.closed {
		return f.pathErr("close", fs.ErrClosed)
	}
	f.closed = true
	return nil
}

func (f *memFile) Name() string { return f.name }

type memFileInfo struct {
	name string
	size int64
	dir  bool
}

func (fi memFileInfo) Name() string       { return fi.name }
func (fi memFileInfo) Size() int64        { return fi.size }
func (fi memFileInfo) IsDir() bool        { return fi.dir }
func (fi memFileInfo) ModTime() time.Time { return time.Time{} }
func (fi memFileInfo) Sys() any           { return nil }

func (fi memFileInfo) Mode() fs.FileMode {
	if fi.dir {
		return fs.ModeDir | 0o755
	}
	return 0o644
}

var (
	_ vfs.FS   = (*FS)(nil)
	_ vfs.File = (*memFile)(nil)
)

// Lock is an in-memory exclusive lock on name, the file created as by
// OpenReadWrite with owner written into it. A Crash image starts with no
// lock held, as a restarted machine does.
func (m *FS) Lock(name string, owner []byte) (io.Closer, error) {
	f, err := m.OpenReadWrite(name)
	if err != nil {
		return nil, err
	}
	key := filepath.Clean(name)
	m.mu.Lock()
	held := m.mu.locks[key]
	if !held {
		m.mu.locks[key] = true
	}
	m.mu.Unlock()
	if held {
		defer f.Close()
		return nil, &vfs.LockedError{Name: name, Holder: holderOf(f)}
	}
	// Best effort, as on the OS: the owner only names the holder.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt(owner, 0)
	}
	return &memLock{m: m, key: key, f: f}, nil
}

func (m *FS) unlock(key string) {
	m.mu.Lock()
	delete(m.mu.locks, key)
	m.mu.Unlock()
}

type memLock struct {
	m    *FS
	key  string
	f    vfs.File
	once sync.Once
}

func (l *memLock) Close() error {
	var err error
	l.once.Do(func() {
		l.m.unlock(l.key)
		err = l.f.Close()
	})
	return err
}

// holderOf reads what a lock's holder wrote into the lock file: the first
// line, at most 256 bytes of it.
func holderOf(f io.ReaderAt) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	s, _, _ := strings.Cut(string(b[:n]), "\n")
	return strings.TrimSpace(s)
}
