package txn

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	rec "github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// env is a coordinator over partitions on an in-memory filesystem: the
// transaction log ("__transaction_state-0") and data partitions "d-0",
// "d-1", with a fake clock and a recorder for committed offsets.
type env struct {
	t     *testing.T
	fs    *memfs.FS
	parts map[string]*partition.Partition
	logs  []*seglog.Log
	c     *Coordinator

	mu        sync.Mutex
	now       time.Time
	committed map[string][]PendingOffset // by group
	nextPID   int64
}

var dataParts = []string{"d-0", "d-1"}

func newEnv(t *testing.T, fs *memfs.FS) *env {
	t.Helper()
	return newEnvWith(t, fs, nil)
}

// newEnvWith is newEnv with the coordinator's config changed by adjust.
func newEnvWith(t *testing.T, fs *memfs.FS, adjust func(*Config)) *env {
	t.Helper()
	e := &env{t: t, fs: fs, parts: map[string]*partition.Partition{}, now: time.UnixMilli(1e12), committed: map[string][]PendingOffset{}, nextPID: 1000}
	for _, name := range append([]string{"ts-0"}, dataParts...) {
		l, err := seglog.Open(fs, "/d/"+name, seglog.Config{IndexMaxBytes: 4096}, seglog.State{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := partition.Open(name[:1], int32(name[2]-'0'), l, partition.Options{FS: fs, Now: e.clock})
		if err != nil {
			t.Fatal(err)
		}
		e.parts[name] = p
		e.logs = append(e.logs, l)
	}
	// The directories exist and are durable (the cluster's job at create).
	for _, d := range []string{"/", "/d"} {
		if err := fs.SyncDir(d); err != nil {
			t.Fatal(err)
		}
	}
	cfg := e.config()
	if adjust != nil {
		adjust(&cfg)
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.c = c
	t.Cleanup(e.close)
	return e
}

func (e *env) config() Config {
	return Config{
		Log: func(bool) (*partition.Partition, error) { return e.parts["ts-0"], nil },
		Partition: func(topic string, index int32) (*partition.Partition, bool) {
			p, ok := e.parts[topic+"-"+string(rune('0'+index))]
			return p, ok && topic == "d"
		},
		AllocateProducerID: func() (int64, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.nextPID++
			return e.nextPID, nil
		},
		CommitOffsets: func(_ context.Context, group string, offsets []PendingOffset) error {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.committed[group] = append(e.committed[group], offsets...)
			return nil
		},
		CheckInterval: time.Hour, // tests call CheckTimeouts
		Now:           e.clock,
	}
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.now = e.now.Add(d)
	e.mu.Unlock()
}

func (e *env) close() {
	if e.c != nil {
		e.c.Close()
		e.c = nil
	}
	for _, l := range e.logs {
		l.Close()
	}
	e.logs = nil
}

// produce appends a transactional batch of one record to data partition
// i as the producer at seq, verified by the coordinator as Produce does,
// and waits for it to be durable (acks=all).
func (e *env) produce(i int, pid int64, epoch int16, seq int32) error {
	b, err := rec.AppendBatch(nil, rec.BatchSpec{
		PartitionLeaderEpoch: -1, Transactional: true, BaseTimestamp: 1,
		ProducerID: pid, ProducerEpoch: epoch, BaseSequence: seq,
	}, []rec.Record{{Value: []byte("v")}})
	if err != nil {
		e.t.Fatal(err)
	}
	p := e.parts[dataParts[i]]
	res, err := p.Append(b, partition.AppendRules{VerifyTxn: func(pid int64, epoch int16) error {
		return e.c.Verify(pid, epoch, "d", int32(i))
	}})
	if err != nil {
		return err
	}
	return p.WaitDurable(context.Background(), res.LastOffset) // acks=all
}

// eachBatch calls f with each batch of data partition i below its high
// watermark and the batch's records.
func (e *env) eachBatch(i int, f func(h rec.BatchHeader, recs []rec.Record)) {
	e.t.Helper()
	p := e.parts[dataParts[i]]
	for off := p.StartOffset(); off < p.HighWatermark(); {
		res, err := p.Read(off, 1<<20, true)
		if err != nil {
			e.t.Fatal(err)
		}
		for b := res.Data; len(b) > 0; {
			h, err := rec.ReadBatchHeader(b)
			if err != nil {
				e.t.Fatal(err)
			}
			_, recs, err := rec.Records(b[:h.Size()], 1<<20)
			if err != nil {
				e.t.Fatal(err)
			}
			f(h, recs)
			b = b[h.Size():]
			off = h.LastOffset() + 1
		}
	}
}

// outcome reads data partition i: how many data records, and the
// markers' types in order ("C" commit, "A" abort).
func (e *env) outcome(i int) (records int, markers string) {
	e.eachBatch(i, func(h rec.BatchHeader, recs []rec.Record) {
		switch {
		case h.IsControl() && recs[0].Key[3] == 1:
			markers += "C"
		case h.IsControl():
			markers += "A"
		default:
			records += len(recs)
		}
	})
	return records, markers
}

var tp0, tp1 = TopicPartition{"d", 0}, TopicPartition{"d", 1}

// legacyOffsets writes offsets into id's ongoing transaction record, as
// Strom did before TxnOffsetCommit wrote them to the offsets log: records
// of that shape, found at a restart or still ongoing, must still be
// applied when their transaction commits.
func (e *env) legacyOffsets(id string, pid int64, epoch int16, group string, offsets []PendingOffset) error {
	t, err := e.c.lookup(id, pid, epoch)
	if err != nil {
		return err
	}
	defer t.op.Unlock()
	r := t.cur
	r.Offsets = slices.Clone(r.Offsets)
	for _, o := range offsets {
		o.Group = group
		r.Offsets = append(r.Offsets, o)
	}
	sortOffsets(r.Offsets)
	return e.c.write(context.Background(), t, r)
}

// completed waits until no completion of id's transaction runs in the
// background (complete.go): the markers of its last end are durable and
// the completion recorded, or the completion failed (and is left to a
// retry). EndTxn answers before that.
func (e *env) completed(id string) {
	e.t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		e.c.mu.Lock()
		t := e.c.txns[id]
		e.c.mu.Unlock()
		if t == nil {
			return
		}
		t.op.Lock()
		done := t.completing
		t.op.Unlock()
		if done == nil {
			return
		}
		select {
		case <-done:
		case <-deadline.C:
			e.t.Fatalf("the completion of %q did not end in 10 s", id)
		}
	}
}
