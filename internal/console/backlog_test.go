package console

import (
	"maps"
	"slices"
	"testing"
)

// TestCapBacklog: a live view's backfill fits its queue, shared between
// the partitions by their backlogs (issue 23: 600 records of history for
// a 512-record queue lost the history of two partitions of three).
func TestCapBacklog(t *testing.T) {
	tests := []struct {
		starts, ends, want map[int32]int64
		n                  int64
	}{
		// Fits: unchanged.
		{map[int32]int64{0: 10, 1: 0}, map[int32]int64{0: 20, 1: 5}, map[int32]int64{0: 10, 1: 0}, 15},
		// The demo's two minutes: 200 per partition, a 512 queue.
		{map[int32]int64{0: 100, 1: 300, 2: 0}, map[int32]int64{0: 300, 1: 500, 2: 200}, map[int32]int64{0: 130, 1: 330, 2: 30}, 512},
		// Uneven backlogs keep their proportions; an empty one stays.
		{map[int32]int64{0: 0, 1: 0, 2: 7}, map[int32]int64{0: 300, 1: 100, 2: 7}, map[int32]int64{0: 225, 1: 75, 2: 7}, 100},
	}
	for i, tt := range tests {
		got := capBacklog(tt.starts, tt.ends, tt.n)
		if !maps.Equal(got, tt.want) {
			t.Errorf("%d: %v, want %v", i, got, tt.want)
		}
		var total int64
		for p, at := range got {
			total += tt.ends[p] - at
			if at < tt.starts[p] || at > tt.ends[p] {
				t.Errorf("%d: partition %d starts at %d, outside [%d, %d]", i, p, at, tt.starts[p], tt.ends[p])
			}
		}
		if total > tt.n {
			t.Errorf("%d: %d records of backlog, more than %d", i, total, tt.n)
		}
	}
}

// TestBusiestSkipsDeleted (issue 23): the overview's legend kept deleted
// topics, whose history was still in the samples.
func TestBusiestSkipsDeleted(t *testing.T) {
	samples := []sample{
		{t: 1, rates: map[string]float64{"gone": 100, "a": 1, "b": 2}},
		{t: 2, rates: map[string]float64{"gone": 100, "a": 1, "b": 2}},
		{t: 3, rates: map[string]float64{"a": 1, "b": 2}},
	}
	got := busiest(samples, func(sm sample) map[string]float64 { return sm.rates })
	if want := []string{"b", "a"}; !slices.Equal(got, want) {
		t.Errorf("busiest = %v, want %v", got, want)
	}
	if got := busiest(nil, func(sm sample) map[string]float64 { return sm.rates }); len(got) != 0 {
		t.Errorf("no samples: %v", got)
	}
}
