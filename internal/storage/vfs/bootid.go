package vfs

import (
	"os"
	"strings"
)

// BootIDer is a filesystem that can say which boot of the machine this is:
// the same id means the operating system kept running (its page cache with
// it) since the id was last read.
type BootIDer interface {
	BootID() string
}

// BootID returns fsys's boot id, or "" when it cannot tell (then nothing
// is trusted across a crash).
func BootID(fsys FS) string {
	if b, ok := fsys.(BootIDer); ok {
		return b.BootID()
	}
	return ""
}

// BootID is Linux's /proc/sys/kernel/random/boot_id, a random id drawn at
// every boot; "" elsewhere.
func (osFS) BootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
