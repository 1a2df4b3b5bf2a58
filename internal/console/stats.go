package console

import (
	"context"
	"math"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The sampler keeps the recent history the console charts without a
// Prometheus: every SampleInterval it lists the end offsets of all topics
// (records per second per topic) and, when the cluster has consumer
// groups, each group's total lag. It runs from New to Close, so that the
// charts have history when someone first opens the console; a sample is a
// handful of small requests.

type sample struct {
	t     int64              // unix ms
	rates map[string]float64 // records/s per topic since the previous sample
	lag   map[string]int64   // total lag per group
}

type sampler struct {
	c  *Console
	mu struct {
		sync.Mutex
		ring      []sample
		head, n   int
		prevT     time.Time
		prevEnds  map[string]int64
		groupsErr string
	}
}

func newSampler(c *Console) *sampler {
	s := &sampler{c: c}
	s.mu.ring = make([]sample, c.cfg.SampleHistory)
	return s
}

// start runs the sampler until the console closes.
func (s *sampler) start() {
	c := s.c
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.SampleInterval)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-c.ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

func (s *sampler) sample() {
	c := s.c
	ctx, cancel := context.WithTimeout(c.ctx, max(2*c.cfg.SampleInterval, 5*time.Second))
	defer cancel()
	now := time.Now()
	ends, err := c.admin(ctx).ListEndOffsets(ctx)
	if err != nil {
		c.log.Debug("console: sample end offsets", "err", err)
		return
	}
	sums := map[string]int64{}
	for topic, ps := range ends {
		for _, o := range ps {
			if o.Err == nil && o.Offset > 0 {
				sums[topic] += o.Offset
			}
		}
	}
	lag, gerr := c.groupLagTotals(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	if gerr != nil {
		s.mu.groupsErr = httpError(gerr).Msg
	} else {
		s.mu.groupsErr = ""
	}
	prev, prevT := s.mu.prevEnds, s.mu.prevT
	s.mu.prevEnds, s.mu.prevT = sums, now
	if prev == nil {
		return
	}
	dt := now.Sub(prevT).Seconds()
	if dt <= 0 {
		return
	}
	rates := make(map[string]float64, len(sums))
	for topic, sum := range sums {
		d := sum - prev[topic]
		if d < 0 { // deleted and created again
			d = 0
		}
		rates[topic] = math.Round(float64(d)/dt*100) / 100
	}
	i := (s.mu.head + s.mu.n) % len(s.mu.ring)
	if s.mu.n == len(s.mu.ring) {
		s.mu.head = (s.mu.head + 1) % len(s.mu.ring)
	} else {
		s.mu.n++
	}
	s.mu.ring[i] = sample{t: now.UnixMilli(), rates: rates, lag: lag}
}

// groupLagTotals is the total lag of every group; nil without groups.
func (c *Console) groupLagTotals(ctx context.Context) (map[string]int64, error) {
	if err := c.requireGroups(ctx); err != nil {
		return nil, err
	}
	listed, err := c.admin(ctx).ListGroups(ctx)
	if err != nil {
		return nil, err
	}
	if len(listed) == 0 {
		return map[string]int64{}, nil
	}
	lags, err := c.admin(ctx).Lag(ctx, listed.Groups()...)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(lags))
	for g, l := range lags {
		if l.Error() == nil {
			out[g] = l.Lag.Total()
		}
	}
	return out, nil
}

// latest returns the newest sample, if any.
func (s *sampler) latest() (sample, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.n == 0 {
		return sample{}, false
	}
	return s.mu.ring[(s.mu.head+s.mu.n-1)%len(s.mu.ring)], true
}

// totalRate is the latest records per second over all topics.
func (s *sampler) totalRate() *float64 {
	l, ok := s.latest()
	if !ok {
		return nil
	}
	var sum float64
	for _, r := range l.rates {
		sum += r
	}
	return &sum
}

// topicRate is the latest records per second of one topic.
func (s *sampler) topicRate(topic string) *float64 {
	l, ok := s.latest()
	if !ok {
		return nil
	}
	r := l.rates[topic]
	return &r
}

// statsJSON is the history in columns, as uPlot takes it: t[i] goes with
// every series' [i]; a series is null where it has no value.
type statsJSON struct {
	IntervalMs    int64                 `json:"interval_ms"`
	T             []int64               `json:"t"`
	RecordsPerSec []float64             `json:"records_per_sec"`
	Topics        map[string][]*float64 `json:"topics"`
	Groups        map[string][]*int64   `json:"groups"`
	GroupsError   string                `json:"groups_error,omitempty"`
}

// maxSeries bounds the topics or groups in one stats reply when the
// request names none: the busiest ones.
const maxSeries = 12

func (c *Console) getStats(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	s := c.stats
	s.mu.Lock()
	samples := make([]sample, s.mu.n)
	for i := range samples {
		samples[i] = s.mu.ring[(s.mu.head+i)%len(s.mu.ring)]
	}
	gerr := s.mu.groupsErr
	s.mu.Unlock()

	out := statsJSON{
		IntervalMs:    c.cfg.SampleInterval.Milliseconds(),
		T:             make([]int64, len(samples)),
		RecordsPerSec: make([]float64, len(samples)),
		Topics:        map[string][]*float64{},
		Groups:        map[string][]*int64{},
		GroupsError:   gerr,
	}
	topics, groups := q["topic"], q["group"]
	if len(topics) == 0 {
		topics = busiest(samples, func(sm sample) map[string]float64 { return sm.rates })
	}
	if len(groups) == 0 {
		groups = busiest(samples, func(sm sample) map[string]float64 {
			m := make(map[string]float64, len(sm.lag))
			for g, l := range sm.lag {
				m[g] = float64(l) + 1 // groups without lag still show
			}
			return m
		})
	}
	for _, t := range topics {
		out.Topics[t] = make([]*float64, len(samples))
	}
	for _, g := range groups {
		out.Groups[g] = make([]*int64, len(samples))
	}
	for i, sm := range samples {
		out.T[i] = sm.t
		for t, r := range sm.rates {
			out.RecordsPerSec[i] += r
			if col, ok := out.Topics[t]; ok {
				col[i] = &r
			}
		}
		for g, l := range sm.lag {
			if col, ok := out.Groups[g]; ok {
				col[i] = &l
			}
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// busiest returns the names with the largest sums, at most maxSeries,
// among those in the latest sample: a topic or group deleted since has no
// line (its history would keep it in the overview's legend).
func busiest(samples []sample, of func(sample) map[string]float64) []string {
	if len(samples) == 0 {
		return nil
	}
	current := of(samples[len(samples)-1])
	sums := map[string]float64{}
	for _, sm := range samples {
		for k, v := range of(sm) {
			if _, ok := current[k]; ok {
				sums[k] += v
			}
		}
	}
	names := make([]string, 0, len(sums))
	for k := range sums {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool {
		if sums[names[i]] != sums[names[j]] {
			return sums[names[i]] > sums[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > maxSeries {
		names = names[:maxSeries]
	}
	return names
}

// groupAPIs are the requests the group pages need.
var groupAPIs = []int16{
	kmsg.ListGroups.Int16(), kmsg.DescribeGroups.Int16(), kmsg.OffsetFetch.Int16(), kmsg.FindCoordinator.Int16(),
}

// requireGroups returns errGroupsUnsupported when no broker advertises the
// group APIs. The answer is cached for a while: it changes only when the
// cluster is upgraded.
func (c *Console) requireGroups(ctx context.Context) error {
	c.groups.Lock()
	defer c.groups.Unlock()
	if time.Since(c.groups.checked) < 30*time.Second {
		if !c.groups.ok {
			return errGroupsUnsupported
		}
		return nil
	}
	vs, err := c.admin(ctx).ApiVersions(ctx)
	if err != nil {
		return err
	}
	ok := false
	vs.Each(func(v kadm.BrokerApiVersions) {
		if v.Err != nil {
			return
		}
		all := true
		for _, k := range groupAPIs {
			if _, has := v.KeyMaxVersion(k); !has {
				all = false
			}
		}
		ok = ok || all
	})
	c.groups.ok, c.groups.checked = ok, time.Now()
	if !ok {
		return errGroupsUnsupported
	}
	return nil
}
