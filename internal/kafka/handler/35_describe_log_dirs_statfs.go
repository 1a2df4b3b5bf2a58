//go:build linux || darwin || freebsd

package handler

import "syscall"

// diskBytes returns the total and the available (to an unprivileged user)
// bytes of the file system holding path, or -1, -1 when unknown.
func diskBytes(path string) (total, usable int64) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return -1, -1
	}
	bs := uint64(st.Bsize)
	return int64(uint64(st.Blocks) * bs), int64(uint64(st.Bavail) * bs)
}
