package metadata

import (
	"errors"
	"slices"
	"testing"
)

func reassignStore(t *testing.T) (*Store, TopicID) {
	t.Helper()
	s := newStore()
	for id := int32(1); id <= 4; id++ {
		if _, err := s.applyLocked(Record{Type: RecRegisterBroker, Broker: &BrokerInfo{ID: id, Host: "h", Port: 9000 + id}}); err != nil {
			t.Fatal(err)
		}
	}
	id := TopicID{1}
	if _, err := s.applyLocked(Record{Type: RecCreateTopics, Topics: []Topic{{Name: "t", ID: id, Partitions: 3,
		Replicas: [][]int32{{1, 2, 3}, {2, 3, 1}, {4}}}}}); err != nil {
		t.Fatal(err)
	}
	return s, id
}

// The records of a reassignment: the union while it runs (so no node
// drops a copy the raft group may still count), adding/removing as Kafka
// shows them, the end recorded only for the target in force, a cancel
// that turns back, and the refusals.
func TestReassignRecords(t *testing.T) {
	s, id := reassignStore(t)
	apply := func(typ RecordType, p int32, target []int32) error {
		t.Helper()
		_, err := s.applyLocked(Record{Type: typ, Reassign: &ReassignChange{Topic: "t", TopicID: id, Partition: p, Target: target}})
		return err
	}
	topic := func() Topic { t.Helper(); tp, _ := s.Topic("t"); return tp }

	if err := apply(RecReassign, 0, []int32{4, 2, 3}); err != nil {
		t.Fatal(err)
	}
	tp := topic()
	r := tp.Reassigning[0]
	if !slices.Equal(tp.Replicas[0], []int32{4, 2, 3, 1}) || !slices.Equal(r.Adding(), []int32{4}) || !slices.Equal(r.Removing(), []int32{1}) {
		t.Fatalf("replicas %v, adding %v, removing %v", tp.Replicas[0], r.Adding(), r.Removing())
	}
	if !slices.Equal(tp.Reconfigured, []int32{0}) {
		t.Fatalf("reconfigured %v", tp.Reconfigured)
	}
	// A done record for another target is stale: skipped.
	if err := apply(RecReassignDone, 0, []int32{1, 2, 4}); err != nil {
		t.Fatal(err)
	}
	if _, ok := topic().Reassigning[0]; !ok {
		t.Fatal("a stale done record ended the reassignment")
	}
	// It survives a snapshot.
	snap, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	s2 := newStore()
	if err := s2.Restore(0, snap); err != nil {
		t.Fatal(err)
	}
	if t2, _ := s2.Topic("t"); !slices.Equal(t2.Reassigning[0].Target, []int32{4, 2, 3}) || !slices.Equal(t2.Reconfigured, []int32{0}) {
		t.Fatalf("after restore: %+v", t2)
	}
	if err := apply(RecReassignDone, 0, []int32{2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	tp = topic()
	if _, ok := tp.Reassigning[0]; ok || !slices.Equal(tp.Replicas[0], []int32{4, 2, 3}) {
		t.Fatalf("after done: replicas %v, reassigning %v", tp.Replicas[0], tp.Reassigning)
	}

	// Cancel: back to where it started, the union kept until the group
	// is there.
	if err := apply(RecReassign, 1, []int32{2, 3, 4}); err != nil {
		t.Fatal(err)
	}
	if err := apply(RecReassign, 1, nil); err != nil {
		t.Fatal(err)
	}
	tp = topic()
	r = tp.Reassigning[1]
	if !slices.Equal(r.Target, []int32{2, 3, 1}) || !slices.Equal(tp.Replicas[1], []int32{2, 3, 1, 4}) {
		t.Fatalf("after cancel: target %v, replicas %v", r.Target, tp.Replicas[1])
	}
	if err := apply(RecReassignDone, 1, []int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if tp = topic(); tp.Reassigning != nil || !slices.Equal(tp.Replicas[1], []int32{2, 3, 1}) {
		t.Fatalf("after the cancel's end: %v %v", tp.Replicas[1], tp.Reassigning)
	}
	if err := apply(RecReassign, 1, nil); !errors.Is(err, ErrNoReassignment) {
		t.Fatalf("cancel with none: %v", err)
	}
	// Same replicas in another order: the preferred leader changes, no
	// reassignment.
	if err := apply(RecReassign, 1, []int32{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if tp = topic(); tp.Reassigning != nil || !slices.Equal(tp.Replicas[1], []int32{1, 2, 3}) {
		t.Fatalf("reorder: %v %v", tp.Replicas[1], tp.Reassigning)
	}

	for _, c := range []struct {
		p      int32
		target []int32
	}{
		{0, []int32{1}},       // one replica
		{0, []int32{1, 1, 2}}, // twice
		{0, []int32{1, 9}},    // unknown broker
		{2, []int32{4, 1}},    // from one replica
	} {
		if err := apply(RecReassign, c.p, c.target); !errors.Is(err, ErrInvalidReplicaAssignment) {
			t.Errorf("reassign %d to %v: %v", c.p, c.target, err)
		}
	}
	if err := apply(RecReassign, 7, []int32{1, 2}); !errors.Is(err, ErrUnknownTopic) {
		t.Errorf("unknown partition: %v", err)
	}
}
