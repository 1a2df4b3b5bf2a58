package group

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/storage/cleaner"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// txnEnv is a coordinator over an offsets log in memory, with the log's
// partition at hand to write markers as the transaction coordinator does.
type txnEnv struct {
	t        *testing.T
	mem      *memfs.FS
	segBytes int64 // > 0: a compacted log with segments of that size
	c        *Coordinator
	log      func(bool) (*partition.Partition, error)
	logOf    func() *seglog.Log
	close    func()
}

func openTxnEnv(t *testing.T, mem *memfs.FS) *txnEnv {
	return openTxnEnvSeg(t, mem, -1)
}

func openTxnEnvSeg(t *testing.T, mem *memfs.FS, segBytes int64) *txnEnv {
	t.Helper()
	e := &txnEnv{t: t, mem: mem, segBytes: segBytes}
	e.c, e.logOf, e.close = memCoordinatorOpts(t, mem, segBytes, func(cfg *Config) { e.log = cfg.OffsetsLog })
	return e
}

// restart closes the coordinator and opens a new one on the same log
// (a crash after every acknowledged write, as the log is fsynced).
func (e *txnEnv) restart() {
	e.close()
	*e = *openTxnEnvSeg(e.t, e.mem, e.segBytes)
}

// txnCommit commits offset of topic "in" partition part for producer pid
// in its transaction (TxnOffsetCommit, its partition verified).
func (e *txnEnv) txnCommit(pid int64, part int32, offset int64) error {
	e.t.Helper()
	return wait1(e.t, e.c.TxnCommit(TxnCommitRequest{
		Group: "g", Generation: -1, ProducerID: pid, ProducerEpoch: 0,
		Offsets:   []CommitOffset{{Topic: "in", Partition: part, Offset: offset, LeaderEpoch: -1}},
		VerifyTxn: func(int64, int16) error { return nil },
	}))
}

// marker writes producer pid's marker to the offsets partition and waits
// for it to be durable; notify hands it to the coordinator, as the
// transaction coordinator or WriteTxnMarkers does (not: a crash between
// the two).
func (e *txnEnv) marker(pid int64, commit, notify bool) {
	e.t.Helper()
	p, err := e.log(false)
	if err != nil || p == nil {
		e.t.Fatalf("offsets log: %v", err)
	}
	res, err := p.AppendMarker(pid, 0, commit, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := p.WaitCommitted(context.Background(), res.Offset, res.LeaderEpoch); err != nil {
		e.t.Fatal(err)
	}
	if notify {
		e.c.TxnMarker(pid, commit, res.Offset)
	}
}

// offset is the group's committed offset of in-part (-1: none) and
// whether a transaction holds it pending.
func (e *txnEnv) offset(part int32) (int64, bool) {
	e.t.Helper()
	r := wait1(e.t, e.c.FetchOffsets("g", []TopicPartition{{"in", part}}))
	if r.Err != nil {
		e.t.Fatal(r.Err)
	}
	return r.Offsets[0].Offset, r.Offsets[0].Pending
}

// waitOffset polls until in-part is committed at want, not pending.
func (e *txnEnv) waitOffset(part int32, want int64) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, pending := e.offset(part)
		if got == want && !pending {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("in-%d: offset %d pending %v, want %d committed", part, got, pending, want)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTxnOffsetsCommitAndAbort: a transaction's offsets are pending (not
// fetched, flagged for require_stable) until its marker: a COMMIT makes
// them the group's, an ABORT drops them; a batch the transaction
// coordinator does not verify is refused and leaves nothing pending.
func TestTxnOffsetsCommitAndAbort(t *testing.T) {
	e := openTxnEnv(t, newMemFS(t))
	defer func() { e.close() }()
	if err := e.txnCommit(7, 0, 5); err != nil {
		t.Fatal(err)
	}
	if got, pending := e.offset(0); got != -1 || !pending {
		t.Fatalf("before the marker: offset %d pending %v, want -1 pending", got, pending)
	}
	e.marker(7, true, true)
	e.waitOffset(0, 5)

	if err := e.txnCommit(7, 0, 9); err != nil {
		t.Fatal(err)
	}
	if got, pending := e.offset(0); got != 5 || !pending {
		t.Fatalf("second transaction: offset %d pending %v, want 5 pending", got, pending)
	}
	e.marker(7, false, true)
	e.waitOffset(0, 5)

	err := wait1(t, e.c.TxnCommit(TxnCommitRequest{
		Group: "g", Generation: -1, ProducerID: 8, ProducerEpoch: 0,
		Offsets:   []CommitOffset{{Topic: "in", Partition: 1, Offset: 1, LeaderEpoch: -1}},
		VerifyTxn: func(int64, int16) error { return errors.New("not in the transaction") },
	}))
	if !errors.Is(err, partition.ErrTxnNotVerified) {
		t.Fatalf("unverified transactional commit: %v, want ErrTxnNotVerified", err)
	}
	if got, pending := e.offset(1); got != -1 || pending {
		t.Fatalf("refused commit: offset %d pending %v", got, pending)
	}
}

// TestTxnOffsetsReplay: loading the offsets log replays transactions as
// they ran: offsets whose COMMIT marker is in the log are committed (even
// if the coordinator was never told before the crash), aborted ones are
// dropped, those without a marker stay pending and are committed by a
// marker after the restart; a plain commit later in the log than a
// transaction's offsets wins over them, live and after the restart.
func TestTxnOffsetsReplay(t *testing.T) {
	e := openTxnEnv(t, newMemFS(t))
	defer func() { e.close() }()
	for pid, part := range map[int64]int32{1: 0, 2: 1, 3: 2, 4: 3} {
		if err := e.txnCommit(pid, part, 10*int64(pid)); err != nil {
			t.Fatal(err)
		}
	}
	// in-3: a plain commit after producer 4's offsets, before its marker.
	if r := wait1(t, e.c.CommitOffsets(CommitRequest{Group: "g", Generation: -1, Offsets: []CommitOffset{{Topic: "in", Partition: 3, Offset: 1, LeaderEpoch: -1, Timestamp: -1}}})); r.Err != nil || r.Errs[0] != nil {
		t.Fatalf("plain commit: %+v", r)
	}
	e.marker(1, true, false) // the crash comes before the coordinator hears of it
	e.marker(2, false, true)
	e.marker(4, true, true)
	e.waitOffset(3, 1)
	e.restart()
	e.waitOffset(0, 10)
	if got, pending := e.offset(1); got != -1 || pending {
		t.Fatalf("aborted in-1 after the restart: offset %d pending %v", got, pending)
	}
	if got, pending := e.offset(2); got != -1 || !pending {
		t.Fatalf("in-2 without its marker after the restart: offset %d pending %v, want pending", got, pending)
	}
	e.waitOffset(3, 1)
	e.marker(3, true, true)
	e.waitOffset(2, 30)
	e.restart()
	for part, want := range []int64{10, -1, 30, 1} {
		if got, pending := e.offset(int32(part)); got != want || pending {
			t.Errorf("in-%d after the second restart: offset %d pending %v, want %d", part, got, pending, want)
		}
	}
}

// TestTxnMarkerWhileLoading: a marker handed over while the groups load
// (a new leader replaying) is applied once they are, whether or not the
// replay saw it.
func TestTxnMarkerWhileLoading(t *testing.T) {
	c := &Coordinator{cfg: Config{FollowLeader: true}, loading: true}
	c.TxnMarker(5, true, 100)
	if len(c.lateMarkers) != 1 {
		t.Fatalf("marker while loading: %d kept, want 1", len(c.lateMarkers))
	}
	pending := map[int64]map[TopicPartition]committed{5: {{"in", 0}: {Offset: 7, logOffset: 50}}, 6: {{"in", 1}: {Offset: 8, logOffset: 150}}}
	offsets := map[TopicPartition]committed{}
	for _, m := range c.lateMarkers {
		endTxn(pending, offsets, m.pid, m.commit, m.offset)
	}
	endTxn(pending, offsets, 6, true, 100) // producer 6's offsets came after this marker
	if got := fmt.Sprint(offsets[TopicPartition{"in", 0}].Offset, len(pending), len(pending[6])); got != "7 1 1" {
		t.Fatalf("after the late marker: %s, want in-0 at 7 and producer 6 still pending", got)
	}
}

// TestTxnOffsetsSurviveCompaction: the offsets log compacted between
// transactions that commit or abort (and plain commits between them): a
// restart after every cleaning loads every partition's last committed
// offset, never an aborted one, and an open transaction's offsets stay
// pending through the cleaning. With the cleaner of main (aborted records
// mapped and kept) an aborted offset came back or a committed one was
// lost.
func TestTxnOffsetsSurviveCompaction(t *testing.T) {
	e := openTxnEnvSeg(t, newMemFS(t), 1<<10)
	defer func() { e.close() }()
	rng := rand.New(rand.NewPCG(5, 6))
	want := map[int32]int64{}
	removed := int64(0)
	for i := range 400 {
		part, off := int32(rng.IntN(4)), int64(i+1)
		if rng.IntN(4) == 0 {
			if r := wait1(t, e.c.CommitOffsets(CommitRequest{Group: "g", Generation: -1, Offsets: []CommitOffset{{Topic: "in", Partition: part, Offset: off, LeaderEpoch: -1, Timestamp: -1}}})); r.Err != nil || r.Errs[0] != nil {
				t.Fatalf("plain commit: %+v", r)
			}
			want[part] = off
		} else {
			pid := int64(10 + rng.IntN(3))
			if err := e.txnCommit(pid, part, off); err != nil {
				t.Fatal(err)
			}
			commit := rng.IntN(2) == 0
			e.marker(pid, commit, true)
			if commit {
				want[part] = off
			}
			w, ok := want[part]
			if !ok {
				w = -1
			}
			e.waitOffset(part, w)
		}
		if i%50 == 49 {
			// One open transaction (producer 99, partition 9) across the
			// cleaning and the restart.
			if err := e.txnCommit(99, 9, off); err != nil {
				t.Fatal(err)
			}
			if err := e.logOf().Roll(); err != nil {
				t.Fatal(err)
			}
			res, err := cleaner.New(e.mem, cleaner.Options{}).Clean(context.Background(), e.logOf(), e.logOf().EndOffset())
			if err != nil {
				t.Fatal(err)
			}
			removed += res.Removed
			e.restart()
			for part, w := range want {
				if got, pending := e.offset(part); got != w || pending {
					t.Fatalf("after cleaning %d: in-%d offset %d pending %v, want %d", i, part, got, pending, w)
				}
			}
			if got, pending := e.offset(9); got != -1 || !pending {
				t.Fatalf("after cleaning %d: the open transaction's in-9 offset %d pending %v", i, got, pending)
			}
			e.marker(99, false, true)
		}
	}
	if removed == 0 {
		t.Fatal("the cleaner removed nothing")
	}
	t.Logf("%d records cleaned away", removed)
}

// TestDeleteGroupDropsPendingTxnOffsets: an Empty group deleted
// (DeleteGroups) while a transaction holds offsets of it pending loses
// them, as in Kafka (KAFKA-14505: the delete writes a tombstone for every
// pending partition too, and a tombstone replayed drops what transactions
// hold pending for its partition): the transaction's COMMIT marker then
// commits nothing, live, after a restart, and after the log is cleaned past
// the tombstones' delete horizon. Before, the committed transactional
// record outlived the group's tombstone in the cleaned log and brought the
// deleted group's offset back at the next load.
func TestDeleteGroupDropsPendingTxnOffsets(t *testing.T) {
	e := openTxnEnvSeg(t, newMemFS(t), 1<<10)
	defer func() { e.close() }()
	if err := e.txnCommit(7, 0, 5); err != nil {
		t.Fatal(err)
	}
	if err := wait1(t, e.c.DeleteGroup("g")); err != nil {
		t.Fatalf("delete the group with pending offsets: %v", err)
	}
	e.marker(7, true, true)
	check := func(when string) {
		t.Helper()
		if got, pending := e.offset(0); got != -1 || pending {
			t.Fatalf("%s: offset %d pending %v, want none", when, got, pending)
		}
		for _, l := range e.c.ListGroups() {
			if l.Group == "g" {
				t.Fatalf("%s: the deleted group is listed: %+v", when, l)
			}
		}
	}
	check("after the marker")
	e.restart()
	check("after a restart")
	// Two passes: the first sets the tombstones' delete horizon, the
	// second (something new to clean, two days later) removes them.
	for i, at := range []time.Time{time.Now(), time.Now().Add(48 * time.Hour)} {
		if r := wait1(t, e.c.CommitOffsets(CommitRequest{Group: "other", Generation: -1, Offsets: []CommitOffset{{Topic: "in", Partition: 0, Offset: int64(i), LeaderEpoch: -1, Timestamp: -1}}})); r.Err != nil || r.Errs[0] != nil {
			t.Fatalf("plain commit: %+v", r)
		}
		if err := e.logOf().Roll(); err != nil {
			t.Fatal(err)
		}
		if _, err := cleaner.New(e.mem, cleaner.Options{Now: func() time.Time { return at }}).Clean(context.Background(), e.logOf(), e.logOf().EndOffset()); err != nil {
			t.Fatal(err)
		}
	}
	e.restart()
	if got, pending := e.offset(0); got != -1 || pending {
		t.Fatalf("after cleaning and a restart: offset %d pending %v, want none", got, pending)
	}
}
