// Package logdir owns a data directory: the partition logs under it (one
// directory per partition, named <topic>-<partition> as Kafka names them),
// the two checkpoint files, and the clean-shutdown marker.
//
//	<data dir>/
//	  .lock                        flock(2)ed by the process that has the directory open; holds its pid
//	  .strom-clean-shutdown        present only between a clean Close and the next Open
//	  .strom-boot                  the machine's boot id when the last start finished recovering
//	  recovery-point-checkpoint    per partition: offsets below are fsynced
//	  log-start-offset-checkpoint  per partition: the first readable offset
//	  <topic>-<partition>/         one partition log (see package seglog)
//
// Invariants:
//   - One process at a time: Open takes an exclusive lock on .lock before
//     it reads or writes anything else in the directory, and Close releases
//     it after its last write (the clean marker), so a second broker on the
//     same directory fails at once, naming the holder's pid, even while the
//     first is still shutting down. The kernel drops the lock when its
//     process dies, so a kill -9 leaves nothing stale behind.
//   - The marker is removed (and the removal made durable) when the
//     directory is opened, so a crash at any later moment is seen as unclean
//     on the next start, and the logs after their recovery points are
//     re-validated. With the marker, nothing is scanned: a clean start reads
//     no segment data. Without it, but in the same boot of the machine as
//     the previous process (.strom-boot, written by Recovered once a start
//     has recovered its logs), a kill -9 left every completed write in the
//     page cache, and recovery walks batch headers (a torn last batch is
//     cut) instead of checking every CRC (seglog.State.TrustCache). Another
//     boot id, or none, means a power loss or OS crash may have torn or
//     lost unsynced pages anywhere: every byte is validated. .strom-boot is
//     written in place, not through a temp file: a torn or stale one only
//     makes the next recovery the full one.
//   - Checkpoints are written atomically (package checkpoint) by Checkpoint,
//     periodically by Run, and on Close before the marker. What they say is
//     what a read of every open log's durable and start offsets would say;
//     a pass reads only the logs whose offsets moved, or that were opened
//     or deleted, since the last pass (seglog's OnCheckpointDue feeds the
//     set), and writes only when something changed, so an idle broker's
//     pass costs nothing per log. Run's flush.ms pass likewise visits only
//     the logs with records waiting for a flush.ms (OnFlushPending).
//   - The directory owns one bounded cache of sealed segments' descriptors
//     (package fdcache, Options.CachedFiles) shared by all its logs, so the
//     descriptors held are one per log plus the cache, whatever the number
//     of segments.
//   - CreateLogs never touches what a directory of a new log's name holds,
//     and makes the new directories durable (each one, then the data
//     directory once) before it returns.
//   - Every file Strom writes under the directory is written whole to a
//     "<name>.tmp", fsynced and renamed (checkpoints, the metadata store,
//     producer snapshots), so no .tmp file ever holds the only copy of
//     anything. Open removes the empty ones a crash leaves (and the logs'
//     probe files); a non-empty one is left in place and logged, and is
//     replaced by the next write of its file.
//   - Opening needs no free space: on a full disk logs open Degraded (see
//     package seglog) and checkpoint writes fail until space returns.
//   - Each log's Health change is logged once (not once per failed append),
//     and Unhealthy lists the partitions not Healthy. Run probes the
//     Degraded ones, so a partition nobody writes to turns Healthy again
//     once the disk has room.
//
// Concurrency: all methods are safe for concurrent use; Run is owned by the
// caller, which stops it by cancelling its context.
package logdir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stromhq/strom/internal/storage/checkpoint"
	"github.com/stromhq/strom/internal/storage/fdcache"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs"
)

const (
	lockFile           = ".lock"
	bootFile           = ".strom-boot"
	cleanMarker        = ".strom-clean-shutdown"
	recoveryCheckpoint = "recovery-point-checkpoint"
	startCheckpoint    = "log-start-offset-checkpoint"
)

// Partition names one partition.
type Partition = checkpoint.Partition

// Dir is an open data directory.
type Dir struct {
	fs     vfs.FS
	path   string
	logger *slog.Logger
	lock   io.Closer // the data dir's lock, released last by Close

	mu       sync.Mutex
	clean    bool // the previous shutdown was clean
	recovery map[Partition]int64
	starts   map[Partition]int64
	logs     map[Partition]*seglog.Log
	opening  map[Partition]chan struct{} // OpenLog calls in progress, closed when done
	// bootID is this boot's (vfs.BootID); sameBoot: the previous process
	// recovered and wrote in this same boot (.strom-boot), so after a kill
	// its writes are in the page cache (seglog.State.TrustCache).
	bootID   string
	sameBoot bool
	files    *fdcache.Cache // sealed segments' descriptors, shared by the logs
	workers  int            // logs closed at once
	closed   bool
	ckptMu   sync.Mutex // serializes checkpoint passes
	// Under ckptMu: what the checkpoint files say, or will say once
	// written (ckptStale: changed, or never written, since the last
	// successful write); ckptSpare is the dirty set a pass gives back.
	ckptStale           bool
	ckptRec, ckptStarts map[Partition]int64
	ckptSpare           map[Partition]struct{}
	// dmu guards dirty: the partitions whose log's offsets moved
	// (seglog's OnCheckpointDue), or whose log came or went, since the
	// last checkpoint pass took them. Taken in the logs' hooks: never
	// call a log with it held.
	dmu   sync.Mutex
	dirty map[Partition]struct{}
	// fmu guards flushing: the logs with records waiting for flush.ms
	// (seglog's OnFlushPending), each once. Taken in the logs' hooks.
	fmu                  sync.Mutex
	flushing, flushSpare []*seglog.Log

	// hmu guards the health view, updated by the logs' health hooks
	// (which may run with a log's append lock held: never call a log
	// with hmu held).
	hmu       sync.Mutex
	unhealthy map[Partition]PartitionHealth
	// deletedErrs keeps the storage error counts of deleted logs, so
	// that StorageErrors never goes backwards.
	deletedErrs map[string]int64

	cln cleanerRun // the log cleaner (cleaner.go)
}

// PartitionHealth is a partition whose log is not Healthy.
type PartitionHealth struct {
	Partition
	Health seglog.Health
	Err    error     // what made it so
	Since  time.Time // when it changed
}

// Options configure OpenWith.
type Options struct {
	Logger *slog.Logger // slog.Default() when nil
	// CachedFiles bounds how many sealed segments' files stay open for
	// reads, across all the directory's logs (default 1024).
	CachedFiles int
	// Workers is how many logs Close closes at once (default 16): closing
	// seals the active segment, fsyncs included, and concurrent fsyncs
	// share the filesystem's journal commits.
	Workers int
}

// Open opens the data directory at path, creating it if needed.
func Open(fsys vfs.FS, path string, logger *slog.Logger) (*Dir, error) {
	return OpenWith(fsys, path, Options{Logger: logger})
}

// OpenWith is Open with options.
func OpenWith(fsys vfs.FS, path string, opts Options) (*Dir, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := mkdirDurable(fsys, path); err != nil {
		return nil, fmt.Errorf("data dir %s: %w", path, err)
	}
	lock, err := fsys.Lock(filepath.Join(path, lockFile), []byte(fmt.Sprintf("pid %d\n", os.Getpid())))
	if err != nil {
		var held *vfs.LockedError
		if errors.As(err, &held) {
			return nil, &InUseError{Path: path, Holder: orUnknown(held.Holder)}
		}
		return nil, fmt.Errorf("data dir %s: lock: %w", path, err)
	}
	if opts.CachedFiles <= 0 {
		opts.CachedFiles = 1024
	}
	if opts.Workers <= 0 {
		opts.Workers = 16
	}
	d := &Dir{fs: fsys, path: path, logger: logger, lock: lock, logs: map[Partition]*seglog.Log{},
		unhealthy: map[Partition]PartitionHealth{}, deletedErrs: map[string]int64{},
		files: fdcache.New(fsys, opts.CachedFiles), workers: opts.Workers,
		ckptStale: true, ckptRec: map[Partition]int64{}, ckptStarts: map[Partition]int64{},
		ckptSpare: map[Partition]struct{}{}, dirty: map[Partition]struct{}{}}
	ok := false
	defer func() {
		if !ok {
			lock.Close()
		}
	}()
	if _, err := fsys.Stat(filepath.Join(path, cleanMarker)); err == nil {
		d.clean = true
	}
	d.recovery, err = checkpoint.Read(fsys, filepath.Join(path, recoveryCheckpoint))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			logger.Warn("recovery checkpoint unreadable; recovering every log from its start", "err", err)
		}
		d.recovery = map[Partition]int64{}
		d.clean = false
	}
	d.starts, err = checkpoint.Read(fsys, filepath.Join(path, startCheckpoint))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			logger.Warn("log start offset checkpoint unreadable; using segment bases", "err", err)
		}
		d.starts = map[Partition]int64{}
	}
	if d.clean {
		if err := fsys.Remove(filepath.Join(path, cleanMarker)); err != nil {
			return nil, fmt.Errorf("data dir %s: remove clean marker: %w", path, err)
		}
		if err := fsys.SyncDir(path); err != nil {
			return nil, fmt.Errorf("data dir %s: sync: %w", path, err)
		}
	}
	if d.bootID = vfs.BootID(fsys); d.bootID != "" && !d.clean {
		d.sameBoot = readBootFile(fsys, filepath.Join(path, bootFile)) == d.bootID
	}
	d.removeTempFiles()
	ok = true
	return d, nil
}

// readBootFile returns the boot id Recovered wrote, or "".
func readBootFile(fsys vfs.FS, name string) string {
	f, err := fsys.Open(name)
	if err != nil {
		return ""
	}
	defer f.Close()
	var b [64]byte
	n, _ := f.ReadAt(b[:], 0)
	return strings.TrimSpace(string(b[:n]))
}

// Recovered says the logs the caller opened at start are recovered: it
// records this boot's id in .strom-boot, so that after a kill -9 the next
// start knows the page cache still holds what this process writes (see
// seglog.State.TrustCache) and walks batch headers instead of validating
// every byte. Written only now, so that data of an earlier boot that this
// start had to validate is never trusted by a start that follows a crash
// during that validation. Best effort: a file that is missing or stale
// only makes the next recovery the full one.
func (d *Dir) Recovered() {
	if d.bootID == "" {
		return
	}
	f, err := d.fs.Create(filepath.Join(d.path, bootFile))
	if err != nil {
		d.logger.Warn("cannot record the boot id; the next recovery after a crash validates every byte", "err", err)
		return
	}
	if _, err := f.Write([]byte(d.bootID + "\n")); err != nil {
		d.logger.Warn("cannot record the boot id; the next recovery after a crash validates every byte", "err", err)
	}
	f.Close()
}

// removeTempFiles removes the empty "*.tmp" files (and log probe files) a
// crash left in the data directory and the partition directories. Removals
// need no free space; they are not made durable (a removal lost to a power
// cut is redone at the next start).
func (d *Dir) removeTempFiles() {
	dirs := []string{d.path}
	if names, err := d.fs.List(d.path); err == nil {
		for _, n := range names {
			if _, ok := ParsePartitionDir(n); ok {
				dirs = append(dirs, filepath.Join(d.path, n))
			}
		}
	}
	removed := 0
	for _, dir := range dirs {
		names, err := d.fs.List(dir)
		if err != nil {
			continue // not a directory, or unreadable: Open will say
		}
		for _, n := range names {
			if !strings.HasSuffix(n, ".tmp") {
				continue
			}
			p := filepath.Join(dir, n)
			fi, err := d.fs.Stat(p)
			if err != nil || fi.IsDir() {
				continue
			}
			if fi.Size() != 0 && n != seglog.ProbeFile {
				d.logger.Warn("leaving a non-empty temporary file; the next write of its file replaces it", "file", p, "bytes", fi.Size())
				continue
			}
			if err := d.fs.Remove(p); err != nil {
				d.logger.Warn("cannot remove a leftover temporary file", "file", p, "err", err)
				continue
			}
			removed++
		}
	}
	if removed > 0 {
		d.logger.Info("removed leftover temporary files", "files", removed)
	}
}

// ErrInUse is what Open's *InUseError wraps: another process holds the
// directory.
var ErrInUse = errors.New("data dir in use")

// InUseError says which process holds a data directory.
type InUseError struct {
	Path   string
	Holder string // "pid N" as the holder wrote it, or "pid unknown"
}

func (e *InUseError) Error() string {
	return fmt.Sprintf("data dir %s is in use by another Strom process (%s); stop it first or choose another data dir", e.Path, e.Holder)
}

// Unwrap makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Unwrap() error { return ErrInUse }

func orUnknown(holder string) string {
	if holder == "" {
		return "pid unknown"
	}
	return holder
}

// mkdirDurable creates path and every missing parent, and makes each new
// entry durable by syncing the directory that holds it: a data directory
// whose own parent was created but never synced is lost, with every
// acknowledged record in it, by a power failure.
func mkdirDurable(fsys vfs.FS, path string) error {
	path = filepath.Clean(path)
	var missing []string // path first, then its missing parents
	for p := path; ; p = filepath.Dir(p) {
		if _, err := fsys.Stat(p); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		missing = append(missing, p)
		if filepath.Dir(p) == p {
			break
		}
	}
	if len(missing) == 0 {
		return nil
	}
	if err := fsys.MkdirAll(path); err != nil {
		return err
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := fsys.SyncDir(filepath.Dir(missing[i])); err != nil {
			return fmt.Errorf("sync %s: %w", filepath.Dir(missing[i]), err)
		}
	}
	return nil
}

// Path returns the directory's path.
func (d *Dir) Path() string { return d.path }

// WasClean reports whether the previous process shut down cleanly.
func (d *Dir) WasClean() bool { return d.clean }

// PartitionDir returns the directory of a partition's log.
func (d *Dir) PartitionDir(p Partition) string {
	return filepath.Join(d.path, p.Topic+"-"+strconv.Itoa(int(p.Partition)))
}

// ParsePartitionDir splits a directory name "<topic>-<n>".
func ParsePartitionDir(name string) (Partition, bool) {
	i := strings.LastIndexByte(name, '-')
	if i <= 0 || i == len(name)-1 {
		return Partition{}, false
	}
	n, err := strconv.ParseInt(name[i+1:], 10, 32)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != name[i+1:] {
		return Partition{}, false
	}
	return Partition{Topic: name[:i], Partition: int32(n)}, true
}

// Existing lists the partitions that have a directory on disk.
//
// The metadata quorum's directory (ClusterMetadataDir) is not a partition
// of a topic and is never listed.
func (d *Dir) Existing() ([]Partition, error) {
	names, err := d.fs.List(d.path)
	if err != nil {
		return nil, fmt.Errorf("data dir %s: %w", d.path, err)
	}
	var out []Partition
	for _, n := range names {
		if fi, err := d.fs.Stat(filepath.Join(d.path, n)); err != nil || !fi.IsDir() {
			continue
		}
		if n == ClusterMetadataDir {
			continue
		}
		if p, ok := ParsePartitionDir(n); ok {
			out = append(out, p)
		}
	}
	return out, nil
}

// ClusterMetadataDir is the directory of a cluster node's metadata log
// (the quorum's raft group, as KRaft's __cluster_metadata-0): in the data
// directory, but no topic's.
const ClusterMetadataDir = "__cluster_metadata-0"

// OpenLog opens (creating if needed) the log of p with cfg. Logs open
// concurrently (recovery after a crash re-validates data, and logs recover
// independently); two calls for the same p share one open.
func (d *Dir) OpenLog(p Partition, cfg seglog.Config) (*seglog.Log, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, seglog.ErrClosed
		}
		if l, ok := d.logs[p]; ok {
			d.mu.Unlock()
			return l, nil
		}
		if ch, ok := d.opening[p]; ok {
			d.mu.Unlock()
			<-ch
			continue
		}
		ch := make(chan struct{})
		if d.opening == nil {
			d.opening = map[Partition]chan struct{}{}
		}
		d.opening[p] = ch
		rp, ok := d.recovery[p]
		st := seglog.State{RecoveryPoint: rp, LogStartOffset: d.starts[p], Clean: d.clean && ok, TrustCache: d.sameBoot}
		cfg.Files = d.files
		d.mu.Unlock()

		l, err := seglog.Open(d.fs, d.PartitionDir(p), cfg, st)

		d.mu.Lock()
		delete(d.opening, p)
		close(ch)
		if err == nil && d.closed {
			l.Close()
			err = seglog.ErrClosed
		}
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		d.addLogLocked(p, l)
		if h, err := l.Health(); h != seglog.Healthy {
			d.healthChanged(p, h, err)
		}
		d.mu.Unlock()
		d.watchFlush(l)
		return l, nil
	}
}

// CreateLogs creates new, empty logs for ps (cfgs[i] for ps[i], with
// topic id ids[i] in partition.metadata), workers at a time: each new
// directory is synced by its own worker, and concurrent syncs share the
// filesystem's journal commits, while the data directory is synced once
// at the end. A directory already there is not touched: that partition
// fails with fs.ErrExist (the caller removes or sets aside leftovers
// first). It returns each log, or why it could not be created; a log
// returned is open and in the directory (DeleteLogs removes it). The
// caller makes sure that nobody else opens ps meanwhile. The goroutines
// end before it returns.
func (d *Dir) CreateLogs(ps []Partition, cfgs []seglog.Config, ids [][16]byte, workers int) ([]*seglog.Log, []error) {
	logs := make([]*seglog.Log, len(ps))
	errs := make([]error, len(ps))
	d.mu.Lock()
	closed := d.closed
	for i, p := range ps {
		if _, ok := d.logs[p]; ok {
			errs[i] = fmt.Errorf("data dir %s: create %s: %w", d.path, d.PartitionDir(p), fs.ErrExist)
		}
	}
	d.mu.Unlock()
	if closed {
		for i := range errs {
			errs[i] = seglog.ErrClosed
		}
		return logs, errs
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range max(min(workers, len(ps)), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				dir := d.PartitionDir(ps[i])
				if _, err := d.fs.Stat(dir); err == nil {
					errs[i] = fmt.Errorf("data dir %s: create %s: %w", d.path, dir, fs.ErrExist)
					continue
				}
				cfg := cfgs[i]
				cfg.Files = d.files
				if logs[i], errs[i] = seglog.Create(d.fs, dir, cfg); errs[i] != nil {
					continue
				}
				if err := d.MarkTopicID(ps[i], ids[i]); err != nil {
					// A hint for later starts, not data (see MarkTopicID).
					d.logger.Warn("cannot write the partition's topic id", "partition", dir, "err", err)
				}
			}
		}()
	}
	for i := range ps {
		if errs[i] == nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()
	var syncErr error
	if err := d.fs.SyncDir(d.path); err != nil {
		syncErr = fmt.Errorf("data dir %s: sync: %w", d.path, err)
	}
	d.mu.Lock()
	for i, p := range ps {
		if logs[i] == nil {
			continue
		}
		if syncErr != nil && errs[i] == nil {
			errs[i] = syncErr
		}
		delete(d.recovery, p)
		delete(d.starts, p)
		d.addLogLocked(p, logs[i]) // DeleteLogs finds it there
	}
	d.mu.Unlock()
	for _, l := range logs {
		if l != nil {
			d.watchFlush(l)
		}
	}
	return logs, errs
}

// addLogLocked makes l the open log of p, watched by the checkpoint
// pass (from its offsets now) and the health view; d.mu must be held.
func (d *Dir) addLogLocked(p Partition, l *seglog.Log) {
	d.logs[p] = l
	l.OnHealthChange(func(h seglog.Health, err error) { d.healthChanged(p, h, err) })
	// The hook first, then the mark: a move before the hook is set is
	// read by the pass that takes the mark.
	l.OnCheckpointDue(func() { d.markDirty(p) })
	d.markDirty(p)
}

// markDirty puts p in the next checkpoint pass.
func (d *Dir) markDirty(p Partition) {
	d.dmu.Lock()
	d.dirty[p] = struct{}{}
	d.dmu.Unlock()
}

// watchFlush puts l in the flush pass whenever records wait for its
// flush.ms (seglog's OnFlushPending calls at once when some already do).
// Not under d.mu: it takes the log's append lock.
func (d *Dir) watchFlush(l *seglog.Log) {
	l.OnFlushPending(func() {
		d.fmu.Lock()
		d.flushing = append(d.flushing, l)
		d.fmu.Unlock()
	})
}

// CachedFiles reports the sealed-segment descriptor cache's counters.
func (d *Dir) CachedFiles() fdcache.Stats { return d.files.Stats() }

// healthChanged records and logs one change of a log's health.
func (d *Dir) healthChanged(p Partition, h seglog.Health, err error) {
	d.hmu.Lock()
	if h == seglog.Healthy {
		delete(d.unhealthy, p)
	} else {
		d.unhealthy[p] = PartitionHealth{Partition: p, Health: h, Err: err, Since: time.Now()}
	}
	d.hmu.Unlock()
	name := p.Topic + "-" + strconv.Itoa(int(p.Partition))
	switch h {
	case seglog.Healthy:
		d.logger.Info("partition storage writable again", "partition", name)
	case seglog.Degraded:
		d.logger.Warn("partition storage degraded: writes fail and are retried, reads are served",
			"partition", name, "kind", seglog.ErrorKind(err), "err", err)
	case seglog.Failed:
		d.logger.Error("partition storage failed: writes refused until the broker restarts and recovers the log, reads are served",
			"partition", name, "kind", seglog.ErrorKind(err), "err", err)
	}
}

// Unhealthy returns the partitions whose logs are not Healthy, sorted.
func (d *Dir) Unhealthy() []PartitionHealth {
	d.hmu.Lock()
	out := make([]PartitionHealth, 0, len(d.unhealthy))
	for _, ph := range d.unhealthy {
		out = append(out, ph)
	}
	d.hmu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition.Partition < out[j].Partition.Partition
	})
	return out
}

// StorageErrors returns the storage errors met by the directory's logs
// since it was opened, by seglog.ErrorKind (deleted logs included).
func (d *Dir) StorageErrors() map[string]int64 {
	logs := d.openLogs()
	d.hmu.Lock()
	out := make(map[string]int64, len(d.deletedErrs))
	for k, n := range d.deletedErrs {
		out[k] += n
	}
	d.hmu.Unlock()
	for _, l := range logs {
		for k, n := range l.StorageErrors() {
			out[k] += n
		}
	}
	return out
}

// Log returns an open log, if any.
func (d *Dir) Log(p Partition) (*seglog.Log, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.logs[p]
	return l, ok
}

// DeleteLog closes a partition's log and removes its directory.
func (d *Dir) DeleteLog(p Partition) error {
	return d.DeleteLogs([]Partition{p})
}

// DeleteLogs closes partitions' logs and removes their directories, then
// syncs the data directory once. The first error is returned; the others
// are still tried.
func (d *Dir) DeleteLogs(ps []Partition) error {
	d.mu.Lock()
	logs := make([]*seglog.Log, len(ps))
	for i, p := range ps {
		logs[i] = d.logs[p]
		delete(d.logs, p)
		delete(d.recovery, p)
		delete(d.starts, p)
		d.markDirty(p) // the pass drops it from the checkpoints
	}
	d.mu.Unlock()
	// Every log's descriptors are given back before any directory is
	// removed: a removal needs a descriptor, and deleting a creation that
	// ran out of them one log at a time failed at the first (EMFILE), the
	// one descriptor each close frees taken at once by waiting accepts.
	for i, p := range ps {
		if l := logs[i]; l != nil {
			errs := l.StorageErrors()
			d.hmu.Lock()
			for k, n := range errs {
				d.deletedErrs[k] += n
			}
			delete(d.unhealthy, p)
			d.hmu.Unlock()
			l.Release()
		}
	}
	var first error
	for i, p := range ps {
		var err error
		if l := logs[i]; l != nil {
			err = l.Delete()
		} else if rerr := d.fs.RemoveAll(d.PartitionDir(p)); rerr != nil {
			err = fmt.Errorf("data dir %s: %w", d.path, rerr)
		}
		if err != nil && first == nil {
			first = err
		}
	}
	if err := d.fs.SyncDir(d.path); err != nil && first == nil {
		first = err
	}
	return first
}

// Checkpoint writes both checkpoint files from the open logs: each log's
// durable offset (its recovery point) and start offset. The files are
// rewritten whole, and only when one of them changed; the pass reads only
// the logs whose offsets moved, or that were opened or deleted, since the
// last one (the dirty set, fed by seglog's OnCheckpointDue), so that an
// idle broker's pass every second costs nothing per log. What it writes is
// what a read of every open log would give.
func (d *Dir) Checkpoint() error {
	d.ckptMu.Lock()
	defer d.ckptMu.Unlock()
	d.dmu.Lock()
	taken := d.dirty
	d.dirty, d.ckptSpare = d.ckptSpare, nil
	d.dmu.Unlock()
	if len(taken) > 0 {
		d.mu.Lock()
		for p := range taken {
			l, ok := d.logs[p]
			if !ok {
				if _, had := d.ckptRec[p]; had {
					delete(d.ckptRec, p)
					delete(d.ckptStarts, p)
					d.ckptStale = true
				}
				continue
			}
			rec, start := l.CheckpointOffsets()
			if r, had := d.ckptRec[p]; !had || r != rec || d.ckptStarts[p] != start {
				d.ckptRec[p], d.ckptStarts[p] = rec, start
				d.ckptStale = true
			}
		}
		d.mu.Unlock()
	}
	clear(taken)
	d.ckptSpare = taken
	// Unchanged since the last write: nothing to do (an idle broker
	// should not fsync for nothing).
	if !d.ckptStale {
		return nil
	}
	if err := checkpoint.Write(d.fs, filepath.Join(d.path, recoveryCheckpoint), d.ckptRec); err != nil {
		return err
	}
	if err := checkpoint.Write(d.fs, filepath.Join(d.path, startCheckpoint), d.ckptStarts); err != nil {
		return err
	}
	d.ckptStale = false
	return nil
}

// Intervals for Run; zero values take Kafka's defaults.
type Intervals struct {
	Checkpoint time.Duration // log.flush.offset.checkpoint.interval.ms (Strom: 1 s)
	Retention  time.Duration // log.retention.check.interval.ms (5 min)
	Flush      time.Duration // how often flush.ms is checked (1 s)
	Probe      time.Duration // how often Degraded logs are probed (5 s)
}

// Run does the directory's periodic work until ctx is done: checkpoints,
// retention, and flush.ms. now is the clock.
func (d *Dir) Run(ctx context.Context, iv Intervals, now func() time.Time) {
	if iv.Checkpoint <= 0 {
		iv.Checkpoint = time.Minute
	}
	if iv.Retention <= 0 {
		iv.Retention = 5 * time.Minute
	}
	if iv.Flush <= 0 {
		iv.Flush = time.Second
	}
	if iv.Probe <= 0 {
		iv.Probe = 5 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	ck := time.NewTicker(iv.Checkpoint)
	rt := time.NewTicker(iv.Retention)
	fl := time.NewTicker(iv.Flush)
	pr := time.NewTicker(iv.Probe)
	defer ck.Stop()
	defer rt.Stop()
	defer fl.Stop()
	defer pr.Stop()
	ckptFailing := false // log the first failure and the recovery only
	for {
		select {
		case <-ctx.Done():
			return
		case <-ck.C:
			err := d.Checkpoint()
			if err != nil && !ckptFailing {
				d.logger.Error("checkpoint failed; retrying every interval", "kind", seglog.ErrorKind(err), "err", err)
			} else if err == nil && ckptFailing {
				d.logger.Info("checkpoint written again")
			}
			ckptFailing = err != nil
		case <-rt.C:
			d.ApplyRetention(now())
		case <-fl.C:
			d.flushDue(now())
		case <-pr.C:
			d.ProbeDegraded()
		}
	}
}

// flushDue applies flush.ms: it flushes the logs whose unflushed data is
// due. It visits only the logs with records waiting for a flush.ms (fed
// by seglog's OnFlushPending) and keeps those that still have some. Run
// calls it every Intervals.Flush; one pass at a time.
func (d *Dir) flushDue(now time.Time) {
	d.fmu.Lock()
	visit := d.flushing
	d.flushing, d.flushSpare = d.flushSpare[:0], nil
	d.fmu.Unlock()
	keep := visit[:0] // the logs kept, in place
	for _, l := range visit {
		again, err := l.FlushPending(now)
		// Storage errors are logged once, as health changes.
		if err != nil && !errors.Is(err, seglog.ErrClosed) && !errors.Is(err, seglog.ErrStorage) && !errors.Is(err, seglog.ErrFailed) {
			d.logger.Error("flush failed", "dir", l.Dir(), "err", err)
		}
		if again {
			keep = append(keep, l)
		}
	}
	clear(visit[len(keep):]) // the logs dropped may be deleted: not kept alive
	d.fmu.Lock()
	d.flushing = append(d.flushing, keep...)
	clear(keep)
	d.flushSpare = keep[:0]
	d.fmu.Unlock()
}

// ProbeDegraded probes every Degraded log (seglog.Probe): those that can
// write again turn Healthy. Run calls it periodically.
func (d *Dir) ProbeDegraded() {
	for _, ph := range d.Unhealthy() {
		if ph.Health != seglog.Degraded {
			continue
		}
		if l, ok := d.Log(ph.Partition); ok {
			_ = l.Probe() // a failure leaves it Degraded: nothing new to say
		}
	}
}

// ApplyRetention runs retention on every open log.
func (d *Dir) ApplyRetention(now time.Time) {
	for _, l := range d.openLogs() {
		res, err := l.ApplyRetention(now)
		if err != nil && !errors.Is(err, seglog.ErrClosed) {
			d.logger.Error("retention failed", "dir", l.Dir(), "err", err)
		}
		if res.Segments > 0 {
			d.logger.Info("retention deleted segments", "dir", l.Dir(), "segments", res.Segments, "bytes", res.Bytes)
		}
	}
}

func (d *Dir) openLogs() []*seglog.Log {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]*seglog.Log, 0, len(d.logs))
	for _, l := range d.logs {
		out = append(out, l)
	}
	return out
}

// Close closes every log, writes the checkpoints and, when all of that
// succeeded, the clean-shutdown marker; then, whatever happened, it
// releases the directory's lock.
func (d *Dir) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.stopCleaner()
	err := d.close()
	if lerr := d.lock.Close(); err == nil && lerr != nil {
		err = fmt.Errorf("data dir %s: unlock: %w", d.path, lerr)
	}
	return err
}

func (d *Dir) close() error {
	d.mu.Lock()
	logs := make([]*seglog.Log, 0, len(d.logs))
	for _, l := range d.logs {
		logs = append(logs, l)
	}
	d.mu.Unlock()
	first := closeLogs(logs, d.workers)
	d.files.Close()
	if err := d.Checkpoint(); err != nil && first == nil {
		first = err
	}
	if first != nil {
		return first
	}
	f, err := d.fs.Create(filepath.Join(d.path, cleanMarker))
	if err != nil {
		return fmt.Errorf("data dir %s: clean marker: %w", d.path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("data dir %s: clean marker: %w", d.path, err)
	}
	f.Close()
	return d.fs.SyncDir(d.path)
}

// closeLogs closes logs, workers at a time, and returns the first error.
// The goroutines end before it returns.
func closeLogs(logs []*seglog.Log, workers int) error {
	next := make(chan *seglog.Log)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	for range max(min(workers, len(logs)), 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range next {
				if err := l.Close(); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		}()
	}
	for _, l := range logs {
		next <- l
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		return err
	default:
		return nil
	}
}
