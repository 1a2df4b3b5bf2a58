package console_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

func TestDemo(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := "demo-" + time.Now().Format("150405.000000")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- console.RunDemo(ctx, console.DemoConfig{
			ClientOpts: []kgo.Opt{kgo.SeedBrokers(kafkaAddr)}, Topic: topic, Rate: 200, Sensors: 3,
			Logger: slog.New(slog.DiscardHandler),
		})
	}()
	// Until every sensor has been read: right after the topic's creation
	// a client can see one partition later than the others (its
	// ListOffsets or first fetch retried after a metadata refresh), while
	// the others already hold 30 readings.
	got := consumeUntil(t, topic, func(got []*kgo.Record) bool {
		keys := map[string]bool{}
		for _, r := range got {
			keys[string(r.Key)] = true
		}
		return len(got) >= 30 && len(keys) == 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunDemo: %v", err)
	}
	var d struct{ Partitions int }
	e.do("GET", "/api/v1/topics/"+topic, nil, &d)
	if d.Partitions != 3 {
		t.Errorf("demo topic has %d partitions, want 3", d.Partitions)
	}
	keys := map[string]bool{}
	ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	for _, r := range got {
		var v struct {
			Timestamp string
			Sensor    string
			Value     float64
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value %s: %v", r.Value, err)
		}
		if v.Sensor != string(r.Key) || !ts.MatchString(v.Timestamp) || v.Value < 5 || v.Value > 40 {
			t.Errorf("reading %s (key %s)", r.Value, r.Key)
		}
		keys[v.Sensor] = true
	}
	if len(keys) != 3 {
		t.Errorf("sensors %v, want s1 s2 s3", keys)
	}
}
