package logdir

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/checkpoint"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// fullPass is what the checkpoint files must say: every open log's
// durable and start offsets, read now.
func fullPass(d *Dir) (rec, starts map[Partition]int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	rec, starts = map[Partition]int64{}, map[Partition]int64{}
	for p, l := range d.logs {
		rec[p], starts[p] = l.DurableOffset(), l.StartOffset()
	}
	return rec, starts
}

// checkFiles fails unless the checkpoint files hold exactly fullPass.
func checkFiles(t *testing.T, mem *memfs.FS, d *Dir, what string) {
	t.Helper()
	wantRec, wantStarts := fullPass(d)
	gotRec, err := checkpoint.Read(mem, filepath.Join(d.Path(), recoveryCheckpoint))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	gotStarts, err := checkpoint.Read(mem, filepath.Join(d.Path(), startCheckpoint))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if !maps.Equal(gotRec, wantRec) {
		t.Fatalf("%s: recovery points %v, a full pass says %v", what, gotRec, wantRec)
	}
	if !maps.Equal(gotStarts, wantStarts) {
		t.Fatalf("%s: start offsets %v, a full pass says %v", what, gotStarts, wantStarts)
	}
}

// smallLogs roll every few batches and keep about two segments, so that
// retention moves start offsets.
var smallLogs = seglog.Config{SegmentBytes: 300, IndexMaxBytes: 4096, RetentionMs: -1, RetentionBytes: 600}

// The checkpoint files say what a pass over every log would say, after
// any mix of log creations and deletions, appends (fsynced or not),
// flushes, rolls, retention, DeleteRecords, truncations and resets, with
// checkpoints at random moments in between (so a log that changes after
// a checkpoint must be written by the next one), and after Close.
func TestCheckpointMatchesFullPass(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 18))
			mem := memfs.New()
			d, err := Open(mem, "/data", nil)
			if err != nil {
				t.Fatal(err)
			}
			parts := make([]Partition, 6)
			for i := range parts {
				parts[i] = Partition{Topic: "t", Partition: int32(i)}
			}
			now := time.Unix(1000, 0)
			for step := range 400 {
				p := parts[rng.IntN(len(parts))]
				l, open := d.Log(p)
				if !open {
					if rng.IntN(2) == 0 {
						_, err = d.OpenLog(p, smallLogs)
					} else {
						_, errs := d.CreateLogs([]Partition{p}, []seglog.Config{smallLogs}, [][16]byte{{1}}, 1)
						err = errs[0]
					}
					if err != nil {
						t.Fatal(err)
					}
					continue
				}
				start, end := l.StartOffset(), l.EndOffset()
				switch op := rng.IntN(20); {
				case op < 7:
					for range 1 + rng.IntN(3) {
						res, err := l.Append(oneBatch(t, "v"), seglog.AppendOptions{})
						if err != nil {
							t.Fatal(err)
						}
						if rng.IntN(2) == 0 {
							if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
								t.Fatal(err)
							}
						}
					}
				case op < 8:
					err = l.Flush()
				case op < 9:
					err = l.Roll()
				case op < 11:
					_, err = l.ApplyRetention(now)
				case op < 12:
					err = l.AdvanceStartOffset(start + rng.Int64N(end-start+1)) // DeleteRecords
				case op < 13:
					err = l.TruncateTo(start + rng.Int64N(end-start+1))
				case op < 14:
					err = l.ResetAt(end + rng.Int64N(5)) // a snapshot installed
				case op < 15:
					err = d.DeleteLog(p)
				default:
					if err := d.Checkpoint(); err != nil {
						t.Fatal(err)
					}
					checkFiles(t, mem, d, fmt.Sprintf("step %d", step))
				}
				if err != nil {
					t.Fatalf("step %d (%v): %v", step, p, err)
				}
			}
			if err := d.Checkpoint(); err != nil {
				t.Fatal(err)
			}
			checkFiles(t, mem, d, "the end")
			if err := d.Close(); err != nil {
				t.Fatal(err)
			}
			checkFiles(t, mem, d, "after Close")
		})
	}
}

// Offsets that move while checkpoints are taken (appends fsynced on
// several logs at once) are all in the files once the writers stop and
// one more checkpoint runs.
func TestCheckpointCatchesConcurrentChanges(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var logs []*seglog.Log
	for i := range 4 {
		l, err := d.OpenLog(Partition{Topic: "c", Partition: int32(i)}, smallLogs)
		if err != nil {
			t.Fatal(err)
		}
		logs = append(logs, l)
	}
	b := oneBatch(t, "v")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for _, l := range logs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				res, err := l.Append(append([]byte(nil), b...), seglog.AppendOptions{})
				if err != nil {
					t.Error(err)
					return
				}
				if err := l.WaitDurable(context.Background(), res.LastOffset); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 200 {
		if err := d.Checkpoint(); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
	if err := d.Checkpoint(); err != nil {
		t.Fatal(err)
	}
	checkFiles(t, mem, d, "after the writers stopped")
}

// flush.ms: the directory's flush pass fsyncs a log whose unflushed data
// is older than its flush.ms, leaves alone a log without flush.ms, and
// one whose flush.ms is set while data waits is flushed too.
func TestFlushPassFlushesDueLogs(t *testing.T) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var clock sync.Mutex
	now := time.Unix(1000, 0)
	cfg := smallLogs
	cfg.Now = func() time.Time { clock.Lock(); defer clock.Unlock(); return now }
	withFlush := cfg
	withFlush.FlushMs = time.Second
	timed, err := d.OpenLog(Partition{Topic: "f", Partition: 0}, withFlush)
	if err != nil {
		t.Fatal(err)
	}
	untimed, err := d.OpenLog(Partition{Topic: "f", Partition: 1}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range []*seglog.Log{timed, untimed} {
		if _, err := l.Append(oneBatch(t, "v"), seglog.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	d.flushDue(now.Add(500 * time.Millisecond))
	if timed.DurableOffset() != 0 {
		t.Fatal("flushed before flush.ms passed")
	}
	d.flushDue(now.Add(2 * time.Second))
	if timed.DurableOffset() != 1 {
		t.Fatalf("durable offset %d after flush.ms passed, want 1", timed.DurableOffset())
	}
	if untimed.DurableOffset() != 0 {
		t.Fatal("a log without flush.ms was flushed")
	}
	untimed.SetConfig(withFlush) // AlterConfigs sets flush.ms
	d.flushDue(now.Add(4 * time.Second))
	if untimed.DurableOffset() != 1 {
		t.Fatalf("durable offset %d once flush.ms was set, want 1", untimed.DurableOffset())
	}
}

// BenchmarkIdlePasses is one second of the directory's periodic work
// (Run's checkpoint pass and flush pass) on 10,000 logs that do not
// change, as a broker with 10,000 idle partitions runs it every second.
// Half the logs have flush.ms set.
func BenchmarkIdlePasses(b *testing.B) {
	mem := memfs.New()
	d, err := Open(mem, "/data", nil)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	data, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Value: []byte("v")}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		cfg := seglog.Config{IndexMaxBytes: 4096, RetentionMs: -1}
		if i%2 == 0 {
			cfg.FlushMs = time.Second
		}
		l, err := d.OpenLog(Partition{Topic: "idle", Partition: int32(i)}, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Append(append([]byte(nil), data...), seglog.AppendOptions{}); err != nil {
			b.Fatal(err)
		}
		if err := l.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	if err := d.Checkpoint(); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := d.Checkpoint(); err != nil {
			b.Fatal(err)
		}
		d.flushDue(now)
	}
}
