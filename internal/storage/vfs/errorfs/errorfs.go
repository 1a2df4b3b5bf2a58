package errorfs

import (
	"github.com/stromhq/strom/internal/storage/vfs"

	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
)

// ErrInjected is the error injectors return when they are given none.
var ErrInjected = errors.New("errorfs: injected error")

// Op is a kind of filesystem operation, as seen by an Injector.
type Op int

// The operations an Injector can fail. vfs.File methods report the file's Name.
const (
	OpCreate   Op = iota // vfs.FS.Create
	OpOpen               // vfs.FS.Open, vfs.FS.OpenReadWrite
	OpRead               // vfs.File.ReadAt
	OpWrite              // vfs.File.Write, vfs.File.WriteAt
	OpSync               // vfs.File.Sync
	OpTruncate           // vfs.File.Truncate
	OpRemove             // vfs.FS.Remove, vfs.FS.RemoveAll
	OpRename             // vfs.FS.Rename; the name is the old name
	OpList               // vfs.FS.List
	OpStat               // vfs.FS.Stat, vfs.File.Size
	OpSyncDir            // vfs.FS.SyncDir
	OpMkdir              // vfs.FS.MkdirAll
)

var opNames = [...]string{
	OpCreate:   "create",
	OpOpen:     "open",
	OpRead:     "read",
	OpWrite:    "write",
	OpSync:     "sync",
	OpTruncate: "truncate",
	OpRemove:   "remove",
	OpRename:   "rename",
	OpList:     "list",
	OpStat:     "stat",
	OpSyncDir:  "syncdir",
	OpMkdir:    "mkdir",
}

func (op Op) String() string {
	if op >= 0 && int(op) < len(opNames) {
		return opNames[op]
	}
	return fmt.Sprintf("Op(%d)", int(op))
}

// Injector decides, before each operation, whether it fails. A nil error lets
// the operation through; any other error fails it without doing it, except a
// *PartialWrite for OpWrite. Injectors are called concurrently.
type Injector interface {
	MaybeError(op Op, name string) error
}

// InjectorFunc adapts a function to Injector.
type InjectorFunc func(op Op, name string) error

// MaybeError implements Injector.
func (f InjectorFunc) MaybeError(op Op, name string) error { return f(op, name) }

// PartialWrite, returned by an Injector for OpWrite, makes the write store
// its first N bytes (all of them if fewer) and then fail with Err, or with
// syscall.ENOSPC if Err is nil: a disk filling up in the middle of a write.
// The write returns the bytes stored and a *fs.PathError wrapping the
// *PartialWrite, so errors.Is(err, syscall.ENOSPC) holds. For other
// operations it is an ordinary error.
type PartialWrite struct {
	N   int
	Err error
}

func (e *PartialWrite) err() error {
	if e.Err == nil {
		return syscall.ENOSPC
	}
	return e.Err
}

func (e *PartialWrite) Error() string {
	return fmt.Sprintf("partial write of %d bytes: %v", e.N, e.err())
}

func (e *PartialWrite) Unwrap() error { return e.err() }

// ErrorOnce fails the first op whose name contains pathSubstring (every name
// contains ""), once, with err (ErrInjected if nil).
func ErrorOnce(op Op, pathSubstring string, err error) Injector {
	if err == nil {
		err = ErrInjected
	}
	return &onceInjector{op: op, sub: pathSubstring, err: err}
}

type onceInjector struct {
	op    Op
	sub   string
	err   error
	fired atomic.Bool
}

func (i *onceInjector) MaybeError(op Op, name string) error {
	if op != i.op || !strings.Contains(name, i.sub) || !i.fired.CompareAndSwap(false, true) {
		return nil
	}
	return i.err
}

// ErrorAfter lets n operations of kind op succeed and fails every later one
// with err (ErrInjected if nil). With &PartialWrite{} as err and OpWrite as
// op, it models a disk that fills up after n writes.
func ErrorAfter(n int, op Op, err error) Injector {
	if err == nil {
		err = ErrInjected
	}
	return &afterInjector{op: op, n: int64(n), err: err}
}

type afterInjector struct {
	op    Op
	n     int64
	err   error
	count atomic.Int64
}

func (i *afterInjector) MaybeError(op Op, name string) error {
	if op != i.op || i.count.Add(1) <= i.n {
		return nil
	}
	return i.err
}

// Wrap returns fsys with errors injected by inj. An injected error
// comes back wrapped like the OS's errors (*fs.PathError, *os.LinkError for
// Rename), so errors.Is sees both it and the injector's error.
func Wrap(fsys vfs.FS, inj Injector) vfs.FS { return &errorFS{fs: fsys, inj: inj} }

type errorFS struct {
	fs  vfs.FS
	inj Injector
}

func (e *errorFS) check(op Op, name string) error {
	if err := e.inj.MaybeError(op, name); err != nil {
		return &fs.PathError{Op: op.String(), Path: name, Err: err}
	}
	return nil
}

func (e *errorFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return nil, err
	}
	return &errorFile{f: f, inj: e.inj}, nil
}

func (e *errorFS) Create(name string) (vfs.File, error) {
	if err := e.check(OpCreate, name); err != nil {
		return nil, err
	}
	return e.wrap(e.fs.Create(name))
}

func (e *errorFS) Open(name string) (vfs.File, error) {
	if err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	return e.wrap(e.fs.Open(name))
}

func (e *errorFS) OpenReadWrite(name string) (vfs.File, error) {
	if err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	return e.wrap(e.fs.OpenReadWrite(name))
}

func (e *errorFS) Remove(name string) error {
	if err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.fs.Remove(name)
}

func (e *errorFS) RemoveAll(name string) error {
	if err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.fs.RemoveAll(name)
}

func (e *errorFS) Rename(oldname, newname string) error {
	if err := e.inj.MaybeError(OpRename, oldname); err != nil {
		return &os.LinkError{Op: "rename", Old: oldname, New: newname, Err: err}
	}
	return e.fs.Rename(oldname, newname)
}

func (e *errorFS) MkdirAll(dir string) error {
	if err := e.check(OpMkdir, dir); err != nil {
		return err
	}
	return e.fs.MkdirAll(dir)
}

func (e *errorFS) List(dir string) ([]string, error) {
	if err := e.check(OpList, dir); err != nil {
		return nil, err
	}
	return e.fs.List(dir)
}

func (e *errorFS) Stat(name string) (os.FileInfo, error) {
	if err := e.check(OpStat, name); err != nil {
		return nil, err
	}
	return e.fs.Stat(name)
}

func (e *errorFS) SyncDir(dir string) error {
	if err := e.check(OpSyncDir, dir); err != nil {
		return err
	}
	return e.fs.SyncDir(dir)
}

// Lock passes through: the lock file is not data, and a failed lock is
// tested against the real ones.
func (e *errorFS) Lock(name string, owner []byte) (io.Closer, error) {
	return e.fs.Lock(name, owner)
}

type errorFile struct {
	f   vfs.File
	inj Injector
}

func (f *errorFile) check(op Op) error {
	if err := f.inj.MaybeError(op, f.f.Name()); err != nil {
		return &fs.PathError{Op: op.String(), Path: f.f.Name(), Err: err}
	}
	return nil
}

func (f *errorFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.check(OpRead); err != nil {
		return 0, err
	}
	return f.f.ReadAt(p, off)
}

func (f *errorFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.inj.MaybeError(OpWrite, f.f.Name()); err != nil {
		return f.failWrite(p, err, func(q []byte) (int, error) { return f.f.WriteAt(q, off) })
	}
	return f.f.WriteAt(p, off)
}

func (f *errorFile) Write(p []byte) (int, error) {
	if err := f.inj.MaybeError(OpWrite, f.f.Name()); err != nil {
		return f.failWrite(p, err, f.f.Write)
	}
	return f.f.Write(p)
}

// failWrite fails a write with the injected err, first writing a prefix of p
// with write if err is a *PartialWrite.
func (f *errorFile) failWrite(p []byte, err error, write func([]byte) (int, error)) (int, error) {
	var pw *PartialWrite
	if !errors.As(err, &pw) {
		return 0, &fs.PathError{Op: "write", Path: f.f.Name(), Err: err}
	}
	n, werr := write(p[:min(max(pw.N, 0), len(p))])
	if werr != nil {
		return n, werr
	}
	return n, &fs.PathError{Op: "write", Path: f.f.Name(), Err: pw}
}

func (f *errorFile) Sync() error {
	if err := f.check(OpSync); err != nil {
		return err
	}
	return f.f.Sync()
}

func (f *errorFile) Truncate(size int64) error {
	if err := f.check(OpTruncate); err != nil {
		return err
	}
	return f.f.Truncate(size)
}

func (f *errorFile) Size() (int64, error) {
	if err := f.check(OpStat); err != nil {
		return 0, err
	}
	return f.f.Size()
}

func (f *errorFile) Close() error { return f.f.Close() }
func (f *errorFile) Name() string { return f.f.Name() }
