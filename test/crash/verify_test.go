package crash

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// loc is where a record is stored.
type loc struct {
	partition int32
	offset    int64
}

// createTopic creates topic with the given partitions through addr.
func createTopic(t *testing.T, addr, topic string, partitions int32) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// readBack reads every record of topic from the start (up to the end
// offsets listed first) and returns where each value is stored; a value
// stored twice is an error.
func readBack(t *testing.T, addr, topic string) map[string]loc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	var total, read int64
	ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
	stored := map[string]loc{}
	for read < total {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", read, total)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			read++
			v := string(r.Value)
			if prev, dup := stored[v]; dup {
				t.Errorf("value %s stored twice: partition %d offset %d and partition %d offset %d", v, prev.partition, prev.offset, r.Partition, r.Offset)
			}
			stored[v] = loc{r.Partition, r.Offset}
		})
	}
	return stored
}

// checkAcked reports every acknowledged value that is not stored where its
// acknowledgement said (the first few of each kind in detail).
func checkAcked(t *testing.T, acked, stored map[string]loc) (lost, moved int) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no record was acknowledged")
	}
	for v, at := range acked {
		got, ok := stored[v]
		switch {
		case !ok:
			lost++
			if lost <= 5 {
				t.Errorf("acknowledged %s (partition %d offset %d) is gone", v, at.partition, at.offset)
			}
		case got != at:
			moved++
			if moved <= 5 {
				t.Errorf("acknowledged %s at partition %d offset %d is now at partition %d offset %d", v, at.partition, at.offset, got.partition, got.offset)
			}
		}
	}
	return lost, moved
}
