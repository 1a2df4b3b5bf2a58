package broker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/logdir"
	"github.com/stromhq/strom/internal/storage/vfs/memfs"
)

func start(t *testing.T, dir string) *Broker {
	t.Helper()
	b, err := Start(Config{DataDir: dir, KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stop(t *testing.T, b *Broker) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// Everything acknowledged before a clean restart is read back after it, in
// order, and new records continue at the right offsets.
func TestRestartKeepsAcknowledgedRecords(t *testing.T) {
	dir := t.TempDir()
	b := start(t, dir)
	ctx := context.Background()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 4, 1, nil, "restart"); err != nil {
		t.Fatal(err)
	}
	// A compacted topic, for the cleaner's gauges.
	if _, err := adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "latest"); err != nil {
		t.Fatal(err)
	}
	const n = 4000
	for i := 0; i < n; i++ {
		cl.Produce(ctx, &kgo.Record{Topic: "restart", Key: []byte(fmt.Sprint(i % 17)), Value: []byte(fmt.Sprint(i))}, func(_ *kgo.Record, err error) {
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop(t, b)

	b = start(t, dir)
	defer stop(t, b)
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.ConsumeTopics("restart"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]bool{}
	deadline, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	for len(seen) < n {
		fs := cl.PollFetches(deadline)
		if err := deadline.Err(); err != nil {
			t.Fatalf("read %d of %d records after restart", len(seen), n)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatal(err) })
		fs.EachRecord(func(r *kgo.Record) {
			if seen[string(r.Value)] {
				t.Fatalf("record %s read twice", r.Value)
			}
			seen[string(r.Value)] = true
		})
	}
	// The HTTP listener answers health and metrics.
	resp, err := http.Get("http://" + b.HTTPAddr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `strom_partition_log_end_offset{partition="0",topic="restart"}`) {
		t.Fatalf("metrics lack the partition gauges:\n%.2000s", body)
	}
	if !strings.Contains(string(body), "strom_request_bytes_queued_limit 1.048576e+08") {
		t.Fatalf("metrics lack the request budget:\n%.2000s", body)
	}
	if !strings.Contains(string(body), "strom_partitions_max ") || !strings.Contains(string(body), "strom_segment_files_cached ") {
		t.Fatalf("metrics lack the descriptor budget:\n%.2000s", body)
	}
	if !strings.Contains(string(body), "strom_log_cleaner_passes_total ") ||
		!strings.Contains(string(body), `strom_partition_cleaner_dirty_ratio{partition="0",topic="latest"}`) {
		t.Fatalf("metrics lack the log cleaner:\n%s", body)
	}
}

// The request budget must hold a request of the maximum size; -1 lifts it.
func TestKafkaServerConfig(t *testing.T) {
	tests := []struct {
		props   map[string]string
		queued  int64
		timeout time.Duration
		wantErr bool
	}{
		{props: nil, queued: 100 << 20, timeout: 30 * time.Second},
		{props: map[string]string{"queued.max.request.bytes": "-1", "socket.request.read.timeout.ms": "-1"}, queued: -1, timeout: -1},
		{props: map[string]string{"queued.max.request.bytes": "1048576", "socket.request.max.bytes": "1048576", "socket.request.read.timeout.ms": "500"},
			queued: 1 << 20, timeout: 500 * time.Millisecond},
		{props: map[string]string{"socket.request.max.bytes": "209715200"}, wantErr: true},
		{props: map[string]string{"queued.max.request.bytes": "0"}, wantErr: true},
		{props: map[string]string{"queued.max.request.bytes": "-2"}, wantErr: true},
		{props: map[string]string{"fetch.max.bytes": "1023"}, wantErr: true},
		{props: map[string]string{"socket.request.max.bytes": "0"}, wantErr: true},
		{props: map[string]string{"socket.request.max.bytes": "2147483648", "queued.max.request.bytes": "-1"}, wantErr: true},
	}
	for _, tt := range tests {
		bc, err := metadata.NewBrokerConfig(tt.props)
		if err != nil {
			t.Fatal(err)
		}
		got, err := kafkaServerConfig(bc)
		if tt.wantErr {
			if !errors.Is(err, metadata.ErrInvalidConfig) {
				t.Errorf("%v: err %v, want invalid config", tt.props, err)
			}
			continue
		}
		if err != nil || got.MaxQueuedRequestBytes != tt.queued || got.RequestReadTimeout != tt.timeout {
			t.Errorf("%v: %+v %v", tt.props, got, err)
		}
	}
	if _, err := Start(Config{DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "-",
		Props: map[string]string{"queued.max.request.bytes": "1"}, Logger: slog.New(slog.DiscardHandler)}); !errors.Is(err, metadata.ErrInvalidConfig) {
		t.Fatalf("Start with a budget below the largest request: %v", err)
	}
}

// A broker given an FS keeps every file of its data directory there:
// nothing appears on the operating system's disk, and a restart on the same
// FS finds the topic, its records and the group's committed offset.
func TestDataDirOnGivenFS(t *testing.T) {
	mem := memfs.New()
	dir := filepath.Join(t.TempDir(), "on-mem")
	startMem := func() *Broker {
		b, err := Start(Config{DataDir: dir, FS: mem, KafkaAddr: "127.0.0.1:0", HTTPAddr: "-", Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	ctx := context.Background()
	b := startMem()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.DefaultProduceTopic("mem"))
	if err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "mem"); err != nil {
		t.Fatal(err)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("a")}, &kgo.Record{Value: []byte("b")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	offsets := kadm.Offsets{}
	offsets.Add(kadm.Offset{Topic: "mem", Partition: 0, At: 1, LeaderEpoch: -1})
	if err := adm.CommitAllOffsets(ctx, "g", offsets); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	stop(t, b)
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the data directory is on the OS's disk: %v", err)
	}
	for _, name := range []string{"mem-0", "__consumer_offsets-0", logdir.ClusterMetadataDir, "recovery-point-checkpoint"} {
		if _, err := mem.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("not on the given FS: %v", err)
		}
	}

	b = startMem()
	defer stop(t, b)
	cl, err = kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm = kadm.NewClient(cl)
	ends, err := adm.ListEndOffsets(ctx, "mem")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("mem", 0); o.Offset != 2 {
		t.Fatalf("end offset after restart: %d, want 2", o.Offset)
	}
	fetched, err := adm.FetchOffsets(ctx, "g")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := fetched.Lookup("mem", 0); o.At != 1 {
		t.Fatalf("committed offset after restart: %d, want 1", o.At)
	}
}
