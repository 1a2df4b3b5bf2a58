package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestLiveChartThrottled (issue 23) opens the live chart of a topic with
// 600 records of recent history on three partitions, more than a stream's
// 512-record queue, in Chromium with its CPU slowed down 8 times (CDP
// Emulation.setCPUThrottlingRate), and checks that the history fits the
// queue (nothing dropped), that the chart's x values ascend, and that
// every series (one per key, two keys per partition) has all the points it
// was given drawn. Before, points went to uPlot in arrival order, one
// partition after another, and the series of partitions 0 and 1 lost
// their history.
func TestLiveChartThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped with -short")
	}
	node, b := startBrowserBroker(t)

	const topic, records, keys = "sensors", 600, 6
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.KafkaAddr().String()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
	// The last 100 s, as `strom demo` leaves it: readings of six sensors,
	// sensor i on partition i/2, each partition in time order.
	now := time.Now()
	rs := make([]*kgo.Record, 0, records)
	for i := range records {
		k := i % keys
		rs = append(rs, &kgo.Record{
			Topic:     topic,
			Partition: int32(k / 2),
			Key:       fmt.Appendf(nil, "s%d", k+1),
			Value:     fmt.Appendf(nil, `{"sensor":"s%d","value":%d}`, k+1, 20+i%7),
			Timestamp: now.Add(time.Duration(i-records) * 100 * time.Second / records),
		})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	artifacts, err := filepath.Abs(filepath.Join("..", "artifacts", "browser"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer scancel()
	cmd := exec.CommandContext(sctx, node, "live.spec.mjs")
	cmd.Env = append(os.Environ(),
		"STROM_URL=http://"+b.HTTPAddr().String(),
		"ARTIFACTS="+artifacts,
		"CHROMIUM="+chromiumPath(),
		"TOPIC="+topic,
		"KEYS="+strconv.Itoa(keys),
		"CPU_SLOWDOWN=8",
	)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err = cmd.Run()
	t.Logf("live.spec.mjs (%v):\n%s", time.Since(start).Round(100*time.Millisecond), out.String())
	if err != nil {
		t.Fatalf("live chart steps failed: %v (screenshots in %s)", err, artifacts)
	}
}
