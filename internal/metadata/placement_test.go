package metadata

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

func brokersN(n int, racks int) []PlacementBroker {
	out := make([]PlacementBroker, n)
	for i := range out {
		out[i].ID = int32(i + 1)
		if racks > 0 {
			out[i].Rack = fmt.Sprintf("rack-%d", i%racks)
		}
	}
	return out
}

// TestAssignReplicasProperties: over random clusters, every partition gets
// rf distinct brokers, leaders are spread evenly (at most one apart),
// every broker's replicas are balanced (at most two apart: leaders go
// round, followers fill the least loaded), partitions span
// min(rf, racks) racks, and the result does not depend on the brokers'
// order.
func TestAssignReplicasProperties(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 2000; trial++ {
		n := 1 + rng.IntN(9)
		racks := 0
		if rng.IntN(2) == 0 {
			racks = 1 + rng.IntN(n)
		}
		rf := int16(1 + rng.IntN(n))
		parts := int32(1 + rng.IntN(60))
		start := rng.IntN(100)
		bs := brokersN(n, racks)
		got, err := AssignReplicas(bs, parts, rf, start)
		if err != nil {
			t.Fatalf("n=%d racks=%d rf=%d: %v", n, racks, rf, err)
		}
		rackOf := map[int32]string{}
		for _, b := range bs {
			rackOf[b.ID] = b.Rack
		}
		leaders := map[int32]int{}
		replicas := map[int32]int{}
		for p, rs := range got {
			if len(rs) != int(rf) {
				t.Fatalf("partition %d: %v, want %d replicas", p, rs, rf)
			}
			seen := map[int32]bool{}
			inRacks := map[string]bool{}
			for _, r := range rs {
				if seen[r] || r < 1 || int(r) > n {
					t.Fatalf("partition %d: %v", p, rs)
				}
				seen[r] = true
				replicas[r]++
				inRacks[rackOf[r]] = true
			}
			leaders[rs[0]]++
			if racks > 0 && len(inRacks) != min(int(rf), racks) {
				t.Fatalf("n=%d racks=%d rf=%d partition %d: %v spans %d racks", n, racks, rf, p, rs, len(inRacks))
			}
		}
		if spread(leaders, n) > 1 {
			t.Fatalf("n=%d parts=%d: leaders %v", n, parts, leaders)
		}
		if racks == 0 && spread(replicas, n) > 2 {
			t.Fatalf("n=%d rf=%d parts=%d: replicas %v", n, rf, parts, replicas)
		}
		shuffled := slices.Clone(bs)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		again, _ := AssignReplicas(shuffled, parts, rf, start)
		if fmt.Sprint(again) != fmt.Sprint(got) {
			t.Fatalf("depends on the brokers' order: %v vs %v", got, again)
		}
	}
}

func spread(counts map[int32]int, n int) int {
	lo, hi := -1, 0
	for id := int32(1); id <= int32(n); id++ {
		c := counts[id]
		if lo < 0 || c < lo {
			lo = c
		}
		hi = max(hi, c)
	}
	return hi - lo
}

func TestAssignReplicasRefusals(t *testing.T) {
	if _, err := AssignReplicas(brokersN(3, 0), 3, 4, 0); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 4 of 3: %v", err)
	}
	if _, err := AssignReplicas(brokersN(3, 0), 3, 0, 0); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("rf 0: %v", err)
	}
	mixed := brokersN(3, 2)
	mixed[1].Rack = ""
	if _, err := AssignReplicas(mixed, 3, 2, 0); !errors.Is(err, ErrInvalidReplicationFactor) {
		t.Fatalf("some brokers without a rack: %v", err)
	}
	// The tutorial's three brokers, RF 3: every partition on all three,
	// leaders one each.
	got, err := AssignReplicas(brokersN(3, 0), 3, 3, 0)
	if err != nil || fmt.Sprint(got) != "[[1 2 3] [2 3 1] [3 1 2]]" {
		t.Fatalf("3 brokers, 3 partitions, rf 3: %v %v", got, err)
	}
}
