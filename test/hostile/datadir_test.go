package hostile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/test/internal/childbroker"
)

// TestSecondBrokerOnSameDataDir: a second `strom serve` on a data dir that
// a running broker holds exits at once, with a message naming the holder's
// pid, whether its ports are free or taken, and leaves the running broker's
// files alone: every record acknowledged before and after the attempts is
// read back once, after a restart too. Before the data dir lock, the
// second broker appended to the same segments (half of 1,000 acknowledged
// records gone) and, when its port was taken, wrote a clean-shutdown
// marker into the running broker's directory on its way out.
func TestSecondBrokerOnSameDataDir(t *testing.T) {
	dir := t.TempDir()
	a := startOn(t, dir)
	const topic = "locked"
	produceN(t, a.kafkaAddr, topic, 0, 500)

	for _, ports := range []struct{ name, kafka, http string }{
		{"free ports", childbroker.FreeAddr(t), childbroker.FreeAddr(t)},
		{"the holder's ports", a.kafkaAddr, a.httpAddr},
	} {
		out, err := runServe(t, "--data-dir", dir, "--kafka-addr", ports.kafka, "--http-addr", ports.http, "--log-level", "warn")
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatalf("second broker on %s: %v; want a non-zero exit\n%s", ports.name, err, out)
		}
		if want := fmt.Sprintf("pid %d", a.Pid()); !strings.Contains(out, want) || !strings.Contains(out, "in use") {
			t.Fatalf("second broker on %s said %q; want it to name the holder (%s)", ports.name, out, want)
		}
		if _, err := os.Stat(filepath.Join(dir, ".strom-clean-shutdown")); err == nil {
			t.Fatalf("second broker on %s wrote a clean-shutdown marker into the running broker's dir", ports.name)
		}
	}

	produceN(t, a.kafkaAddr, topic, 500, 1000)
	a.Stop(t)
	b := startOn(t, dir)
	got := consumeAll(t, b.kafkaAddr, topic, 1000)
	for i, v := range got {
		if want := fmt.Sprint(i); v != want {
			t.Fatalf("record %d is %q, want %q (of %d read back)", i, v, want, len(got))
		}
	}
}

// startOn starts a broker process on dir with fresh loopback ports.
func startOn(t *testing.T, dir string) *brokerProc {
	t.Helper()
	p := &brokerProc{kafkaAddr: childbroker.FreeAddr(t), httpAddr: childbroker.FreeAddr(t)}
	p.Proc = childbroker.Start(t, childEnv, []string{p.kafkaAddr, p.httpAddr}, "--data-dir", dir,
		"--kafka-addr", p.kafkaAddr, "--advertised-addr", p.kafkaAddr, "--http-addr", p.httpAddr, "--log-level", "warn")
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// runServe runs `strom serve args...` in a child process that must exit
// within 30 s, and returns its output.
func runServe(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], append([]string{"-test.run=^$", "--", "serve"}, args...)...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("strom serve %v still running after 30 s; output:\n%s", args, out.String())
	}
	return out.String(), err
}

// produceN writes the values from..to-1 to partition 0 of topic with
// acks=all and waits until every one is acknowledged.
func produceN(t *testing.T, addr, topic string, from, to int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	recs := make([]*kgo.Record, 0, to-from)
	for i := from; i < to; i++ {
		recs = append(recs, &kgo.Record{Value: []byte(fmt.Sprint(i))})
	}
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeAll reads partition 0 of topic from the start until n records
// arrived or 30 s passed, and fails unless exactly n are there.
func consumeAll(t *testing.T, addr, topic string, n int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var got []string
	for len(got) < n && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if len(got) != n {
		t.Fatalf("read back %d records, want %d", len(got), n)
	}
	return got
}
