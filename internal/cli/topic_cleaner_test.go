package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
)

// TestTopicCleaner: `strom topic cleaner` shows a compacted topic's dirty
// ratio and last cleaning from the broker's metrics, as a table and as
// JSON, filtered by topic; a URL that is not a broker's is a clear error.
func TestTopicCleaner(t *testing.T) {
	t.Parallel()
	b, err := broker.Start(broker.Config{
		DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Props:  map[string]string{"log.cleaner.backoff.ms": "10"},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Shutdown(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.DefaultProduceTopic("scores"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1000")}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, cfg, "scores"); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		r := &kgo.Record{Key: []byte(fmt.Sprint("user-", i%5)), Value: []byte(fmt.Sprint(i)), Partition: 0}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	url := "http://" + b.HTTPAddr().String() + "/metrics"
	var rows []cleanerRow
	for {
		r := runStrom(t, nil, nil, "topic", "cleaner", "scores", "--metrics-url", url, "--output", "json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		rows = nil
		if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
			t.Fatalf("%v: %s", err, r.stdout)
		}
		if len(rows) == 2 && rows[0].LastClean != "" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no cleaning shown: %s", r.stdout)
		}
		time.Sleep(50 * time.Millisecond) // polling with a deadline
	}
	if rows[0].Topic != "scores" || rows[0].Partition != 0 || rows[1].Partition != 1 || rows[1].LastClean != "" {
		t.Fatalf("rows %+v", rows)
	}
	r := runStrom(t, nil, nil, "topic", "cleaner", "--metrics-url", url)
	if r.code != 0 || !strings.Contains(r.stdout, "DIRTY-RATIO") || !strings.Contains(r.stdout, "scores") || !strings.Contains(r.stdout, "never") {
		t.Fatalf("table: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	t.Logf("strom topic cleaner:\n%s", r.stdout)
	if strings.Contains(r.stdout, "events") {
		t.Fatalf("a delete-policy topic is listed:\n%s", r.stdout)
	}
	r = runStrom(t, nil, nil, "topic", "cleaner", "--metrics-url", "http://"+b.HTTPAddr().String()+"/nope")
	if r.code == 0 || !strings.Contains(r.stderr, "404") {
		t.Fatalf("bad URL: exit %d: %s", r.code, r.stderr)
	}
}
