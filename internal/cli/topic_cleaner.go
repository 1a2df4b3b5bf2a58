package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// cleanerRow is one compacted partition as `strom topic cleaner` shows it.
type cleanerRow struct {
	Topic        string  `json:"topic"`
	Partition    int32   `json:"partition"`
	DirtyRatio   float64 `json:"dirty_ratio"`
	DirtyBytes   int64   `json:"dirty_bytes"`
	LastClean    string  `json:"last_clean,omitempty"` // RFC 3339; empty: never since the broker started
	LastDuration float64 `json:"last_clean_seconds"`
}

// topicCleanerCmd is `strom topic cleaner`: the log cleaner's view of each
// compacted partition. The Kafka protocol has no request for it (Kafka
// shows it in JMX metrics), so it reads a Strom broker's /metrics.
func topicCleanerCmd() *cobra.Command {
	var output, metricsURL string
	cmd := &cobra.Command{
		Use:   "cleaner [TOPIC...]",
		Short: "Show the log cleaner's state of compacted topics (Strom only)",
		Long: `Show, for every partition of a compacted topic (cleanup.policy=compact),
the share of its cleanable bytes not cleaned yet (dirty ratio; cleaned once
it reaches min.cleanable.dirty.ratio), those bytes, and when the last
cleaning pass ended and how long it took. The Kafka protocol has no request
for this: it is read from a Strom broker's metrics at --metrics-url (the
HTTP listener of strom serve, --http-addr).

JSON: [{"topic","partition","dirty_ratio","dirty_bytes","last_clean","last_clean_seconds"}].`,
		Example: `  strom topic cleaner
  strom topic cleaner __consumer_offsets
  strom topic cleaner --metrics-url http://broker1:8080/metrics --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsURL, nil)
			if err != nil {
				return fmt.Errorf("--metrics-url %q: %w", metricsURL, err)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("read the broker's metrics (is --metrics-url the HTTP listener of strom serve?): %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("read the broker's metrics at %s: %s", metricsURL, resp.Status)
			}
			rows, err := parseCleanerMetrics(resp.Body)
			if err != nil {
				return err
			}
			if len(args) > 0 {
				want := map[string]bool{}
				for _, a := range args {
					want[a] = true
				}
				kept := rows[:0]
				for _, r := range rows {
					if want[r.Topic] {
						kept = append(kept, r)
					}
				}
				rows = kept
			}
			if output == outJSON {
				return writeJSON(cmd.OutOrStdout(), rows)
			}
			t := newTable("TOPIC", "PARTITION", "DIRTY-RATIO", "DIRTY", "LAST-CLEAN", "TOOK")
			for _, r := range rows {
				last, took := "never", "-"
				if r.LastClean != "" {
					last, took = r.LastClean, (time.Duration(r.LastDuration * float64(time.Second))).Round(time.Millisecond).String()
				}
				t.add(r.Topic, r.Partition, strconv.FormatFloat(r.DirtyRatio, 'f', 2, 64), humanBytes(r.DirtyBytes), last, took)
			}
			return t.write(cmd.OutOrStdout())
		},
	}
	addOutputFlag(cmd, &output)
	cmd.Flags().StringVar(&metricsURL, "metrics-url", "http://127.0.0.1:8080/metrics", "the broker's metrics (strom serve's --http-addr, path /metrics)")
	return cmd
}

// metricLine is one sample of the Prometheus text format: name, labels,
// value. Topic names cannot hold quotes or backslashes, so label values
// need no unescaping.
var metricLine = regexp.MustCompile(`^(strom_partition_cleaner_[a-z_]+)\{([^}]*)\} (\S+)$`)
var labelPair = regexp.MustCompile(`(\w+)="([^"]*)"`)

// parseCleanerMetrics picks the per-partition cleaner gauges out of a
// /metrics page, sorted by topic and partition.
func parseCleanerMetrics(r io.Reader) ([]cleanerRow, error) {
	type key struct {
		topic string
		part  int32
	}
	rows := map[key]*cleanerRow{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		m := metricLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		labels := map[string]string{}
		for _, kv := range labelPair.FindAllStringSubmatch(m[2], -1) {
			labels[kv[1]] = kv[2]
		}
		p, err := strconv.ParseInt(labels["partition"], 10, 32)
		v, verr := strconv.ParseFloat(m[3], 64)
		if err != nil || verr != nil || labels["topic"] == "" {
			return nil, fmt.Errorf("metrics: unreadable line %q", sc.Text())
		}
		k := key{labels["topic"], int32(p)}
		row := rows[k]
		if row == nil {
			row = &cleanerRow{Topic: k.topic, Partition: k.part}
			rows[k] = row
		}
		switch strings.TrimPrefix(m[1], "strom_partition_cleaner_") {
		case "dirty_ratio":
			row.DirtyRatio = v
		case "dirty_bytes":
			row.DirtyBytes = int64(v)
		case "last_clean_timestamp_seconds":
			if v > 0 {
				row.LastClean = time.UnixMilli(int64(v * 1000)).UTC().Format(time.RFC3339)
			}
		case "last_clean_duration_seconds":
			row.LastDuration = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := make([]cleanerRow, 0, len(rows))
	for _, r := range rows {
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out, nil
}
