package cluster

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func open(t *testing.T, fs vfs.FS) *Cluster {
	t.Helper()
	c, err := Open(Config{DataDir: "/data", FS: fs, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTopicsLifecycleAndRestart(t *testing.T) {
	mem := memfs.New()
	c := open(t, mem)
	if _, err := c.CreateTopic("events", 2, map[string]string{"retention.ms": "60000"}, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateTopic("events", 2, nil, false); !errors.Is(err, metadata.ErrTopicExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.CreateTopic("dry", 1, nil, true); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Topic("dry"); ok {
		t.Fatal("validate-only created a topic")
	}
	p, err := c.Partition("events", 1)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}, []record.Record{{Value: []byte("x")}})
	if _, err := p.Append(b, partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Partition("events", 2); !errors.Is(err, ErrUnknownPartition) {
		t.Fatalf("partition 2: %v", err)
	}
	if _, err := c.Partition("nope", 0); !errors.Is(err, metadata.ErrUnknownTopic) {
		t.Fatalf("unknown topic: %v", err)
	}
	if err := c.CreatePartitions("events", 4, false); err != nil {
		t.Fatal(err)
	}
	if len(c.Partitions("events")) != 4 {
		t.Fatal("new partitions not open")
	}
	a, _ := c.AllocateProducerID()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = open(t, mem)
	if p, err := c.Partition("events", 1); err != nil || p.HighWatermark() != 1 {
		t.Fatalf("after restart: %v", err)
	}
	if id, _ := c.AllocateProducerID(); id <= a {
		t.Fatalf("producer id %d reused (had %d)", id, a)
	}
	if err := c.DeleteTopic("events"); err != nil {
		t.Fatal(err)
	}
	if _, err := mem.Stat("/data/events-0"); err == nil {
		t.Fatal("partition directory left after delete")
	}
	c.Close()
}

// A partition directory that no topic claims and that holds no record (a
// creation cut short by a crash) is removed at start.
func TestOrphanPartitionRemoved(t *testing.T) {
	mem := memfs.New()
	c := open(t, mem)
	c.Close()
	mem.MkdirAll("/data/ghost-0")
	mem.WriteFile("/data/ghost-0/00000000000000000000.log", nil)
	c = open(t, mem)
	defer c.Close()
	if _, err := mem.Stat("/data/ghost-0"); err == nil {
		t.Fatal("orphan partition directory kept")
	}
}

// max.broker.partitions bounds what CreateTopics and CreatePartitions may
// add, validate-only included; the internal offsets topic is never refused.
func TestPartitionLimit(t *testing.T) {
	bc, err := metadata.NewBrokerConfig(map[string]string{"max.broker.partitions": "5"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(Config{DataDir: "/data", FS: memfs.New(), Broker: bc, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateTopic("a", 3, nil, false); err != nil {
		t.Fatal(err)
	}
	for _, validateOnly := range []bool{true, false} {
		if _, err := c.CreateTopic("b", 3, nil, validateOnly); !errors.Is(err, metadata.ErrInvalidPartitions) {
			t.Fatalf("6 partitions of 5 (validate only %v): %v", validateOnly, err)
		}
		if err := c.CreatePartitions("a", 6, validateOnly); !errors.Is(err, metadata.ErrInvalidPartitions) {
			t.Fatalf("grow to 6 of 5 (validate only %v): %v", validateOnly, err)
		}
	}
	if _, ok := c.Topic("b"); ok {
		t.Fatal("refused topic created")
	}
	if _, err := c.CreateTopic("b", 1_000_000_000, nil, false); !errors.Is(err, metadata.ErrInvalidPartitions) {
		t.Fatalf("a billion partitions: %v", err)
	}
	if err := c.CreatePartitions("a", 5, false); err != nil {
		t.Fatal(err)
	}
	if _, err := c.OffsetsPartition(true); err != nil {
		t.Fatalf("offsets topic past the limit: %v", err)
	}
}
