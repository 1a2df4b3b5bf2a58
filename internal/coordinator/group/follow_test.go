package group

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
)

// fakeRepl stands for the raft group of a replicated offsets partition:
// this replica leads in epoch (or follows: -1), its proposals go to the
// log in that term and commit at once unless hold is set; write puts what
// another leader replicated into the log, committed.
type fakeRepl struct {
	p     *partition.Partition
	epoch atomic.Int32
	hold  atomic.Bool

	mu    sync.Mutex
	terms []termSpan
}

type termSpan struct {
	first, last int64
	term        int32
}

func (f *fakeRepl) Propose(data []byte) (int64, int64, int32, error) {
	e := f.epoch.Load()
	if e < 0 {
		return 0, 0, 0, partition.ErrNotLeader
	}
	return f.write(data, e, !f.hold.Load())
}

func (f *fakeRepl) write(data []byte, term int32, commit bool) (int64, int64, int32, error) {
	res, err := f.p.Log().Append(data, seglog.AppendOptions{LeaderEpoch: term})
	if err != nil {
		return 0, 0, 0, err
	}
	f.mu.Lock()
	f.terms = append(f.terms, termSpan{res.FirstOffset, res.LastOffset, term})
	f.mu.Unlock()
	if err := f.p.Appended(res.FirstOffset); err != nil {
		return 0, 0, 0, err
	}
	if commit {
		f.p.SetHighWatermark(res.LastOffset + 1)
	}
	return res.FirstOffset, res.LastOffset, term, nil
}

func (f *fakeRepl) TermAt(offset int64) (int32, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, s := range f.terms {
		if s.first <= offset && offset <= s.last {
			return s.term, true
		}
	}
	return 0, false
}

func (f *fakeRepl) LeaderEpoch() int32                       { return f.epoch.Load() }
func (f *fakeRepl) WaitLeadershipSettled(time.Duration) bool { return false }
func (f *fakeRepl) InSync() int                              { return 1 }
func (f *fakeRepl) KnownLeader() (uint64, uint64)            { return 0, 0 }
func (f *fakeRepl) ConfirmedLeader() (uint64, uint64)        { return 0, 0 }

// elsewhere writes a commit of offset for (group, t-0) as another leader
// of term would, committed.
func (f *fakeRepl) elsewhere(t *testing.T, group string, offset int64, term int32) {
	t.Helper()
	batch, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: -1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
		[]record.Record{{Key: offsetKey(group, "t", 0), Value: encodeOffset(committed{Offset: offset, LeaderEpoch: -1, ExpireTime: -1})}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := f.write(batch, term, true); err != nil {
		t.Fatal(err)
	}
}

// fetched is the committed offset of (group, t-0), or the fetch's error.
func fetched(t *testing.T, c *Coordinator, group string) (int64, error) {
	t.Helper()
	r := wait1(t, c.FetchOffsets(group, []TopicPartition{{"t", 0}}))
	if r.Err != nil {
		return 0, r.Err
	}
	return r.Offsets[0].Offset, nil
}

// eventually polls f until it returns nil, for at most 10 s.
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond) // polling with a deadline
	}
}

func commitOffset(group string, offset int64) CommitRequest {
	return CommitRequest{Group: group, Generation: -1, Offsets: []CommitOffset{{Topic: "t", Offset: offset, LeaderEpoch: -1, Timestamp: -1}}}
}

// TestCoordinatorFollowsOffsetsLeader: in a cluster the coordinator serves
// only while its broker leads the offsets partition, loads the groups from
// the log (what earlier leaders committed) when it takes the lead, answers
// a commit once raft committed it, drops its groups when it loses the lead,
// and never answers from groups loaded in an earlier leadership (lost and
// won again between two checks of the watcher).
func TestCoordinatorFollowsOffsetsLeader(t *testing.T) {
	mem := newMemFS(t)
	l, err := seglog.Open(mem, logDir, seglog.Config{SegmentBytes: 4 << 10, RetentionMs: -1, IndexMaxBytes: 4 << 10}, seglog.State{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	p, err := partition.Open("__consumer_offsets", 0, l, partition.Options{FS: mem})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeRepl{p: p}
	f.epoch.Store(-1)
	p.SetReplicator(f, 0)
	// The test wakes the watcher where a periodic check would run; requests
	// that find the epoch moved wake it too.
	c, err := Open(Config{
		FollowLeader: true, LeaderPoll: time.Hour, Logger: slog.New(slog.DiscardHandler),
		OffsetsLog: func(bool) (*partition.Partition, error) {
			if p.LeaderEpoch() < 0 {
				return nil, errors.New("not the leader")
			}
			return p, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// A follower coordinates nothing.
	if r := wait1(t, c.CommitOffsets(commitOffset("g", 5))); !errors.Is(r.Err, ErrNotCoordinator) {
		t.Fatalf("commit at a follower: %v, want ErrNotCoordinator", r.Err)
	}
	// Another leader (term 1) committed offset 10; this broker leads in
	// term 2: it loads the group before answering.
	f.elsewhere(t, "g", 10, 1)
	f.epoch.Store(2)
	c.wakeWatcher()
	eventually(t, "offset 10 loaded from the log", func() error {
		off, err := fetched(t, c, "g")
		if err == nil && off != 10 {
			return fmt.Errorf("fetched %d, want 10", off)
		}
		return err
	})
	// A commit answers once committed, not at the leader's append.
	f.hold.Store(true)
	call := c.CommitOffsets(commitOffset("g", 20))
	eventually(t, "commit 20 appended", func() error {
		if p.EndOffset() < 2 {
			return errors.New("not appended yet")
		}
		return nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	if r, err := call.Wait(ctx); err == nil {
		t.Fatalf("commit answered before it was committed: %+v", r)
	}
	cancel()
	f.hold.Store(false)
	p.SetHighWatermark(p.EndOffset())
	if r := wait1(t, call); r.Err != nil || len(r.Errs) > 0 && r.Errs[0] != nil {
		t.Fatalf("commit 20: %+v", r)
	}
	if off, err := fetched(t, c, "g"); err != nil || off != 20 {
		t.Fatalf("after commit 20: %d, %v", off, err)
	}

	// Lost: the groups go, requests answer NOT_COORDINATOR.
	f.epoch.Store(-1)
	c.wakeWatcher()
	eventually(t, "not coordinator after losing the lead", func() error {
		if _, err := fetched(t, c, "g"); !errors.Is(err, ErrNotCoordinator) {
			return fmt.Errorf("fetch: %v", err)
		}
		return nil
	})
	if gs := c.ListGroups(); len(gs) != 0 {
		t.Fatalf("groups listed by a follower: %+v", gs)
	}
	// Another leader (term 3) committed 30; won again in term 4: 30, not
	// the 20 this broker had in memory.
	f.elsewhere(t, "g", 30, 3)
	f.epoch.Store(4)
	c.wakeWatcher()
	eventually(t, "offset 30 loaded in term 4", func() error {
		off, err := fetched(t, c, "g")
		if err == nil && off != 30 {
			return fmt.Errorf("fetched %d, want 30", off)
		}
		return err
	})

	// Lost and won again between two checks: no answer from the groups
	// of term 4, and the next load has what term 5's leader wrote.
	f.elsewhere(t, "g", 40, 5)
	f.epoch.Store(6)
	eventually(t, "offset 40 after a leadership change the watcher did not see", func() error {
		off, err := fetched(t, c, "g")
		if err == nil && off != 40 {
			return fmt.Errorf("fetched %d, want 40 (a stale answer)", off)
		}
		return err
	})
}
