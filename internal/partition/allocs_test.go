package partition

import (
	"testing"

	"github.com/stromhq/strom/internal/record"
)

// TestAppendAllocatesAlmostNothing: issue 22's steady state, under 0.1
// allocations per batch appended (an idempotent producer's, on real
// files). Each append allocated two objects before: its batch headers
// and the log's wake-up channel (remade at every append, waited on or
// not).
func TestAppendAllocatesAlmostNothing(t *testing.T) {
	p := openOnDisk(t)
	const runs = 2000
	batches := make([][]byte, runs+2)
	for i := range batches {
		recs := []record.Record{{Value: make([]byte, 1024)}}
		b, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: 7, ProducerEpoch: 0, BaseSequence: int32(i)}, recs)
		if err != nil {
			t.Fatal(err)
		}
		batches[i] = b
	}
	next := 0
	allocs := testing.AllocsPerRun(runs, func() {
		if _, err := p.Append(batches[next], AppendRules{}); err != nil {
			t.Fatal(err)
		}
		next++
	})
	t.Logf("%.3f allocations per append", allocs)
	if allocs >= 0.1 {
		t.Fatalf("%.2f allocations per append, want under 0.1", allocs)
	}
	// A waiter still hears of the next append.
	changed := p.log.Changed()
	if _, err := p.Append(batches[next], AppendRules{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("the append did not close the channel Changed handed out")
	}
}
