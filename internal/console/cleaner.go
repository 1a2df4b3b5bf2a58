package console

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/stromhq/strom/internal/cleanermetrics"
)

// The compaction view (issue 20): a compacted topic's partitions as the
// log cleaner sees them (dirty ratio, dirty bytes, last pass). The Kafka
// protocol has no request for it, so it is read from the broker's
// Prometheus metrics (Config.Metrics), with the parser `strom topic
// cleaner` uses (internal/cleanermetrics); whether the topic is compacted,
// and the ratio that triggers cleaning, come from DescribeConfigs.

// MetricsSource returns a page of Prometheus metrics in the text format
// (what a broker's /metrics serves). The caller closes it.
type MetricsSource func(ctx context.Context) (io.ReadCloser, error)

// MetricsURL is a MetricsSource that GETs url with hc
// (http.DefaultClient when nil): a broker's /metrics, as `strom topic
// cleaner --metrics-url` reads it.
func MetricsURL(url string, hc *http.Client) MetricsSource {
	if hc == nil {
		hc = http.DefaultClient
	}
	return func(ctx context.Context) (io.ReadCloser, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, fmt.Errorf("metrics url %q: %w", url, err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("read the broker's metrics: %w", err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return nil, fmt.Errorf("read the broker's metrics at %s: %s", url, resp.Status)
		}
		return resp.Body, nil
	}
}

// MetricsGatherer is a MetricsSource that renders g in the text format,
// as /metrics would: for a broker that runs the console in its own
// process and hands it the registry its /metrics serves (or the part of
// it the console reads).
func MetricsGatherer(g prometheus.Gatherer) MetricsSource {
	return func(context.Context) (io.ReadCloser, error) {
		mfs, err := g.Gather()
		if err != nil {
			return nil, fmt.Errorf("gather metrics: %w", err)
		}
		var buf bytes.Buffer
		enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				return nil, fmt.Errorf("encode metrics: %w", err)
			}
		}
		return io.NopCloser(&buf), nil
	}
}

type cleanerPartitionJSON struct {
	Partition int32 `json:"partition"`
	// Reported is false when the broker's metrics do not name the
	// partition: its log is not on the broker the console reads (a
	// cluster), or the cleaner has not looked at it yet.
	Reported   bool    `json:"reported"`
	DirtyRatio float64 `json:"dirty_ratio"`
	DirtyBytes int64   `json:"dirty_bytes"`
	// LastCleanMs is when the last pass ended (Unix ms), null when none
	// ran since the broker started; LastCleanSeconds how long it took.
	LastCleanMs      *int64  `json:"last_clean_ms"`
	LastCleanSeconds float64 `json:"last_clean_seconds"`
}

// topicCleanerJSON is GET /api/v1/topics/{topic}/cleaner.
type topicCleanerJSON struct {
	Topic string `json:"topic"`
	// Compacted: cleanup.policy includes compact. Otherwise the cleaner
	// never touches the topic and Partitions is empty.
	Compacted     bool   `json:"compacted"`
	CleanupPolicy string `json:"cleanup_policy"`
	// MinCleanableDirtyRatio is the dirty ratio at which a partition is
	// cleaned (min.cleanable.dirty.ratio); null when not told.
	MinCleanableDirtyRatio *float64 `json:"min_cleanable_dirty_ratio"`
	// Available is false when the console has no metrics to read
	// (Message says why).
	Available  bool                   `json:"available"`
	Message    string                 `json:"message,omitempty"`
	Partitions []cleanerPartitionJSON `json:"partitions"`
}

func (c *Console) getTopicCleaner(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	topic := r.PathValue("topic")
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return err
	}
	rcs, err := c.admin(ctx).DescribeTopicConfigs(ctx, topic)
	if err != nil {
		return err
	}
	rc, err := rcs.On(topic, nil)
	if err == nil {
		err = rc.Err
	}
	if err != nil {
		return err
	}
	out := topicCleanerJSON{Topic: topic, CleanupPolicy: "delete", Partitions: []cleanerPartitionJSON{}}
	for _, cf := range rc.Configs {
		switch {
		case cf.Value == nil:
		case cf.Key == "cleanup.policy":
			out.CleanupPolicy = *cf.Value
		case cf.Key == "min.cleanable.dirty.ratio":
			if v, err := strconv.ParseFloat(*cf.Value, 64); err == nil {
				out.MinCleanableDirtyRatio = &v
			}
		}
	}
	for _, p := range strings.Split(out.CleanupPolicy, ",") {
		out.Compacted = out.Compacted || strings.TrimSpace(p) == "compact"
	}
	if !out.Compacted {
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	if c.cfg.Metrics == nil {
		out.Message = "the console was not given the broker's metrics, where the log cleaner's state is (strom console --metrics-url)"
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	parts, err := c.readCleaner(ctx)
	if err != nil {
		return &apiError{Status: http.StatusBadGateway, Code: "metrics_unavailable", Msg: err.Error()}
	}
	out.Available = true
	byPart := map[int32]cleanermetrics.Partition{}
	for _, p := range parts {
		if p.Topic == topic {
			byPart[p.Partition] = p
		}
	}
	for _, pd := range td.Partitions.Sorted() {
		pj := cleanerPartitionJSON{Partition: pd.Partition}
		if p, ok := byPart[pd.Partition]; ok {
			pj.Reported, pj.DirtyRatio, pj.DirtyBytes, pj.LastCleanSeconds = true, p.DirtyRatio, p.DirtyBytes, p.LastDuration.Seconds()
			if !p.LastClean.IsZero() {
				ms := p.LastClean.UnixMilli()
				pj.LastCleanMs = &ms
			}
		}
		out.Partitions = append(out.Partitions, pj)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// readCleaner reads the cleaner's gauges from the configured metrics.
func (c *Console) readCleaner(ctx context.Context) ([]cleanermetrics.Partition, error) {
	rc, err := c.cfg.Metrics(ctx)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return cleanermetrics.Parse(rc)
}
