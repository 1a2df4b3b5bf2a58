package servecmd

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
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
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "__strom_metadata")); err != nil {
		t.Fatal(err)
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
}
