package vfs

import (
	"io"
	"os"
	"path/filepath"
)

// File is an open file. Implementations must allow concurrent ReadAt calls with
// one writer; Write appends at the file's current end when opened with O_APPEND
// semantics is NOT assumed: callers track positions and use WriteAt or Write on a
// file they alone write.
type File interface {
	io.ReaderAt
	io.WriterAt
	io.Writer
	io.Closer
	// Sync makes everything written so far durable (fdatasync where available).
	Sync() error
	// Truncate changes the file's size; growing it fills with zeros.
	Truncate(size int64) error
	// Size returns the current size of the file in bytes.
	Size() (int64, error)
	// Name returns the path the file was opened with.
	Name() string
}

// FS is the set of filesystem operations storage uses. Every path is a full
// path as given by the caller (no working directory semantics beyond the OS's).
type FS interface {
	// Create creates or truncates name for reading and writing.
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// OpenReadWrite opens an existing name for reading and writing, or creates
	// it if it does not exist (without truncating).
	OpenReadWrite(name string) (File, error)
	// Remove removes a file or an empty directory.
	Remove(name string) error
	// RemoveAll removes a path and everything under it.
	RemoveAll(name string) error
	// Rename atomically replaces newname with oldname.
	Rename(oldname, newname string) error
	// MkdirAll creates a directory and its parents.
	MkdirAll(dir string) error
	// List returns the names (not paths) of the entries of dir, sorted.
	List(dir string) ([]string, error)
	// Stat reports whether name exists and its size.
	Stat(name string) (os.FileInfo, error)
	// SyncDir makes the directory's entries (creates, renames, removes) durable.
	SyncDir(dir string) error
	// Lock takes an exclusive lock on name (creating the file), without
	// waiting, and writes owner into it to name the holder; the lock is held
	// until the returned Closer is closed or the process ends. A lock held
	// by someone else is a *LockedError (errors.Is ErrLocked) that quotes
	// what its holder wrote.
	Lock(name string, owner []byte) (io.Closer, error)
}

// Default is the operating system's filesystem.
var Default FS = osFS{}

type osFS struct{}

type osFile struct{ *os.File }

// OSFiler is a File backed by an operating system file, whose descriptor
// can be handed to the kernel (sendfile). Files of in-memory or
// fault-injecting filesystems are not: their readers copy.
type OSFiler interface {
	OSFile() *os.File
}

// OSFile returns the *os.File behind f (the caller must not close it).
func (f osFile) OSFile() *os.File { return f.File }

func (f osFile) Size() (int64, error) {
	fi, err := f.File.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func (f osFile) Sync() error { return fdatasync(f.File) }

func (osFS) Create(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Open(name string) (File, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) OpenReadWrite(name string) (File, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error             { return os.Remove(name) }
func (osFS) RemoveAll(name string) error          { return os.RemoveAll(name) }
func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string) error            { return os.MkdirAll(dir, 0o755) }
func (osFS) Stat(name string) (os.FileInfo, error) {
	return os.Stat(name)
}

func (osFS) List(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name()
	}
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(filepath.Clean(dir))
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
