package cluster

import (
	"errors"
	"io/fs"
	"log/slog"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/vfs/errorfs"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func appendValue(t *testing.T, c *Cluster, topic string, part int32, v string, pid int64) {
	t.Helper()
	p, err := c.Partition(topic, part)
	if err != nil {
		t.Fatal(err)
	}
	spec := record.BatchSpec{BaseTimestamp: 1, ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1}
	if pid >= 0 {
		spec.ProducerID, spec.ProducerEpoch, spec.BaseSequence = pid, 0, 0
	}
	b, err := record.AppendBatch(nil, spec, []record.Record{{Value: []byte(v)}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(b, partition.AppendRules{}); err != nil {
		t.Fatal(err)
	}
}

// TestMissingMetadataRefusesStart: with __strom_metadata gone, start
// refuses and deletes nothing (before, it removed every partition directory
// as a deleted topic's); RebuildMetadata brings every topic back under its
// id, with its records, and producer ids are not handed out again.
func TestMissingMetadataRefusesStart(t *testing.T) {
	mem := memfs.New()
	c := open(t, mem)
	orders, err := c.CreateTopic("orders", 3, map[string]string{"retention.ms": "60000"}, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.OffsetsPartition(true); err != nil {
		t.Fatal(err)
	}
	pid, err := c.AllocateProducerID()
	if err != nil {
		t.Fatal(err)
	}
	appendValue(t, c, "orders", 2, "kept", pid)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := mem.Remove("/data/" + metadata.FileName); err != nil {
		t.Fatal(err)
	}

	_, err = Open(Config{DataDir: "/data", FS: mem, Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, ErrNoMetadata) || !strings.Contains(err.Error(), "rebuild-metadata") {
		t.Fatalf("open without metadata: %v; want ErrNoMetadata saying how to rebuild", err)
	}
	for _, d := range []string{"/data/orders-0", "/data/orders-2/00000000000000000000.log", "/data/__consumer_offsets-0"} {
		if _, err := mem.Stat(d); err != nil {
			t.Fatalf("%s gone after the refused start: %v", d, err)
		}
	}

	rep, err := RebuildMetadata(mem, "/data", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Topics) != 2 || len(rep.NewIDs) != 0 || len(rep.Gaps) != 0 {
		t.Fatalf("rebuild report %+v", rep)
	}
	if _, err := RebuildMetadata(mem, "/data", nil); !errors.Is(err, metadata.ErrStoreExists) {
		t.Fatalf("second rebuild: %v; want ErrStoreExists", err)
	}
	c = open(t, mem)
	defer c.Close()
	got, ok := c.Topic("orders")
	if !ok || got.ID != orders.ID || got.Partitions != 3 {
		t.Fatalf("orders after rebuild: %+v (had id %s)", got, orders.ID)
	}
	if off, ok := c.Topic(OffsetsTopic); !ok || !off.Internal || off.Configs["cleanup.policy"] != "compact" {
		t.Fatalf("offsets topic after rebuild: %+v", off)
	}
	if p, _ := c.Partition("orders", 2); p == nil || p.HighWatermark() != 1 {
		t.Fatal("the record of orders-2 is gone after the rebuild")
	}
	if next, _ := c.AllocateProducerID(); next <= pid {
		t.Fatalf("producer id %d handed out again after the rebuild (had %d)", next, pid)
	}
}

// TestUnknownDirectorySetAside: a partition directory with records that no
// topic and no tombstone claims is renamed aside, never deleted; one with
// no records is removed.
func TestUnknownDirectorySetAside(t *testing.T) {
	mem := memfs.New()
	c := open(t, mem)
	if _, err := c.CreateTopic("keep", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	appendValue(t, c, "keep", 0, "x", -1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	seg, err := mem.ReadFile("/data/keep-0/00000000000000000000.log")
	if err != nil || len(seg) == 0 {
		t.Fatalf("segment: %d bytes, %v", len(seg), err)
	}
	mem.MkdirAll("/data/restored-0")
	mem.WriteFile("/data/restored-0/00000000000000000000.log", seg)
	mem.MkdirAll("/data/empty-0")
	mem.WriteFile("/data/empty-0/00000000000000000000.log", nil)

	c = open(t, mem)
	defer c.Close()
	if _, err := mem.Stat("/data/restored-0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("restored-0 still in place: %v", err)
	}
	names, _ := mem.List("/data")
	var stray string
	for _, n := range names {
		if strings.HasPrefix(n, "restored-0.") && strings.HasSuffix(n, "-stray") {
			stray = n
		}
	}
	if stray == "" {
		t.Fatalf("restored-0 not set aside: %v", names)
	}
	if b, err := mem.ReadFile("/data/" + stray + "/00000000000000000000.log"); err != nil || string(b) != string(seg) {
		t.Fatalf("set-aside segment changed: %d bytes, %v", len(b), err)
	}
	if _, err := mem.Stat("/data/empty-0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("empty-0, a directory with no record, kept: %v", err)
	}
	// The next start leaves the stray directory alone.
	c.Close()
	c = open(t, mem)
	if _, err := mem.Stat("/data/" + stray); err != nil {
		t.Fatal(err)
	}
}

// TestInterruptedDeleteFinishedAtStart: a topic deletion whose directory
// removal failed (a crash, an I/O error) is finished at the next start from
// the tombstone, which is then dropped; a topic of the same name created
// meanwhile starts empty.
func TestInterruptedDeleteFinishedAtStart(t *testing.T) {
	mem := memfs.New()
	failRemove := false
	efs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		if failRemove && op == errorfs.OpRemove && strings.Contains(name, "gone-") {
			return errorfs.ErrInjected
		}
		return nil
	}))
	c := open(t, efs)
	if _, err := c.CreateTopic("gone", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	appendValue(t, c, "gone", 0, "old", -1)
	failRemove = true
	if err := c.DeleteTopic("gone"); err == nil {
		t.Fatal("delete with failing removes succeeded")
	}
	failRemove = false
	if _, err := mem.Stat("/data/gone-0"); err != nil {
		t.Fatalf("the injected failure did not keep gone-0: %v", err)
	}
	// A new topic of the same name does not inherit the old records.
	if _, err := c.CreateTopic("gone", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	if p, _ := c.Partition("gone", 0); p == nil || p.HighWatermark() != 0 {
		t.Fatal("the new topic gone holds the deleted topic's records")
	}
	if err := c.DeleteTopic("gone"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = open(t, efs)
	for _, d := range []string{"/data/gone-0", "/data/gone-1"} {
		if _, err := mem.Stat(d); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s of the deleted topic kept: %v", d, err)
		}
	}
	if len(c.store.Deleted()) != 0 {
		t.Fatalf("tombstones left: %v", c.store.Deleted())
	}
	c.Close()
}

// TestTombstonesOnFullDisk: a start that finishes a deletion from its
// tombstone but cannot rewrite the metadata file (a full disk) still
// starts, and drops the tombstone at a later start.
func TestTombstonesOnFullDisk(t *testing.T) {
	mem := memfs.New()
	failRemove, full := false, false
	efs := errorfs.Wrap(mem, errorfs.InjectorFunc(func(op errorfs.Op, name string) error {
		switch {
		case failRemove && op == errorfs.OpRemove && strings.Contains(name, "gone-"):
			return errorfs.ErrInjected
		case full && op == errorfs.OpWrite && strings.HasSuffix(name, metadata.FileName+".tmp"):
			return &errorfs.PartialWrite{N: 0, Err: syscall.ENOSPC}
		}
		return nil
	}))
	c := open(t, efs)
	if _, err := c.CreateTopic("gone", 1, nil, false); err != nil {
		t.Fatal(err)
	}
	failRemove = true
	if err := c.DeleteTopic("gone"); err == nil {
		t.Fatal("delete with failing removes succeeded")
	}
	failRemove = false
	c.Close()
	full = true
	c = open(t, efs) // fails the test if the start fails
	if _, err := mem.Stat("/data/gone-0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("gone-0 kept: %v", err)
	}
	if len(c.store.Deleted()) == 0 {
		t.Fatal("the tombstone was dropped although the file could not be written")
	}
	c.Close()
	full = false
	c = open(t, efs)
	defer c.Close()
	if len(c.store.Deleted()) != 0 {
		t.Fatalf("tombstones left once the disk has room: %v", c.store.Deleted())
	}
}

// TestRebuildWithTwoIDsKeepsEveryPartition: directories of one topic name
// that carry two topic ids (a restored copy of an older topic beside the
// newer one) get one new id from the rebuild, written into every one of
// them, so the next start opens them all. Before, the directories kept
// their old ids and the start set every partition aside as -stray.
func TestRebuildWithTwoIDsKeepsEveryPartition(t *testing.T) {
	mem := memfs.New()
	c := open(t, mem)
	if _, err := c.CreateTopic("mixed", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	appendValue(t, c, "mixed", 0, "zero", -1)
	appendValue(t, c, "mixed", 1, "one", -1)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	// partition 1 carries another topic's id, as a restore can leave it.
	if err := mem.WriteFile("/data/mixed-1/partition.metadata", []byte("version: 0\ntopic_id: AAECAwQFBgcICQoLDA0ODw\n")); err != nil {
		t.Fatal(err)
	}
	if err := mem.Remove("/data/" + metadata.FileName); err != nil {
		t.Fatal(err)
	}
	rep, err := RebuildMetadata(mem, "/data", slog.New(slog.DiscardHandler))
	if err != nil || len(rep.NewIDs) != 1 {
		t.Fatalf("rebuild: %+v %v", rep, err)
	}
	c = open(t, mem)
	defer c.Close()
	for i, want := range []int64{1, 1} {
		if p, _ := c.Partition("mixed", int32(i)); p == nil || p.HighWatermark() != want {
			t.Fatalf("mixed-%d after the rebuild and a restart lost its record", i)
		}
	}
	if names, _ := mem.List("/data"); slices.ContainsFunc(names, func(n string) bool { return strings.HasSuffix(n, "-stray") }) {
		t.Fatalf("a partition was set aside: %v", names)
	}
}
