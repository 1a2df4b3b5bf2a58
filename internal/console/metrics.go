package console

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the console's own Prometheus series. The broker's
// (connections, bytes, offsets) come from the broker; these add the HTTP
// API, the streams and consumer group lag as the console sees them.
type metrics struct {
	requests *prometheus.HistogramVec
	streams  prometheus.Gauge
	sent     prometheus.Counter
	dropped  prometheus.Counter
	evicted  prometheus.Counter
	produced prometheus.Counter
}

func newMetrics(c *Console, reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "strom_console_http_request_duration_seconds",
			Help:    "Console API requests by route and status; streams count once, when they end.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 15},
		}, []string{"route", "code"}),
		streams:  prometheus.NewGauge(prometheus.GaugeOpts{Name: "strom_console_streams_open", Help: "Live topic streams (WebSocket and SSE) open now."}),
		sent:     prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_console_stream_records_sent_total", Help: "Records sent to stream clients."}),
		dropped:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_console_stream_records_dropped_total", Help: "Records dropped because a stream client could not keep up."}),
		evicted:  prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_console_streams_evicted_total", Help: "Idle live streams closed to admit a new one at the console's or a client's limit."}),
		produced: prometheus.NewCounter(prometheus.CounterOpts{Name: "strom_console_produced_records_total", Help: "Records produced through the HTTP API."}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.streams, m.sent, m.dropped, m.evicted, m.produced, &lagCollector{c: c})
	}
	return m
}

func (m *metrics) observe(route string, code int, d time.Duration) {
	if code == 0 {
		code = 200
	}
	m.requests.WithLabelValues(route, strconv.Itoa(code)).Observe(d.Seconds())
}

// lagCollector reports consumer group lag per partition at scrape time,
// through kadm, so it needs no sampler running. Without groups on the
// cluster it reports nothing.
type lagCollector struct{ c *Console }

var lagDesc = prometheus.NewDesc("strom_consumer_group_lag", "Records a consumer group has yet to commit, per partition (end offset minus committed offset).", []string{"group", "topic", "partition"}, nil)

func (l *lagCollector) Describe(ch chan<- *prometheus.Desc) { ch <- lagDesc }

func (l *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c := l.c
	// Under Login the console has no identity of its own to ask with.
	if c.closed.Load() || c.cfg.Login != nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	if c.requireGroups(ctx) != nil {
		return
	}
	listed, err := c.admin(ctx).ListGroups(ctx)
	if err != nil || len(listed) == 0 {
		return
	}
	lags, err := c.admin(ctx).Lag(ctx, listed.Groups()...)
	if err != nil {
		return
	}
	for g, gl := range lags {
		for _, pl := range gl.Lag.Sorted() {
			if pl.Err == nil && pl.Lag >= 0 {
				ch <- prometheus.MustNewConstMetric(lagDesc, prometheus.GaugeValue, float64(pl.Lag), g, pl.Topic, strconv.Itoa(int(pl.Partition)))
			}
		}
	}
}
