package servecmd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/partition"
	"github.com/stromhq/strom/internal/record"
	"github.com/stromhq/strom/internal/storage/logdir"
)

// TestStorageRebuildMetadata: the command the refused start points at
// rebuilds a lost metadata file, and a broker starts on it again.
func TestStorageRebuildMetadata(t *testing.T) {
	dir := t.TempDir()
	cfg := broker.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler)}
	b, err := broker.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Cluster().CreateTopic("sensors", 2, nil, false); err != nil {
		t.Fatal(err)
	}
	for i := range int32(2) {
		p, err := b.Cluster().Partition("sensors", i)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := record.AppendBatch(nil, record.BatchSpec{BaseTimestamp: time.Now().UnixMilli(), ProducerID: -1, ProducerEpoch: -1, BaseSequence: -1},
			[]record.Record{{Value: []byte("21.5")}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Append(batch, partition.AppendRules{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A single node keeps its metadata in a metadata log of one voter.
	if err := os.RemoveAll(filepath.Join(dir, logdir.ClusterMetadataDir)); err != nil {
		t.Fatal(err)
	}
	if _, err := broker.Start(cfg); !errors.Is(err, cluster.ErrNoMetadata) {
		t.Fatalf("start without the metadata log: %v, want a refusal (partition directories hold records)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "sensors-0")); err != nil {
		t.Fatalf("the refused start touched the partitions: %v", err)
	}
	var out, errOut bytes.Buffer
	if code := cli.Main(context.Background(), []string{"storage", "rebuild-metadata", "--data-dir", dir}, &out, &errOut, Commands()...); code != 0 {
		t.Fatalf("exit %d: %s%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(out.String(), "topic sensors: 2 partitions") {
		t.Fatalf("output %q", out.String())
	}
	out.Reset()
	errOut.Reset()
	if code := cli.Main(context.Background(), []string{"storage", "rebuild-metadata", "--data-dir", dir}, &out, &errOut, Commands()...); code == 0 ||
		!strings.Contains(errOut.String(), "exists") {
		t.Fatalf("a second rebuild: exit %d, %q; want a refusal", code, errOut.String())
	}
	b, err = broker.Start(cfg)
	if err != nil {
		t.Fatalf("start after the rebuild: %v", err)
	}
	defer b.Shutdown(context.Background())
	if tp, ok := b.Cluster().Topic("sensors"); !ok || tp.Partitions != 2 {
		t.Fatalf("sensors after the rebuild: %+v", tp)
	}
	if _, err := b.Cluster().Partition("sensors", 1); err != nil {
		t.Fatalf("sensors-1 after the rebuild: %v", err)
	}
}
