package partition

import (
	"testing"
	"time"

	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/seglog"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

// termsRepl is a Replicator whose log holds batches of given terms (the
// test appends them to the log itself).
type termsRepl struct {
	spans [][3]int64 // first offset, last offset, term
}

func (r *termsRepl) Propose([]byte) (int64, int64, int32, error) { return 0, 0, 0, ErrNotLeader }
func (r *termsRepl) TermAt(off int64) (int32, bool) {
	for _, s := range r.spans {
		if s[0] <= off && off <= s[1] {
			return int32(s[2]), true
		}
	}
	return 0, false
}
func (r *termsRepl) LeaderEpoch() int32                       { return 9 }
func (r *termsRepl) WaitLeadershipSettled(time.Duration) bool { return false }
func (r *termsRepl) InSync() int                              { return 1 }
func (r *termsRepl) KnownLeader() (uint64, uint64)            { return 0, 0 }
func (r *termsRepl) ConfirmedLeader() (uint64, uint64)        { return 0, 0 }

// OffsetForLeaderEpoch on a replicated partition ends an old epoch where
// the next term's first batch starts (Kafka's endOffsetFor), not at the log
// start, which made a consumer resuming from an offset committed under an
// earlier leader rewind to the start of the partition.
func TestEpochEndFromTerms(t *testing.T) {
	p := openPartition(t, memfs.New(), seglog.State{})
	r := &termsRepl{}
	// Terms 2 (offsets 0-2), 2 (3-5), 5 (6-8), 7 (9-11).
	for _, term := range []int64{2, 2, 5, 7} {
		rs := []record.Record{{Value: []byte("a")}, {OffsetDelta: 1, Value: []byte("b")}, {OffsetDelta: 2, Value: []byte("c")}}
		b, err := record.AppendBatch(nil, record.BatchSpec{PartitionLeaderEpoch: int32(term), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, rs)
		if err != nil {
			t.Fatal(err)
		}
		res, err := p.Log().Append(b, seglog.AppendOptions{LeaderEpoch: int32(term)})
		if err != nil {
			t.Fatal(err)
		}
		r.spans = append(r.spans, [3]int64{res.FirstOffset, res.LastOffset, term})
	}
	if _, _, ok := p.EpochEnd(2); ok {
		t.Fatal("a single copy answered from terms")
	}
	p.SetReplicator(r, 12)
	for _, tc := range []struct {
		ask, epoch int32
		end        int64
	}{
		{1, 1, 0},   // older than the log: the first epoch's start
		{2, 2, 6},   // ends where term 5 starts
		{3, 2, 6},   // no term 3: the floor, 2, ends at 6
		{5, 5, 9},   // ends where term 7 starts
		{6, 5, 9},   // the floor, 5
		{7, -1, -1}, // no later term in the log
	} {
		e, end, ok := p.EpochEnd(tc.ask)
		if !ok || e != tc.epoch || end != tc.end {
			t.Errorf("epoch %d: (%d, %d, %v), want (%d, %d)", tc.ask, e, end, ok, tc.epoch, tc.end)
		}
	}
}
