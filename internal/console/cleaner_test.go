package console_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/broker"
	"github.com/stromhq/strom/internal/console"
)

// TestTopicCleaner (issue 20): a compacted topic's page shows the log
// cleaner's state per partition, read from the broker's metrics: through
// its /metrics URL (as `strom topic cleaner` reads it, for `strom
// console`), and in the console the broker serves itself. The partition
// the cleaner has cleaned has a last clean time; the one never cleaned has
// none; a topic that is not compacted says so; a console given no metrics
// says it has none, and one given a wrong URL answers 502.
func TestTopicCleaner(t *testing.T) {
	t.Parallel()
	b, err := broker.Start(broker.Config{
		DataDir: t.TempDir(), KafkaAddr: "127.0.0.1:0", AdvertisedAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		Props:  map[string]string{"log.cleaner.backoff.ms": "10"},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		b.Shutdown(ctx)
	})
	addr := b.KafkaAddr().String()
	metricsURL := "http://" + b.HTTPAddr().String() + "/metrics"
	e := newEnvAt(t, addr, func(c *console.Config) { c.Metrics = console.MetricsURL(metricsURL, nil) })
	// The broker's own console (MetricsGatherer of its registry).
	own := &testEnv{t: t, url: "http://" + b.HTTPAddr().String(), http: http.DefaultClient}

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic("scores"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "segment.bytes": kadm.StringPtr("1000"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.3")}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 2, 1, cfg, "scores"); err != nil {
		t.Fatal(err)
	}
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "events"); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		r := &kgo.Record{Key: fmt.Appendf(nil, "user-%d", i%5), Value: fmt.Append(nil, i), Partition: 0}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	for _, env := range []*testEnv{e, own} {
		var out console.TopicCleanerJSON
		eventually(t, 20*time.Second, func() error {
			out = console.TopicCleanerJSON{}
			if s := env.do("GET", "/api/v1/topics/scores/cleaner", nil, &out); s != 200 {
				return fmt.Errorf("status %d", s)
			}
			if !out.Available || len(out.Partitions) != 2 || out.Partitions[0].LastCleanMs == nil {
				return fmt.Errorf("not cleaned yet: %+v", out)
			}
			return nil
		})
		p0, p1 := out.Partitions[0], out.Partitions[1]
		if !out.Compacted || out.CleanupPolicy != "compact" || out.MinCleanableDirtyRatio == nil || *out.MinCleanableDirtyRatio != 0.3 {
			t.Errorf("%s: topic %+v", env.url, out)
		}
		if !p0.Reported || p0.Partition != 0 || *p0.LastCleanMs < time.Now().Add(-time.Minute).UnixMilli() || p0.LastCleanSeconds < 0 || p0.DirtyRatio < 0 || p0.DirtyRatio > 1 {
			t.Errorf("%s: partition 0 %+v", env.url, p0)
		}
		if !p1.Reported || p1.Partition != 1 || p1.LastCleanMs != nil || p1.DirtyBytes != 0 {
			t.Errorf("%s: partition 1 (empty, never cleaned) %+v", env.url, p1)
		}
		var ev console.TopicCleanerJSON
		env.do("GET", "/api/v1/topics/events/cleaner", nil, &ev)
		if ev.Compacted || ev.CleanupPolicy != "delete" || len(ev.Partitions) != 0 {
			t.Errorf("%s: a delete-policy topic: %+v", env.url, ev)
		}
		env.wantStatus("GET", "/api/v1/topics/nope/cleaner", nil, 404, "unknown_topic")
	}

	none := newEnvAt(t, addr)
	var out console.TopicCleanerJSON
	none.do("GET", "/api/v1/topics/scores/cleaner", nil, &out)
	if out.Available || !out.Compacted || out.Message == "" {
		t.Errorf("no metrics: %+v", out)
	}
	bad := newEnvAt(t, addr, func(c *console.Config) { c.Metrics = console.MetricsURL("http://"+b.HTTPAddr().String()+"/nope", nil) })
	bad.wantStatus("GET", "/api/v1/topics/scores/cleaner", nil, 502, "metrics_unavailable")
}
