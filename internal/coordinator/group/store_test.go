package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// memCoordinator opens a coordinator whose offsets log lives in mem; with
// segBytes > 0 the log is compacted (cleanup.policy=compact) with segments
// of that size, else it has 4 KiB segments and no compaction.
func memCoordinator(t *testing.T, mem *memfs.FS, segBytes int64) (*Coordinator, func()) {
	c, _, closeC := memCoordinatorLog(t, mem, segBytes)
	return c, closeC
}

// memCoordinatorLog is memCoordinator that also returns the offsets log
// (nil until the first write).
func memCoordinatorLog(t *testing.T, mem *memfs.FS, segBytes int64) (*Coordinator, func() *seglog.Log, func()) {
	return memCoordinatorOpts(t, mem, segBytes, func(*Config) {})
}

// memCoordinatorCfg is memCoordinator with a configuration hook.
func memCoordinatorCfg(t *testing.T, mem *memfs.FS, configure func(*Config)) (*Coordinator, func()) {
	c, _, closeC := memCoordinatorOpts(t, mem, -1, configure)
	return c, closeC
}

func memCoordinatorOpts(t *testing.T, mem *memfs.FS, segBytes int64, configure func(*Config)) (*Coordinator, func() *seglog.Log, func()) {
	t.Helper()
	logCfg := seglog.Config{SegmentBytes: 4 << 10, RetentionMs: -1, IndexMaxBytes: 4 << 10}
	if segBytes > 0 {
		logCfg.SegmentBytes = segBytes
		logCfg.Compaction = seglog.Compaction{Enabled: true, DeleteRetention: time.Hour, MaxLag: 1 << 62}
	}
	var l *seglog.Log
	var p *partition.Partition
	open := func(create bool) (*partition.Partition, error) {
		if p != nil {
			return p, nil
		}
		if _, err := mem.Stat(logDir); err != nil && !create {
			return nil, nil
		}
		var err error
		if l, err = seglog.Open(mem, logDir, logCfg, seglog.State{}); err != nil {
			return nil, err
		}
		p, err = partition.Open("__consumer_offsets", 0, l, partition.Options{FS: mem})
		return p, err
	}
	cfg := Config{OffsetsLog: open, Logger: slog.New(slog.DiscardHandler)}
	configure(&cfg)
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, func() *seglog.Log { return l }, func() {
		c.Close()
		if l != nil {
			l.Close()
		}
	}
}

func newMemFS(t *testing.T) *memfs.FS {
	mem := memfs.New()
	if err := mem.MkdirAll("/data"); err != nil {
		t.Fatal(err)
	}
	if err := mem.SyncDir("/"); err != nil {
		t.Fatal(err)
	}
	return mem
}

func wait1[T any](t *testing.T, c *Call[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := c.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestCrashKeepsAcknowledgedCommits commits at random to a compacted
// offsets log with small segments, while the log cleaner cleans it again
// and again in the background, and takes crash images at random moments
// (keeping a random part of what was not fsynced, possibly in the middle
// of a cleaning). Every image, reopened and replayed, must hold exactly the
// last acknowledged offset of every partition: none lost, none older, no
// deleted group back.
func TestCrashKeepsAcknowledgedCommits(t *testing.T) {
	mem := newMemFS(t)
	c, logOf, closeC := memCoordinatorLog(t, mem, 2<<10)
	defer closeC()
	rng := rand.New(rand.NewPCG(1, 2))
	acked := map[string]map[TopicPartition]int64{}
	images := 0
	var removed atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	startCleaner := func(l *seglog.Log) {
		go func() {
			defer close(done)
			cl := cleaner.New(mem, cleaner.Options{DedupeBufferBytes: 4 << 10})
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := cl.Clean(context.Background(), l, l.EndOffset())
				if err != nil && !errors.Is(err, seglog.ErrSegmentsChanged) {
					t.Error(err)
					return
				}
				removed.Add(res.Removed)
				runtime.Gosched()
			}
		}()
	}
	for i := range 600 {
		g := fmt.Sprintf("g%d", rng.IntN(5))
		tp := TopicPartition{Topic: fmt.Sprintf("t%d", rng.IntN(3)), Partition: int32(rng.IntN(4))}
		off := int64(i)
		res := wait1(t, c.CommitOffsets(CommitRequest{Group: g, Generation: -1, Offsets: []CommitOffset{{Topic: tp.Topic, Partition: tp.Partition, Offset: off, LeaderEpoch: -1, Timestamp: -1}}}))
		if res.Err != nil || res.Errs[0] != nil {
			t.Fatalf("commit %d: %+v", i, res)
		}
		if i == 0 {
			startCleaner(logOf())
		}
		if acked[g] == nil {
			acked[g] = map[TopicPartition]int64{}
		}
		acked[g][tp] = off
		if i%5 == 0 && rng.IntN(2) == 0 {
			// Sometimes delete a group (tombstones must survive too).
			dg := fmt.Sprintf("g%d", rng.IntN(5))
			if err := wait1(t, c.DeleteGroup(dg)); err == nil {
				delete(acked, dg)
			}
		}
		if rng.IntN(40) != 0 {
			continue
		}
		images++
		keep := rng.Float64()
		img := mem.Crash(memfs.CrashOptions{KeepUnsyncedPrefix: func(_ string, n int) int { return int(float64(n) * keep) }})
		checkImage(t, img, acked)
	}
	close(stop)
	<-done
	if images < 5 {
		t.Fatalf("only %d crash images", images)
	}
	if removed.Load() == 0 {
		t.Fatal("the cleaner never removed a record of the offsets log")
	}
	t.Logf("%d crash images; %d records cleaned away; log end %d, %d bytes", images, removed.Load(), logOf().EndOffset(), logOf().Size())
	closeC()
	checkImage(t, mem.Crash(memfs.CrashOptions{}), acked)
}

func checkImage(t *testing.T, img *memfs.FS, acked map[string]map[TopicPartition]int64) {
	t.Helper()
	c, closeC := memCoordinator(t, img, -1)
	defer closeC()
	for _, gl := range c.ListGroups() {
		if _, ok := acked[gl.Group]; !ok {
			t.Errorf("deleted group %s came back", gl.Group)
		}
	}
	for g, want := range acked {
		got := map[TopicPartition]int64{}
		for _, o := range wait1(t, c.FetchOffsets(g, nil)).Offsets {
			got[TopicPartition{o.Topic, o.Partition}] = o.Offset
		}
		if len(got) != len(want) {
			t.Errorf("group %s: %d offsets after the crash, want %d", g, len(got), len(want))
		}
		for tp, off := range want {
			if got[tp] != off {
				t.Errorf("group %s %v: offset %d after the crash, acknowledged %d", g, tp, got[tp], off)
			}
		}
	}
}
