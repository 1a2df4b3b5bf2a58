package seglog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// switchFS fails the operations its predicate picks while it is on: a disk
// that fills up and is freed again, or a process that runs out of file
// descriptors for a while.
type switchFS struct {
	on   atomic.Bool
	fail func(op errorfs.Op, name string) error
}

func (s *switchFS) MaybeError(op errorfs.Op, name string) error {
	if !s.on.Load() {
		return nil
	}
	return s.fail(op, name)
}

// healthLog records the log's health changes, as the log directory's
// logger would see them.
type healthLog struct {
	mu      sync.Mutex
	changes []string
}

func (h *healthLog) hook(s Health, err error) {
	h.mu.Lock()
	h.changes = append(h.changes, s.String())
	h.mu.Unlock()
}

func (h *healthLog) String() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return strings.Join(h.changes, ",")
}

// fullDisk fails every write with ENOSPC after storing part of it, and the
// creation of files: what a filesystem with no free block does.
func fullDisk(op errorfs.Op, name string) error {
	switch op {
	case errorfs.OpWrite:
		return &errorfs.PartialWrite{N: 7}
	case errorfs.OpCreate:
		return syscall.ENOSPC
	}
	return nil
}

// TestRollFailureIsTransient: a segment roll that fails for a reason other
// than a failed fsync of the data (an index file that cannot be opened or
// written, a new segment that cannot be created, a directory sync) fails
// that append with ErrStorage, leaves what was acknowledged intact, and the
// next append redoes the roll. Before, the first of these made the log
// refuse every write until a restart (ErrFailed), and the others came back
// as unclassified errors (UNKNOWN_SERVER_ERROR to producers).
func TestRollFailureIsTransient(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   errorfs.Op
		file string // a substring of the failing path
		err  error
	}{
		{"seal: index open EMFILE", errorfs.OpOpen, ".index", syscall.EMFILE},
		{"seal: time index write ENOSPC", errorfs.OpWrite, ".timeindex", &errorfs.PartialWrite{N: 3}},
		{"new segment create EMFILE", errorfs.OpCreate, ".log", syscall.EMFILE},
		{"new segment create EPERM", errorfs.OpCreate, ".log", syscall.EPERM},
		{"stale index remove EPERM", errorfs.OpRemove, ".index", syscall.EPERM},
		{"directory sync EIO", errorfs.OpSyncDir, "/d", syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sw := &switchFS{fail: func(op errorfs.Op, name string) error {
				if op == tc.op && strings.Contains(name, tc.file) {
					return tc.err
				}
				return nil
			}}
			mem := memfs.New()
			fsys := errorfs.Wrap(mem, sw)
			l := openLog(t, fsys, "/d", Config{SegmentBytes: 1}, State{})
			var hl healthLog
			l.OnHealthChange(hl.hook)
			if _, err := l.Append(batch(t, "a", 2, 1), AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := l.WaitDurable(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			sw.on.Store(true)
			for i := 0; i < 3; i++ {
				_, err := l.Append(batch(t, "b", 2, 1), AppendOptions{})
				if !errors.Is(err, ErrStorage) || errors.Is(err, ErrFailed) {
					t.Fatalf("append %d during the fault: %v, want ErrStorage", i, err)
				}
			}
			if h, err := l.Health(); h != Degraded || err == nil {
				t.Fatalf("health %v (%v) during the fault, want degraded", h, err)
			}
			if l.EndOffset() != 2 {
				t.Fatalf("end %d after failed appends, want 2", l.EndOffset())
			}
			// The acknowledged records are still readable.
			if got := readAll(t, l); fmt.Sprint(got) != fmt.Sprint(map[int64]string{0: "a-0", 1: "a-1"}) {
				t.Fatalf("during the fault: %v", got)
			}
			sw.on.Store(false)
			res, err := l.Append(batch(t, "c", 2, 1), AppendOptions{})
			if err != nil || res.FirstOffset != 2 {
				t.Fatalf("append after the fault: %+v %v", res, err)
			}
			if err := l.WaitDurable(context.Background(), 3); err != nil {
				t.Fatal(err)
			}
			if h, _ := l.Health(); h != Healthy {
				t.Fatalf("health %v after a good append", h)
			}
			if got, want := hl.String(), "degraded,ok"; got != want {
				t.Fatalf("health changes %q, want %q (one per change, not per append)", got, want)
			}
			if n := l.StorageErrors()[ErrorKind(tc.err)]; n != 3 {
				t.Fatalf("storage errors %v, want 3 of %s", l.StorageErrors(), ErrorKind(tc.err))
			}
			want := map[int64]string{0: "a-0", 1: "a-1", 2: "c-0", 3: "c-1"}
			if got := readAll(t, l); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got %v, want %v", got, want)
			}
			if l.NumSegments() != 2 {
				t.Fatalf("%d segments, want 2 (the roll redone once)", l.NumSegments())
			}
			// The files agree: both a clean reopen and a recovery after
			// a process death find the same records.
			dead := mem.Snapshot()
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			for _, reopen := range []struct {
				fs vfs.FS
				st State
			}{{mem, State{Clean: true, RecoveryPoint: 4}}, {dead, State{}}} {
				l2 := openLog(t, reopen.fs, "/d", Config{SegmentBytes: 1}, reopen.st)
				if got := readAll(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("reopened (clean %v): got %v, want %v", reopen.st.Clean, got, want)
				}
				l2.Close()
			}
		})
	}
}

// TestFsyncFailureIsSticky: a failed fsync of the data stays fatal for the
// log (the kernel may have dropped the pages), unlike everything above.
func TestFsyncFailureIsSticky(t *testing.T) {
	for _, during := range []string{"wait durable", "roll"} {
		t.Run(during, func(t *testing.T) {
			sw := &switchFS{fail: func(op errorfs.Op, name string) error {
				if op == errorfs.OpSync && strings.HasSuffix(name, ".log") {
					return syscall.EIO
				}
				return nil
			}}
			l := openLog(t, errorfs.Wrap(memfs.New(), sw), "/d", Config{SegmentBytes: 1}, State{})
			defer l.Close()
			var hl healthLog
			l.OnHealthChange(hl.hook)
			if _, err := l.Append(batch(t, "a", 2, 1), AppendOptions{}); err != nil {
				t.Fatal(err)
			}
			sw.on.Store(true)
			var err error
			if during == "roll" {
				_, err = l.Append(batch(t, "b", 2, 1), AppendOptions{})
			} else {
				err = l.WaitDurable(context.Background(), 1)
			}
			if !errors.Is(err, ErrFailed) {
				t.Fatalf("%s with a failed fsync: %v, want ErrFailed", during, err)
			}
			sw.on.Store(false)
			if _, err := l.Append(batch(t, "c", 2, 1), AppendOptions{}); !errors.Is(err, ErrFailed) {
				t.Fatalf("append after a failed fsync: %v, want ErrFailed", err)
			}
			if err := l.Probe(); err != nil {
				t.Fatal(err)
			}
			if h, _ := l.Health(); h != Failed || hl.String() != "failed" {
				t.Fatalf("health %v, changes %q; want failed", h, hl.String())
			}
			if got := readAll(t, l); len(got) != 2 {
				t.Fatalf("reads of a failed log: %v", got)
			}
		})
	}
}

// TestOpenOnFullDisk: after a process death on a full disk, recovery must
// not need to write to start. Before, rewriting the index files failed the
// log's Open, so the broker could not start at all. Now the log opens
// Degraded, serves reads from in-memory indexes, refuses appends with
// ErrStorage, and takes them again once space returns (Probe or append).
func TestOpenOnFullDisk(t *testing.T) {
	mem := memfs.New()
	cfg := Config{SegmentBytes: 1, IndexIntervalBytes: 1}
	l := openLog(t, mem, "/d", cfg, State{})
	want := map[int64]string{}
	for i := 0; i < 6; i++ {
		tag := fmt.Sprintf("r%d", i)
		res, err := l.Append(batch(t, tag, 2, 1), AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want[res.FirstOffset], want[res.FirstOffset+1] = tag+"-0", tag+"-1"
	}
	if err := l.WaitDurable(context.Background(), l.EndOffset()-1); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() < 3 {
		t.Fatalf("%d segments, want several", l.NumSegments())
	}
	dead := mem.Snapshot() // kill -9: no Close, no checkpoint
	l.Close()

	sw := &switchFS{fail: fullDisk}
	sw.on.Store(true)
	l2, err := Open(errorfs.Wrap(dead, sw), "/d", cfg, State{})
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	defer l2.Close()
	if h, err := l2.Health(); h != Degraded || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("health %v (%v), want degraded by ENOSPC", h, err)
	}
	// The sealed segments' index files, half written, are gone: a clean
	// start would trust a partial one (a time index short of its last
	// entry makes a segment look older to retention).
	names, _ := dead.List("/d")
	active := fmt.Sprintf("%020d.", 10) // the last segment's base
	sealedIndexes := 0
	for _, n := range names {
		if strings.HasSuffix(n, "index") && !strings.HasPrefix(n, active) {
			sealedIndexes++
		}
	}
	if sealedIndexes != 0 {
		t.Fatalf("%d index files of sealed segments left after failed writes: %v", sealedIndexes, names)
	}
	if got := readAll(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("reads on a full disk: got %v, want %v", got, want)
	}
	if _, err := l2.Append(batch(t, "x", 1, 1), AppendOptions{}); !errors.Is(err, ErrStorage) {
		t.Fatalf("append on a full disk: %v, want ErrStorage", err)
	}
	if err := l2.Probe(); err == nil {
		t.Fatal("probe succeeded on a full disk")
	}
	sw.on.Store(false)
	if err := l2.Probe(); err != nil {
		t.Fatalf("probe after space returned: %v", err)
	}
	if h, _ := l2.Health(); h != Healthy {
		t.Fatalf("health %v after a good probe", h)
	}
	res, err := l2.Append(batch(t, "y", 1, 1), AppendOptions{})
	if err != nil || res.FirstOffset != 12 {
		t.Fatalf("append after space returned: %+v %v", res, err)
	}
	want[12] = "y-0"
	if got := readAll(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

// TestIndexRebuildOnFullDisk: a sealed segment whose index files are gone
// is rebuilt on first read; on a full disk the rebuilt entries serve reads
// from memory instead of failing the read.
func TestIndexRebuildOnFullDisk(t *testing.T) {
	mem := memfs.New()
	cfg := Config{SegmentBytes: 1, IndexIntervalBytes: 1}
	l := openLog(t, mem, "/d", cfg, State{})
	for i := 0; i < 4; i++ {
		if _, err := l.Append(batch(t, fmt.Sprintf("r%d", i), 2, 1), AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	want := readAll(t, l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/d/00000000000000000000.index", "/d/00000000000000000000.timeindex"} {
		if err := mem.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	sw := &switchFS{fail: fullDisk}
	sw.on.Store(true)
	l2 := openLog(t, errorfs.Wrap(mem, sw), "/d", cfg, State{Clean: true, RecoveryPoint: 8})
	defer l2.Close()
	if got := readAll(t, l2); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}
