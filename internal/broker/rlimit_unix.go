//go:build unix

package broker

import (
	"math"
	"sync"
	"syscall"
)

var fileLimit struct {
	once  sync.Once
	limit int64
	err   error
}

// raiseFileLimit raises the process's soft open-file limit (RLIMIT_NOFILE)
// to its hard limit, once per process, and returns the soft limit then in
// force: the budget every partition, connection and cached segment file
// comes out of. 0 means unlimited or unknown.
func raiseFileLimit() (int64, error) {
	fileLimit.once.Do(func() {
		var r syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			fileLimit.err = err
			return
		}
		if r.Cur < r.Max {
			want := r
			want.Cur = r.Max
			// Some systems refuse more than a fixed maximum (macOS's
			// OPEN_MAX): keep the soft limit then.
			if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err == nil {
				r = want
			}
		}
		if r.Cur >= math.MaxInt64 { // RLIM_INFINITY
			return
		}
		fileLimit.limit = int64(r.Cur)
	})
	return fileLimit.limit, fileLimit.err
}
