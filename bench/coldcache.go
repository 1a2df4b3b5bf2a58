package bench

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"
)

// evictDataDir makes a restart on dir read its files from the disk, as
// after a reboot: every file is fsynced (a dirty page cannot be dropped),
// then the kernel's page cache is dropped where the harness may
// (/proc/sys/vm/drop_caches, root), and each file's pages are evicted
// with posix_fadvise(POSIX_FADV_DONTNEED) in any case. It returns how the
// cache was dropped, for the scenario's note.
func evictDataDir(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	for _, path := range files {
		if err := syncFile(path); err != nil {
			return "", err
		}
	}
	how := "posix_fadvise(DONTNEED) on each of the data dir's files"
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0); err == nil {
		how = "/proc/sys/vm/drop_caches (3), then " + how
	}
	for _, path := range files {
		if err := adviseDontNeed(path); err != nil {
			return "", err
		}
	}
	return how, nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", path, err)
	}
	return nil
}

func adviseDontNeed(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", path, err)
	}
	return nil
}

// residentFraction is the share of dir's file pages in the page cache
// (mincore over a read-only mapping of each file), to show that an
// eviction took.
func residentFraction(dir string) (float64, error) {
	var resident, total int64
	page := int64(os.Getpagesize())
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := f.Stat()
		if err != nil || st.Size() == 0 {
			return err
		}
		m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
		if err != nil {
			return fmt.Errorf("mmap %s: %w", path, err)
		}
		defer unix.Munmap(m)
		vec := make([]byte, (st.Size()+page-1)/page)
		if _, _, errno := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
			return fmt.Errorf("mincore %s: %w", path, errno)
		}
		for _, v := range vec {
			if v&1 != 0 {
				resident++
			}
		}
		total += int64(len(vec))
		return nil
	})
	if err != nil || total == 0 {
		return 0, err
	}
	return float64(resident) / float64(total), nil
}
