package compat

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// kcatCodecs are the values of kcat's -z, in the order they are tested.
var kcatCodecs = []string{"none", "gzip", "snappy", "lz4", "zstd"}

// kcatHeaders are the -H headers every kcat produce in TestKcat adds.
var kcatHeaders = []string{"source=kcat", "trace=abc123"}

// TestKcat drives kcat (librdkafka) the way the tutorials' console tools are
// used: list metadata, produce "key:value" lines with a codec, consume from
// the beginning to the end with a format string, and look offsets up by
// time.
func TestKcat(t *testing.T) {
	t.Parallel()
	kcat := requireTool(t, "kcat")
	addr := startBroker(t)
	input, recs := kcatFixture(t)

	t.Run("metadata", func(t *testing.T) {
		t.Parallel()
		topic := uniqueTopic("kcat-metadata")
		createTopic(t, addr, topic, 3)
		out := mustRun(t, "", kcat, "-b", addr, "-L", "-J")

		var md kcatMetadata
		if err := json.Unmarshal(out, &md); err != nil {
			t.Fatalf("kcat -L -J output is not JSON: %v\n%s", err, out)
		}
		// The advertised address must be one the client can use: the
		// one it bootstrapped from.
		if len(md.Brokers) != 1 || md.Brokers[0].Name != addr {
			t.Fatalf("brokers = %+v, want one named %s", md.Brokers, addr)
		}
		id := md.Brokers[0].ID
		i := slices.IndexFunc(md.Topics, func(tp kcatTopic) bool { return tp.Topic == topic })
		if i < 0 {
			t.Fatalf("topic %s missing from kcat -L:\n%s", topic, out)
		}
		tp := md.Topics[i]
		if tp.Error != "" || len(tp.Partitions) != 3 {
			t.Fatalf("topic %s: error %q, %d partitions; want no error and 3 partitions", topic, tp.Error, len(tp.Partitions))
		}
		for want, p := range tp.Partitions {
			if int(p.Partition) != want || p.Leader != id ||
				len(p.Replicas) != 1 || p.Replicas[0].ID != id || len(p.ISRs) != 1 || p.ISRs[0].ID != id {
				t.Errorf("partition #%d = %+v, want partition %d led, replicated and in sync on broker %d", want, p, want, id)
			}
		}
	})

	for _, codec := range kcatCodecs {
		t.Run("roundtrip-"+codec, func(t *testing.T) {
			t.Parallel()
			topic := uniqueTopic("kcat-" + codec)
			createTopic(t, addr, topic, 1)
			args := []string{"-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec, "-X", "linger.ms=100"}
			for _, h := range kcatHeaders {
				args = append(args, "-H", h)
			}
			mustRun(t, input, kcat, args...)

			out := mustRun(t, "", kcat, "-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q",
				"-f", "%p|%o|%k|%s|%h\n")
			compareLines(t, string(out), kcatExpected(recs, strings.Join(kcatHeaders, ",")))

			// franz-go reads the same records: keys, values and headers.
			got := readPartition(t, addr, topic, len(recs))
			want := slices.Clone(recs)
			for i := range want {
				for _, h := range kcatHeaders {
					k, v, _ := strings.Cut(h, "=")
					want[i].Headers = append(want[i].Headers, header{Key: k, Value: strp(v)})
				}
			}
			compareRecords(t, got, want)

			t.Run("stored-compressed", func(t *testing.T) {
				for i := range want {
					want[i].Codec = codec
				}
				compareRecords(t, got, want)
			})
		})
	}

	t.Run("offsets-for-times", func(t *testing.T) {
		t.Parallel()
		topic := uniqueTopic("kcat-times")
		createTopic(t, addr, topic, 1)
		base := time.Now().Add(-time.Hour).Truncate(time.Second)
		const n = 10
		// Plain produce: this test is about ListOffsets, not idempotence.
		cl := newClient(t, addr, kgo.DefaultProduceTopic(topic), kgo.DisableIdempotentWrite())
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		for i := range n {
			r := &kgo.Record{Value: fmt.Appendf(nil, "v%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}
			if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
				t.Fatalf("produce record %d: %v", i, err)
			}
		}

		ms := base.UnixMilli()
		for _, probe := range []struct {
			what     string
			ts, want int64
		}{
			{"before every record", ms - 5000, 0},
			{"the first record's time", ms, 0},
			{"between the 4th and 5th records", ms + 3500, 4},
			{"the last record's time", ms + 9000, n - 1},
			{"after every record (none)", ms + 10000, -1},
			{"-1 (the end of the log)", -1, n},
			{"-2 (the start of the log)", -2, 0},
		} {
			out := mustRun(t, "", kcat, "-b", addr, "-Q", "-t", fmt.Sprintf("%s:0:%d", topic, probe.ts))
			want := fmt.Sprintf("%s [0] offset %d\n", topic, probe.want)
			if string(out) != want {
				t.Errorf("kcat -Q at %s = %q, want %q", probe.what, out, want)
			}
		}
	})

	// librdkafka with no ApiVersions and a 0.9 broker: Metadata v0,
	// Produce v1 and Fetch v1, MessageSet v0 (no timestamps, no headers).
	t.Run("legacy-message-format", func(t *testing.T) {
		t.Parallel()
		legacy := []string{"-X", "api.version.request=false", "-X", "broker.version.fallback=0.9.0"}
		for _, codec := range []string{"none", "gzip", "snappy"} {
			topic := uniqueTopic("kcat-legacy-" + codec)
			createTopic(t, addr, topic, 1)
			mustRun(t, input, kcat, append(legacy, "-b", addr, "-P", "-t", topic, "-p", "0", "-K", ":", "-z", codec,
				"-X", "linger.ms=100")...)
			consume := []string{"-b", addr, "-C", "-t", topic, "-p", "0", "-o", "beginning", "-e", "-q", "-f", "%p|%o|%k|%s\n"}
			want := kcatExpected(recs, "")
			for i := range want {
				want[i] = strings.TrimSuffix(want[i], "|")
			}
			// Read back down-converted (Fetch v1) and as it is (modern Fetch).
			compareLines(t, string(mustRun(t, "", kcat, append(legacy, consume...)...)), want)
			compareLines(t, string(mustRun(t, "", kcat, consume...)), want)
			compareRecords(t, readPartition(t, addr, topic, len(recs)), recs)
		}
	})
}

// kcatMetadata is the part of `kcat -L -J` that TestKcat checks.
type kcatMetadata struct {
	Brokers []struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	} `json:"brokers"`
	Topics []kcatTopic `json:"topics"`
}

type kcatTopic struct {
	Topic      string `json:"topic"`
	Error      string `json:"error"`
	Partitions []struct {
		Partition int32 `json:"partition"`
		Leader    int32 `json:"leader"`
		Replicas  []struct {
			ID int32 `json:"id"`
		} `json:"replicas"`
		ISRs []struct {
			ID int32 `json:"id"`
		} `json:"isrs"`
	} `json:"partitions"`
}

// kcatFixture reads testdata/kcat_records.txt, "key:value" lines, and
// returns it with the records it should produce, offsets from 0.
func kcatFixture(t *testing.T) (string, []record) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "kcat_records.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var recs []record
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			t.Fatalf("kcat_records.txt line %d has no ':' key delimiter", i+1)
		}
		recs = append(recs, record{Offset: int64(i), Key: strp(k), Value: v})
	}
	return string(b), recs
}

// kcatExpected is what `kcat -C -f '%p|%o|%k|%s|%h\n'` prints for recs in
// partition 0, one entry per line, without the newline.
func kcatExpected(recs []record, headers string) []string {
	var lines []string
	for _, r := range recs {
		lines = append(lines, fmt.Sprintf("0|%d|%s|%s|%s", r.Offset, *r.Key, r.Value, headers))
	}
	return lines
}

// compareLines fails the test unless out is exactly the lines of want, each
// ending in a newline.
func compareLines(t *testing.T, out string, want []string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if out == "" {
		got = nil
	}
	if out == strings.Join(want, "\n")+"\n" {
		return
	}
	var diffs []string
	for i := 0; i < max(len(got), len(want)) && len(diffs) < 8; i++ {
		var g, w string
		if i < len(got) {
			g = got[i]
		}
		if i < len(want) {
			w = want[i]
		}
		if g != w {
			diffs = append(diffs, fmt.Sprintf("line %d\n\t got %q\n\twant %q", i+1, g, w))
		}
	}
	t.Errorf("output has %d lines, want %d; differences:\n%s", len(got), len(want), strings.Join(diffs, "\n"))
}
