package cleanermetrics

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
)

// Partition is the cleaner's view of one compacted partition.
type Partition struct {
	Topic      string
	Partition  int32
	DirtyRatio float64 // share of the cleanable bytes not cleaned yet
	DirtyBytes int64
	// LastClean is when the last pass ended; zero when none ran since
	// the broker started.
	LastClean    time.Time
	LastDuration time.Duration
}

// Prefix is the name prefix of the per-partition cleaner gauges.
const Prefix = "strom_partition_cleaner_"

// metricLine is one sample of the text format: name, labels, value. Topic
// names cannot hold quotes or backslashes, so label values need no
// unescaping.
var (
	metricLine = regexp.MustCompile(`^(` + Prefix + `[a-z_]+)\{([^}]*)\} (\S+)$`)
	labelPair  = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// Parse picks the per-partition cleaner gauges out of a metrics page.
func Parse(r io.Reader) ([]Partition, error) {
	type key struct {
		topic string
		part  int32
	}
	rows := map[key]*Partition{}
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
			row = &Partition{Topic: k.topic, Partition: k.part}
			rows[k] = row
		}
		switch strings.TrimPrefix(m[1], Prefix) {
		case "dirty_ratio":
			row.DirtyRatio = v
		case "dirty_bytes":
			row.DirtyBytes = int64(v)
		case "last_clean_timestamp_seconds":
			if v > 0 {
				row.LastClean = time.UnixMilli(int64(v * 1000)).UTC()
			}
		case "last_clean_duration_seconds":
			row.LastDuration = time.Duration(v * float64(time.Second))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	out := make([]Partition, 0, len(rows))
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

// Fetch GETs a broker's metrics page at url with hc (http.DefaultClient
// when nil) and parses it.
func Fetch(ctx context.Context, hc *http.Client, url string) ([]Partition, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("metrics url %q: %w", url, err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("read the broker's metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("read the broker's metrics at %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}
