package servecmd

import (
	"bytes"
	"context"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/cli"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/testutil"
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

// TestStorageFormatAddScram: format --add-scram stores a user who then
// logs in on a SASL_PLAINTEXT listener, with SCRAM and with PLAIN; a bad
// value is refused before anything is written.
func TestStorageFormatAddScram(t *testing.T) {
	_, id := run("storage", "random-uuid")
	id = strings.TrimSpace(id)
	dir := filepath.Join(t.TempDir(), "logs")
	file := serverProperties(t, 1, "1@localhost:19191", dir)
	if code, out := run("storage", "format", "-t", id, "-c", file, "--add-scram", "SCRAM-SHA-256=[name=admin]"); code == 0 || !strings.Contains(out, "add-scram") {
		t.Fatalf("bad --add-scram: exit %d: %s", code, out)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("the refused format touched %s: %v", dir, err)
	}
	code, out := run("storage", "format", "-t", id, "-c", file,
		"--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]", "-S", "SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]")
	if code != 0 || !strings.Contains(out, "added SCRAM user admin (SCRAM-SHA-512)") {
		t.Fatalf("format: exit %d: %s", code, out)
	}
	b, err := broker.Start(broker.Config{DataDir: dir, HTTPAddr: "-", Props: map[string]string{"node.id": "1", "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-512"},
		Listeners: []metadata.Listener{{Name: "SASL_PLAINTEXT", Protocol: "SASL_PLAINTEXT", Addr: "127.0.0.1:0"}},
		Logger:    slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	// A single node is a cluster of one: the users format wrote went into
	// its metadata log at the first start, the file set aside.
	for name, want := range map[string]bool{metadata.FileName: false, metadata.FileName + ".migrated": true, logdir.ClusterMetadataDir: true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s after the first start: %v, want it there: %v", name, err, want)
		}
	}
	for _, m := range []sasl.Mechanism{scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism(), plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism()} {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.SASL(m))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = cl.Ping(ctx)
		cancel()
		cl.Close()
		if err != nil {
			t.Fatalf("%s login of the formatted user: %v", m.Name(), err)
		}
	}
}

// TestReadmeSecuredBroker: the README's secured server.properties starts a
// broker (its paths and ports replaced by the test's) whose SASL_SSL
// listener takes the admin formatted with --add-scram, with ACLs on.
func TestReadmeSecuredBroker(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### A secured broker")
	if i < 0 {
		t.Fatal("README has no secured broker section")
	}
	block := s[i:]
	block = block[strings.Index(block, "```\n")+4:]
	block = block[:strings.Index(block, "```")]
	props, err := metadata.ParseProperties(strings.NewReader(block))
	if err != nil {
		t.Fatal(err)
	}
	ca := testutil.NewCA(t, "readme CA")
	leaf := ca.Issue(t, testutil.LeafOptions{Subject: pkix.Name{CommonName: "localhost"}, Server: true})
	props["ssl.keystore.location"] = testutil.WriteFile(t, t.TempDir(), "server.pem", leaf.CertPEM, leaf.KeyPEM)
	bc, err := metadata.NewBrokerConfig(props)
	if err != nil {
		t.Fatal(err)
	}
	l, err := bc.Layout() // the README's listeners, as written
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Listeners) != 1 || l.Listeners[0].Protocol != "SASL_SSL" {
		t.Fatalf("README listeners %+v", l.Listeners)
	}
	l.Listeners[0].Addr, l.Listeners[0].Advertised = "127.0.0.1:0", "" // a free port, advertised as bound
	dir := t.TempDir()
	if _, err := broker.AddScram(dir, []string{"SCRAM-SHA-512=[name=admin,password=admin-secret]"}); err != nil {
		t.Fatal(err)
	}
	br, err := broker.Start(broker.Config{DataDir: dir, HTTPAddr: "-", Props: props, Listeners: l.Listeners, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer br.Shutdown(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(br.KafkaAddr().String()), kgo.DialTLSConfig(testutil.ClientTLS(ca, nil)),
		kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeACLsRequest()
	req.ResourceType, req.ResourcePatternType, req.Operation, req.PermissionType = kmsg.ACLResourceTypeAny, kmsg.ACLResourcePatternTypeAny, kmsg.ACLOperationAny, kmsg.ACLPermissionTypeAny
	resp, err := req.RequestWith(ctx, cl)
	if err != nil || resp.ErrorCode != 0 {
		t.Fatalf("admin's DescribeAcls over the README's listener: %v %+v", err, resp)
	}
}
