package metadata

import (
	"slices"
	"testing"
)

// A deposed leader's report arriving after its successor's is skipped, on
// every node alike; a deleted topic's leaders go with it.
func TestPartitionLeaderRecords(t *testing.T) {
	s := newStore()
	id := TopicID{1}
	if _, err := s.applyLocked(Record{Type: RecCreateTopics, Topics: []Topic{{Name: "t", ID: id, Partitions: 2, Replicas: [][]int32{{1, 2, 3}, {2, 3, 1}}}}}); err != nil {
		t.Fatal(err)
	}
	apply := func(l PartitionLeader) {
		t.Helper()
		if _, err := s.applyLocked(Record{Type: RecPartitionLeader, Leader: &l}); err != nil {
			t.Fatal(err)
		}
	}
	apply(PartitionLeader{Topic: "t", TopicID: id, Partition: 0, Leader: 1, Epoch: 3, ISR: []int32{1, 2, 3}})
	apply(PartitionLeader{Topic: "t", TopicID: id, Partition: 0, Leader: 2, Epoch: 5, ISR: []int32{2, 3}})
	apply(PartitionLeader{Topic: "t", TopicID: id, Partition: 0, Leader: 1, Epoch: 3, ISR: []int32{1}}) // stale
	apply(PartitionLeader{Topic: "t", TopicID: TopicID{9}, Partition: 1, Leader: 1, Epoch: 9})          // another topic id
	l, ok := s.PartitionLeader("t", 0)
	if !ok || l.Leader != 2 || l.Epoch != 5 || !slices.Equal(l.ISR, []int32{2, 3}) {
		t.Fatalf("leader %+v %v", l, ok)
	}
	if _, ok := s.PartitionLeader("t", 1); ok {
		t.Fatal("a record of another topic id applied")
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
	if l2, ok := s2.PartitionLeader("t", 0); !ok || l2.Epoch != 5 {
		t.Fatalf("after restore: %+v %v", l2, ok)
	}
	if _, err := s.applyLocked(Record{Type: RecDeleteTopic, Name: "t"}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.PartitionLeader("t", 0); ok {
		t.Fatal("a deleted topic's leader remains")
	}
}
