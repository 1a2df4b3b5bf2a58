package cluster

import (
	"testing"

	"github.com/stromhq/strom/internal/storage/logdir"
)

// A publishLeaders pass over idle partitions (views unchanged since they
// were checked) allocates nothing: it ran five times a second over every
// hosted replica, and a new list each time was 400 KB/s of garbage with
// 10,000 partitions.
func TestPublishPassOverIdleViewsAllocatesNothing(t *testing.T) {
	c := &Cluster{}
	c.reps.groups = map[uint64]*hosted{}
	for i := range 10000 {
		c.reps.groups[uint64(i)] = &hosted{key: logdir.Partition{Topic: "idle", Partition: int32(i)}}
	}
	var hs []*hosted
	hs = c.publishPass(hs, false) // the first pass sizes the list
	if allocs := testing.AllocsPerRun(20, func() { hs = c.publishPass(hs, false) }); allocs != 0 {
		t.Fatalf("%v allocations per pass over 10,000 idle views", allocs)
	}
	if len(hs) != 0 || cap(hs) < 10000 {
		t.Fatalf("the list handed back: len %d, cap %d", len(hs), cap(hs))
	}
}
