//go:build unix

package broker

import (
	"math"
	"syscall"
)

// openFileLimit returns the process's soft open-file limit (RLIMIT_NOFILE):
// the budget every partition, connection and cached segment file comes out
// of. Go's runtime has already raised it to the hard limit when the
// process started (since Go 1.19), so nothing is raised here. 0 means
// unlimited.
func openFileLimit() (int64, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, err
	}
	if r.Cur >= math.MaxInt64 { // RLIM_INFINITY
		return 0, nil
	}
	return int64(r.Cur), nil
}
