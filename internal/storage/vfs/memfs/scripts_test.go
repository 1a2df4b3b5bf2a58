package memfs

import (
	"github.com/stromhq/strom/internal/storage/vfs"

	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fsScenarios are scripts run against both the OS filesystem and memfs; the
// two transcripts must be identical, errors included. Paths are relative to a
// fresh temporary directory (the same path string on both). Commands:
//
//	mkdir P | remove P | removeall P | rename P Q | list P | stat P | syncdir P | cat P
//	create H P | open H P | openrw H P      open P as handle H
//	write H DATA | writeat H OFF DATA | readat H OFF N
//	sync H | truncate H SIZE | size H | close H
//
// Deliberately left out, because memfs differs: opening a directory, the size
// of a directory, and Sync of a closed file (the OS file's Sync returns a bare
// EBADF from fdatasync(-1); memfs returns a *fs.PathError wrapping
// fs.ErrClosed, like the other methods).
var fsScenarios = []struct {
	name   string
	script string
}{
	{"file-lifecycle", `
		create f a
		write f hello
		writeat f 7 xy
		size f
		readat f 0 9
		readat f 5 10
		readat f 9 1
		readat f 20 1
		readat f -1 1
		writeat f -1 x
		truncate f 3
		size f
		truncate f 6
		cat a
		write f ZZ
		cat a
		truncate f -1
		sync f
		close f
		close f
		readat f 0 1
		write f x
		writeat f 0 x
		size f
		truncate f 1
		stat a
	`},
	{"read-only-and-reopen", `
		create w a
		write w abc
		close w
		open r a
		readat r 0 3
		write r x
		writeat r 0 x
		truncate r 1
		sync r
		size r
		close r
		openrw rw a
		write rw Z
		cat a
		close rw
		openrw n b
		size n
		close n
		create c a
		cat a
		close c
		list .
	`},
	{"missing-and-wrong-kind", `
		open x missing
		open x d/missing
		openrw x d/missing
		create x d/missing
		stat missing
		list missing
		remove missing
		rename missing other
		syncdir missing
		cat missing
		mkdir d
		create x d
		openrw x d
		create f file
		close f
		create x file/sub
		open x file/sub
		stat file/sub
		mkdir file
		mkdir file/a/b
		list file
		removeall file/a
		removeall missing
		removeall missing/deeper
		syncdir file
		syncdir d
		remove d/../file/x
	`},
	{"directories", `
		mkdir a/b/c
		mkdir a/b
		mkdir a/./b/../b/c
		list .
		list a/b
		stat a/b
		stat a/b/
		create f a/b/f
		close f
		list a/b
		remove a
		remove a/b/c
		list a/b
		removeall a
		list .
		stat a
		syncdir .
	`},
	{"rename", `
		mkdir d
		mkdir e
		create f d/x
		write f one
		close f
		create g d/y
		write g two
		close g
		rename d/x d/z
		list d
		rename d/z d/y
		cat d/y
		list d
		rename d/y d/y
		rename d/y e
		rename e d/y
		rename d e
		rename d d/sub
		rename e e
		rename e e2
		list .
		rename d/y e2/y
		list d
		list e2
		rename missing e2
		rename d/nope x
		rename e2/y nodir/y
		rename e2/y e2/y/z
		cat e2/y
	`},
	{"open-files-outlive-names", `
		create f a
		write f data
		remove a
		readat f 0 4
		write f more
		size f
		stat a
		close f
		create g b
		rename b c
		write g X
		cat c
		close g
	`},
}

func TestScenariosMemMatchesOS(t *testing.T) {
	for _, sc := range fsScenarios {
		t.Run(sc.name, func(t *testing.T) {
			root := t.TempDir()
			mem := New()
			if err := mem.MkdirAll(root); err != nil {
				t.Fatal(err)
			}
			osRun := newScriptRunner(vfs.Default, root)
			memRun := newScriptRunner(mem, root)
			defer osRun.closeAll()
			for line := range strings.Lines(sc.script) {
				line = strings.TrimSpace(line)
				if line == "" {
					continue
				}
				want, got := osRun.run(t, line), memRun.run(t, line)
				t.Logf("%-24s => %s", line, want)
				if got != want {
					t.Errorf("%s:\n  os:  %s\n  mem: %s", line, want, got)
				}
			}
		})
	}
}

type scriptRunner struct {
	fs    vfs.FS
	root  string
	files map[string]vfs.File
}

func newScriptRunner(fsys vfs.FS, root string) *scriptRunner {
	return &scriptRunner{fs: fsys, root: root, files: map[string]vfs.File{}}
}

func (r *scriptRunner) closeAll() {
	for _, f := range r.files {
		f.Close()
	}
}

func (r *scriptRunner) path(p string) string {
	// Join would clean the path; keep it as written, like a caller would.
	return r.root + string(filepath.Separator) + p
}

// errText describes err with the root directory removed from paths.
func (r *scriptRunner) errText(err error) string {
	if err == nil {
		return "ok"
	}
	s := strings.ReplaceAll(err.Error(), r.root+string(filepath.Separator), "")
	return fmt.Sprintf("error %T: %s", err, s)
}

func (r *scriptRunner) run(t *testing.T, line string) string {
	t.Helper()
	args := strings.Fields(line)
	cmd, args := args[0], args[1:]
	need := func(n int) {
		if len(args) != n {
			t.Fatalf("%q: want %d arguments", line, n)
		}
	}
	atoi := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		return n
	}
	file := func() vfs.File {
		f := r.files[args[0]]
		if f == nil {
			t.Fatalf("%q: no handle %s", line, args[0])
		}
		return f
	}
	withN := func(n int, err error) string {
		if err != nil {
			return fmt.Sprintf("%d %s", n, r.errText(err))
		}
		return strconv.Itoa(n)
	}
	switch cmd {
	case "mkdir":
		need(1)
		return r.errText(r.fs.MkdirAll(r.path(args[0])))
	case "remove":
		need(1)
		return r.errText(r.fs.Remove(r.path(args[0])))
	case "removeall":
		need(1)
		return r.errText(r.fs.RemoveAll(r.path(args[0])))
	case "rename":
		need(2)
		return r.errText(r.fs.Rename(r.path(args[0]), r.path(args[1])))
	case "syncdir":
		need(1)
		return r.errText(r.fs.SyncDir(r.path(args[0])))
	case "list":
		need(1)
		names, err := r.fs.List(r.path(args[0]))
		if err != nil {
			return r.errText(err)
		}
		return fmt.Sprint(names)
	case "stat":
		need(1)
		fi, err := r.fs.Stat(r.path(args[0]))
		switch {
		case err != nil:
			return r.errText(err)
		case fi.IsDir():
			return fmt.Sprintf("dir %s", fi.Name())
		default:
			return fmt.Sprintf("file %s size %d", fi.Name(), fi.Size())
		}
	case "cat":
		need(1)
		b, err := readAll(r.fs, r.path(args[0]))
		if err != nil {
			return r.errText(err)
		}
		return strconv.Quote(string(b))
	case "create", "open", "openrw":
		need(2)
		open := map[string]func(string) (vfs.File, error){
			"create": r.fs.Create, "open": r.fs.Open, "openrw": r.fs.OpenReadWrite,
		}[cmd]
		f, err := open(r.path(args[1]))
		if err == nil {
			if old := r.files[args[0]]; old != nil {
				old.Close()
			}
			r.files[args[0]] = f
		}
		return r.errText(err)
	case "write":
		need(2)
		return withN(file().Write([]byte(args[1])))
	case "writeat":
		need(3)
		return withN(file().WriteAt([]byte(args[2]), atoi(args[1])))
	case "readat":
		need(3)
		buf := make([]byte, atoi(args[2]))
		n, err := file().ReadAt(buf, atoi(args[1]))
		s := fmt.Sprintf("%d %q", n, buf[:n])
		if err != nil {
			s += " " + r.errText(err)
		}
		return s
	case "sync":
		need(1)
		return r.errText(file().Sync())
	case "truncate":
		need(2)
		return r.errText(file().Truncate(atoi(args[1])))
	case "size":
		need(1)
		n, err := file().Size()
		if err != nil {
			return r.errText(err)
		}
		return strconv.FormatInt(n, 10)
	case "close":
		need(1)
		return r.errText(file().Close())
	}
	t.Fatalf("unknown command %q", line)
	return ""
}

// readAll reads a whole file through fsys.
func readAll(fsys vfs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, size)
	n, err := f.ReadAt(b, 0)
	if err == io.EOF && int64(n) == size {
		err = nil
	}
	return b[:n], err
}

// writeFile creates name in fsys with data, synced (its directory is not).
func writeFile(t *testing.T, fsys vfs.FS, name, data string) {
	t.Helper()
	f, err := fsys.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
