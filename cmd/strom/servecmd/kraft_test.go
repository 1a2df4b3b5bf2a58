package servecmd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/internal/storage/logdir"
)

// serverProperties writes a tutorial-style KRaft file for node id.
func serverProperties(t *testing.T, id int, voters, dataDir string) string {
	t.Helper()
	body := fmt.Sprintf(`process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d
advertised.listeners=PLAINTEXT://localhost:%d
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
num.network.threads=3
num.io.threads=8
log.dirs=%s
offsets.topic.replication.factor=1
log.retention.hours=168
`, id, voters, 19090+id, 19190+id, 19090+id, dataDir)
	p := filepath.Join(t.TempDir(), fmt.Sprintf("server%d.properties", id))
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func run(args ...string) (int, string) {
	var out bytes.Buffer
	code := cli.Main(context.Background(), args, &out, &out, Commands()...)
	return code, out.String()
}

// TestKRaftFileSetsListenersAndDataDir: the file's listeners,
// advertised.listeners and log.dirs become the broker's unless flags say
// otherwise.
func TestKRaftFileSetsListenersAndDataDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "kraft-combined-logs")
	file := serverProperties(t, 1, "1@localhost:19191", dir)
	serve := Commands()[0]
	if err := serve.ParseFlags([]string{"--config", file}); err != nil {
		t.Fatal(err)
	}
	props, err := loadProps(file, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := broker.Config{KafkaAddr: ":9092", DataDir: "data"}
	if err := applyLayout(serve, &cfg, props, file); err != nil {
		t.Fatal(err)
	}
	if cfg.KafkaAddr != "127.0.0.1:19091" || cfg.AdvertisedAddr != "localhost:19091" || cfg.DataDir != dir {
		t.Fatalf("from the file: %+v", cfg)
	}
	serve = Commands()[0]
	if err := serve.ParseFlags([]string{"--config", file, "--kafka-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	cfg = broker.Config{KafkaAddr: "127.0.0.1:0", DataDir: "data"}
	if err := applyLayout(serve, &cfg, props, file); err != nil || cfg.KafkaAddr != "127.0.0.1:0" || cfg.DataDir != dir {
		t.Fatalf("a flag wins: %+v %v", cfg, err)
	}
}

// TestStorageFormat: random-uuid, then format as the tutorial does; a
// second format is refused; a broker of another node.id refuses the
// directory; the broker reports the formatted cluster id.
func TestStorageFormat(t *testing.T) {
	code, id := run("storage", "random-uuid")
	id = strings.TrimSpace(id)
	if code != 0 || logdir.CheckUUID(id) != nil {
		t.Fatalf("random-uuid: exit %d %q", code, id)
	}
	dir := filepath.Join(t.TempDir(), "logs")
	file := serverProperties(t, 1, "1@localhost:19191", dir)
	if code, out := run("storage", "format", "-t", id, "-c", file); code != 0 || !strings.Contains(out, "cluster.id "+id) {
		t.Fatalf("format: exit %d: %s", code, out)
	}
	if code, out := run("storage", "format", "-t", id, "-c", file); code == 0 || !strings.Contains(out, "already formatted") {
		t.Fatalf("format again: exit %d: %s", code, out)
	}
	if code, out := run("storage", "format", "-t", id, "-c", file, "--ignore-formatted"); code != 0 {
		t.Fatalf("--ignore-formatted: exit %d: %s", code, out)
	}
	if code, out := run("storage", "format", "-t", "nope", "-c", file); code == 0 || !strings.Contains(out, "UUID") {
		t.Fatalf("a bad id: exit %d: %s", code, out)
	}
	_, err := broker.Start(broker.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Props: map[string]string{"node.id": "2"},
		Logger: slog.New(slog.DiscardHandler)})
	if !errors.Is(err, logdir.ErrOtherNode) {
		t.Fatalf("node.id 2 on node 1's directory: %v", err)
	}
	b, err := broker.Start(broker.Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Props: map[string]string{"node.id": "1"},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	if got := b.Cluster().ClusterID(); got != id {
		t.Fatalf("cluster id %q, want the formatted %q", got, id)
	}
}
