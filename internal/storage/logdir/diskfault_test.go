package logdir

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
	"github.com/stromhq/strom/internal/testutil"
)

// fullDisk fails every write while on, after storing part of it, with
// ENOSPC: what a filesystem with no free block does. Creating, removing
// and renaming files still work.
type fullDisk struct{ on atomic.Bool }

func (f *fullDisk) MaybeError(op errorfs.Op, name string) error {
	if op == errorfs.OpWrite && f.on.Load() {
		return &errorfs.PartialWrite{N: 5}
	}
	return nil
}

// TestRemovesEmptyTempFiles: the empty *.tmp files a crash leaves (a
// checkpoint, producer snapshot or metadata write cut after its create) go
// at start, and so do log probe files; a non-empty one stays, since only
// the writer of its file knows what it is (none holds the only copy of
// anything: writes are temp, fsync, rename).
func TestRemovesEmptyTempFiles(t *testing.T) {
	mem := memfs.New()
	files := map[string]string{
		"/data/recovery-point-checkpoint.tmp":     "",
		"/data/__strom_metadata.tmp":              "half a metadata file",
		"/data/t-0/producer-state.snapshot.tmp":   "",
		"/data/t-0/" + seglog.ProbeFile:           strings.Repeat("x", 4096),
		"/data/t-0/00000000000000000000.log":      "",
		"/data/not-a-partition/leftover.tmp":      "",
		"/data/__consumer_offsets-0/x.tmp":        "",
		"/data/__consumer_offsets-0/keep.tmp.log": "",
	}
	for p, content := range files {
		if err := mem.MkdirAll(p[:strings.LastIndexByte(p, '/')]); err != nil {
			t.Fatal(err)
		}
		if err := mem.WriteFile(p, []byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	d, err := Open(mem, "/data", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	gone := map[string]bool{
		"/data/recovery-point-checkpoint.tmp":   true,
		"/data/t-0/producer-state.snapshot.tmp": true,
		"/data/t-0/" + seglog.ProbeFile:         true,
		"/data/__consumer_offsets-0/x.tmp":      true,
	}
	for p := range files {
		_, err := mem.Stat(p)
		if gone[p] && err == nil {
			t.Errorf("%s still there", p)
		}
		if !gone[p] && err != nil {
			t.Errorf("%s removed: %v", p, err)
		}
	}
}

// TestHealthChangesLoggedOnce: a partition whose appends fail on a full
// disk is logged once as degraded (not once per produce), listed by
// Unhealthy and counted by kind; the periodic probe makes it writable
// again once space returns, with one more line.
func TestHealthChangesLoggedOnce(t *testing.T) {
	var out testutil.SyncBuffer
	disk := &fullDisk{}
	d, err := Open(errorfs.Wrap(memfs.New(), disk), "/data", slog.New(slog.NewTextHandler(&out, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	p := Partition{Topic: "orders", Partition: 3}
	l, err := d.OpenLog(p, seglog.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(oneBatch(t, "kept"), seglog.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	disk.on.Store(true)
	for i := 0; i < 5; i++ {
		if _, err := l.Append(oneBatch(t, fmt.Sprint(i)), seglog.AppendOptions{}); !errors.Is(err, seglog.ErrStorage) {
			t.Fatalf("append on a full disk: %v", err)
		}
	}
	if n := strings.Count(out.String(), "partition storage degraded"); n != 1 {
		t.Fatalf("%d degraded lines for 5 failed appends, want 1:\n%s", n, out.String())
	}
	un := d.Unhealthy()
	if len(un) != 1 || un[0].Partition != p || un[0].Health != seglog.Degraded || !errors.Is(un[0].Err, syscall.ENOSPC) {
		t.Fatalf("unhealthy %+v", un)
	}
	if got := d.StorageErrors()["enospc"]; got != 5 {
		t.Fatalf("storage errors %v, want 5 enospc", d.StorageErrors())
	}
	d.ProbeDegraded()
	if len(d.Unhealthy()) != 1 {
		t.Fatal("a probe on a full disk cleared the state")
	}
	disk.on.Store(false)
	d.ProbeDegraded()
	if un := d.Unhealthy(); len(un) != 0 {
		t.Fatalf("unhealthy after space returned: %+v", un)
	}
	if n := strings.Count(out.String(), "partition storage writable again"); n != 1 {
		t.Fatalf("%d recovery lines, want 1:\n%s", n, out.String())
	}
	// Deleting the log keeps its errors counted.
	if err := d.DeleteLog(p); err != nil {
		t.Fatal(err)
	}
	if got := d.StorageErrors()["enospc"]; got != 5 {
		t.Fatalf("storage errors after delete %v, want 5 enospc", d.StorageErrors())
	}
}

// TestOpenOnFullDiskAfterCrash: a data directory killed (no clean close)
// on a full disk opens: every log recovers without writing, starts
// Degraded, serves reads, fails appends with ErrStorage; checkpoints fail
// without leaving temporary files; writes resume once space returns.
func TestOpenOnFullDiskAfterCrash(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	parts := []Partition{{Topic: "a", Partition: 0}, {Topic: "b", Partition: 1}}
	cfg := seglog.Config{SegmentBytes: 1, IndexIntervalBytes: 1}
	for _, p := range parts {
		l, err := d.OpenLog(p, cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 4; i++ {
			res, err := l.Append(oneBatch(t, fmt.Sprint(i)), seglog.AppendOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
				t.Fatal(err)
			}
		}
	}
	dead := mem.Snapshot() // kill -9
	d.Close()

	disk := &fullDisk{}
	disk.on.Store(true)
	fsys := errorfs.Wrap(dead, disk)
	d2, err := Open(fsys, "/data", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open on a full disk: %v", err)
	}
	defer d2.Close()
	for _, p := range parts {
		l, err := d2.OpenLog(p, cfg)
		if err != nil {
			t.Fatalf("open log %v on a full disk: %v", p, err)
		}
		if l.EndOffset() != 4 {
			t.Fatalf("%v: end %d, want 4", p, l.EndOffset())
		}
		res, err := l.Read(0, 1<<20, true)
		if err != nil || len(res.Data) == 0 {
			t.Fatalf("%v: read on a full disk: %v", p, err)
		}
		if _, err := l.Append(oneBatch(t, "x"), seglog.AppendOptions{}); !errors.Is(err, seglog.ErrStorage) {
			t.Fatalf("%v: append on a full disk: %v", p, err)
		}
	}
	if un := d2.Unhealthy(); len(un) != 2 {
		t.Fatalf("unhealthy %+v, want both partitions", un)
	}
	if err := d2.Checkpoint(); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("checkpoint on a full disk: %v", err)
	}
	names, _ := dead.List("/data")
	for _, n := range names {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("a failed checkpoint left %s", n)
		}
	}
	disk.on.Store(false)
	for _, p := range parts {
		l, _ := d2.Log(p)
		if res, err := l.Append(oneBatch(t, "y"), seglog.AppendOptions{}); err != nil || res.FirstOffset != 4 {
			t.Fatalf("%v: append after space returned: %+v %v", p, res, err)
		}
	}
	if un := d2.Unhealthy(); len(un) != 0 {
		t.Fatalf("unhealthy after writes resumed: %+v", un)
	}
	if err := d2.Checkpoint(); err != nil {
		t.Fatal(err)
	}
}
