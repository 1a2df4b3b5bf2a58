package logdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// TestSecondOpenRefused: while one Dir has the data directory open, a
// second Open of it fails with ErrInUse naming the holder's pid, and
// writes nothing (no clean marker, no checkpoint) into the directory; once
// the first is closed, the directory opens again. Both on the OS (flock)
// and on MemFS.
func TestSecondOpenRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		fs   vfs.FS
		path string
	}{
		{"os", vfs.Default, filepath.Join(t.TempDir(), "data")},
		{"mem", memfs.New(), "/data"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, err := Open(tc.fs, tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := first.OpenLog(Partition{Topic: "t", Partition: 0}, seglog.Config{IndexMaxBytes: 4096}); err != nil {
				t.Fatal(err)
			}
			before, err := tc.fs.List(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			second, err := Open(tc.fs, tc.path, nil)
			if err == nil {
				second.Close()
				t.Fatal("a second Open of a held data dir succeeded")
			}
			if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) {
				t.Fatalf("second Open: %v; want ErrInUse naming pid %d", err, os.Getpid())
			}
			after, err := tc.fs.List(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(before) != fmt.Sprint(after) {
				t.Fatalf("the refused Open changed the directory: %v -> %v", before, after)
			}
			if err := first.Close(); err != nil {
				t.Fatal(err)
			}
			again, err := Open(tc.fs, tc.path, nil)
			if err != nil {
				t.Fatalf("Open after Close: %v", err)
			}
			if !again.WasClean() {
				t.Fatal("the refused Open spoiled the first one's clean shutdown")
			}
			again.Close()
		})
	}
}

// TestCrashImageIsUnlocked: a power cut (a MemFS crash image) leaves no
// lock behind, as the kernel drops flock locks of a dead process.
func TestCrashImageIsUnlocked(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	img := mem.Crash(memfs.CrashOptions{})
	d2, err := Open(img, "/data", nil)
	if err != nil {
		t.Fatalf("open after a power cut: %v", err)
	}
	d2.Close()
}
