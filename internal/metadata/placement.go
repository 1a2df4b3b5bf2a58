package metadata

import (
	"errors"
	"fmt"
	"sort"
)

// ErrInvalidReplicationFactor is a replication factor below 1 or above the
// brokers that can hold a replica.
var ErrInvalidReplicationFactor = errors.New("invalid replication factor")

// ErrInvalidReplicaAssignment is a manual replica list that cannot be used:
// unknown or repeated brokers, or lists of different lengths.
var ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")

// PlacementBroker is a broker that can hold replicas: its id and rack ("" for
// none).
type PlacementBroker struct {
	ID   int32
	Rack string
}

// AssignReplicas places partitions partitions of rf replicas each on
// brokers, as Kafka's controller does for a new topic, so that clients and
// operators see the layout they know:
//
//   - Leaders (each partition's first replica) go round the brokers, one
//     each in turn, from the broker at start (a caller passes a random start
//     so that topics do not all lead on the same broker).
//   - Followers go to the least loaded brokers not yet in the partition,
//     a tie going to the first in a walk from the leader whose offset grows
//     by one every time the round of leaders wraps, so replicas stay
//     balanced and a broker's partitions have varied neighbours.
//   - With racks (every broker has one), the broker order alternates racks
//     and a partition's replicas take a rack not yet in it while one is
//     left, so rf replicas span min(rf, racks) racks; a broker without a
//     rack among brokers with one is an error, as in Kafka.
//
// The result is partition index → replica broker ids, leader first. It is
// deterministic for the same brokers (in any order), counts and start.
func AssignReplicas(brokers []PlacementBroker, partitions int32, rf int16, start int) ([][]int32, error) {
	n := len(brokers)
	if rf < 1 || int(rf) > n {
		return nil, fmt.Errorf("%w: %d, with %d brokers available", ErrInvalidReplicationFactor, rf, n)
	}
	if partitions < 1 {
		return nil, fmt.Errorf("%w: %d", ErrInvalidPartitions, partitions)
	}
	order, racks, err := placementOrder(brokers)
	if err != nil {
		return nil, err
	}
	start = ((start % n) + n) % n
	out := make([][]int32, partitions)
	load := make(map[int32]int, n) // replicas placed on each broker so far
	for p := 0; p < int(partitions); p++ {
		lead := (start + p) % n
		// The walk's offset: how many times the leaders have gone round,
		// so that a broker's partitions have different neighbours.
		shift := (start + p) / n
		replicas := []int32{order[lead].ID}
		load[order[lead].ID]++
		used := map[int32]bool{order[lead].ID: true}
		usedRacks := map[string]bool{order[lead].Rack: true}
		for len(replicas) < int(rf) {
			// Of the brokers not yet in the partition (and on a rack not
			// yet in it, while one is left), the least loaded, the first
			// in the walk from the leader on a tie.
			best := -1
			for k := 0; k < n-1; k++ {
				i := (lead + 1 + (shift+k)%(n-1)) % n
				b := order[i]
				if used[b.ID] || racks > 1 && len(usedRacks) < racks && usedRacks[b.Rack] {
					continue
				}
				if best < 0 || load[b.ID] < load[order[best].ID] {
					best = i
				}
			}
			b := order[best]
			replicas = append(replicas, b.ID)
			load[b.ID]++
			used[b.ID], usedRacks[b.Rack] = true, true
		}
		out[p] = replicas
	}
	return out, nil
}

// placementOrder sorts brokers by id and, when they have racks, interleaves
// the racks (the first broker of each rack, then the second of each, ...),
// returning how many racks there are (0 without racks).
func placementOrder(brokers []PlacementBroker) ([]PlacementBroker, int, error) {
	sorted := append([]PlacementBroker(nil), brokers...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	for i := 1; i < len(sorted); i++ {
		if sorted[i].ID == sorted[i-1].ID {
			return nil, 0, fmt.Errorf("placement: broker %d listed twice", sorted[i].ID)
		}
	}
	withRack := 0
	for _, b := range sorted {
		if b.Rack != "" {
			withRack++
		}
	}
	if withRack == 0 {
		return sorted, 0, nil
	}
	if withRack != len(sorted) {
		return nil, 0, fmt.Errorf("%w: %d of %d brokers have a broker.rack: give every broker one, or none", ErrInvalidReplicationFactor,
			withRack, len(sorted))
	}
	byRack := map[string][]PlacementBroker{}
	var rackNames []string
	for _, b := range sorted {
		if _, ok := byRack[b.Rack]; !ok {
			rackNames = append(rackNames, b.Rack)
		}
		byRack[b.Rack] = append(byRack[b.Rack], b)
	}
	sort.Strings(rackNames)
	out := make([]PlacementBroker, 0, len(sorted))
	for i := 0; len(out) < len(sorted); i++ {
		for _, r := range rackNames {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, len(rackNames), nil
}
