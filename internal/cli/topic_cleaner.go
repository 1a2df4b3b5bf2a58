package cli

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/stromhq/strom/internal/cleanermetrics"
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
			parts, err := cleanermetrics.Fetch(ctx, nil, metricsURL)
			if err != nil {
				return fmt.Errorf("%w (is --metrics-url the HTTP listener of strom serve?)", err)
			}
			rows := make([]cleanerRow, 0, len(parts))
			for _, p := range parts {
				r := cleanerRow{Topic: p.Topic, Partition: p.Partition, DirtyRatio: p.DirtyRatio, DirtyBytes: p.DirtyBytes, LastDuration: p.LastDuration.Seconds()}
				if !p.LastClean.IsZero() {
					r.LastClean = p.LastClean.Format(time.RFC3339)
				}
				rows = append(rows, r)
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
