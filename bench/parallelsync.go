package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stromhq/strom/internal/storage/vfs"
)

// parallelSync is the acks=all limit measured the way Strom writes
// (issue 24): one file per partition, written at once, each by an
// appender that writes the largest batch a producer sends
// (produceBatchMaxBytes) back to back and a syncer that fdatasyncs
// whatever was appended while its previous fdatasync ran (group commit: an
// append never waits for a sync, a sync covers every append before it).
// Bytes count once a completed fdatasync covers them. A broker doing the
// same plus a protocol and validation cannot be faster, so a ratio against
// it is at most 1 and says how close the broker comes.
type parallelSync struct {
	Files, Batch int
	Bytes        int64
	Syncs        int64
	Elapsed      time.Duration // first append to the last sync covering the last append
}

func (p parallelSync) BytesPerSec() float64 { return float64(p.Bytes) / p.Elapsed.Seconds() }

// measureParallelSync writes total bytes spread over files files in dir, in
// appends of batch bytes, with a group-commit syncer per file.
func measureParallelSync(dir string, files, batch int, total int64) (parallelSync, error) {
	per := max(int64(batch), total/int64(files))
	buf := pseudoRandom(batch, 4)
	res := parallelSync{Files: files, Batch: batch}
	var syncs, synced atomic.Int64
	errs := make([]error, files)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range files {
		wg.Go(func() {
			path := filepath.Join(dir, fmt.Sprintf("strombench-parallel-sync-%d", i))
			f, err := vfs.Default.Create(path)
			if err != nil {
				errs[i] = err
				return
			}
			n, s, err := appendWithGroupSync(f, buf, per)
			syncs.Add(s)
			synced.Add(n)
			errs[i] = errors.Join(err, f.Close(), os.Remove(path))
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.Bytes, res.Syncs = synced.Load(), syncs.Load()
	return res, errors.Join(errs...)
}

// appendWithGroupSync appends buf to f until n bytes are written, while
// another goroutine fdatasyncs f as often as it can; it returns once a
// sync covers every byte, with the bytes synced and the syncs made.
func appendWithGroupSync(f vfs.File, buf []byte, n int64) (synced, syncs int64, err error) {
	var written atomic.Int64
	wake := make(chan struct{}, 1)
	done := make(chan struct{})
	var werr error
	go func() { // the appender: owned by this call, ends at n bytes or an error
		defer close(done)
		for written.Load() < n {
			k, err := f.Write(buf)
			written.Add(int64(k))
			if err != nil {
				werr = err
				return
			}
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}()
	finished := false
	for {
		w := written.Load()
		if w == synced {
			if finished {
				return synced, syncs, werr
			}
			select {
			case <-wake:
			case <-done:
				finished = true
			}
			continue
		}
		if err := f.Sync(); err != nil {
			<-done
			return synced, syncs, errors.Join(err, werr)
		}
		synced, syncs = w, syncs+1
	}
}
