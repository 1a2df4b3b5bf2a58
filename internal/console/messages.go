package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stromhq/strom/internal/jsonenc"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// position is where a stream starts or a group is reset to:
// latest, earliest, an offset, or the first record at or after a time.
type position struct {
	kind   posKind
	offset int64 // posOffset
	millis int64 // posTime
}

type posKind int

const (
	posLatest posKind = iota
	posEarliest
	posOffset
	posTime
)

// parsePosition parses latest | earliest | <offset> | @<unix ms>.
func parsePosition(name, s string) (position, error) {
	switch s = strings.TrimSpace(s); s {
	case "", "latest", "end":
		return position{kind: posLatest}, nil
	case "earliest", "beginning", "start":
		return position{kind: posEarliest}, nil
	}
	if ms, ok := strings.CutPrefix(s, "@"); ok {
		n, err := strconv.ParseInt(ms, 10, 64)
		if err != nil || n < 0 {
			return position{}, badRequest("bad_position", "%s=%s: want @<unix milliseconds>, e.g. @%d", name, s, time.Now().Add(-time.Hour).UnixMilli())
		}
		return position{kind: posTime, millis: n}, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return position{}, badRequest("bad_position", "%s=%s: want latest, earliest, an offset (0 or more) or @<unix ms>", name, s)
	}
	return position{kind: posOffset, offset: n}, nil
}

// offsetRange is where a partition's readable records are: [start, end).
type offsetRange struct{ start, end int64 }

// partitionRanges lists the readable range of each partition of topic.
func (c *Console) partitionRanges(ctx context.Context, topic string, parts []int32) (map[int32]offsetRange, error) {
	starts, err := c.admin(ctx).ListStartOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ends, err := c.admin(ctx).ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(map[int32]offsetRange, len(parts))
	for _, p := range parts {
		s, ok1 := starts.Lookup(topic, p)
		e, ok2 := ends.Lookup(topic, p)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("partition %d: no offsets listed", p)
		}
		if s.Err != nil {
			return nil, s.Err
		}
		if e.Err != nil {
			return nil, e.Err
		}
		out[p] = offsetRange{s.Offset, e.Offset}
	}
	return out, nil
}

// outOfRange is the 400 for an offset outside a partition's records.
func outOfRange(topic string, p int32, off int64, rg offsetRange) error {
	return &apiError{
		Status: http.StatusBadRequest, Code: "offset_out_of_range",
		Msg:   fmt.Sprintf("offset %d is out of range for %s partition %d: its records are at offsets %d to %d", off, topic, p, rg.start, rg.end-1),
		Extra: map[string]any{"partition": p, "start_offset": rg.start, "end_offset": rg.end},
	}
}

// partitionsOf resolves ?partition= against the topic: all partitions
// when absent, else the one asked for (which must exist).
func partitionsOf(q url.Values, td kadm.TopicDetail) ([]int32, error) {
	all := td.Partitions.Numbers()
	if !q.Has("partition") || q.Get("partition") == "" || q.Get("partition") == "all" {
		return all, nil
	}
	n, err := strconv.ParseInt(q.Get("partition"), 10, 32)
	if err != nil {
		return nil, badRequest("bad_partition", "partition=%s: want a partition number", q.Get("partition"))
	}
	if _, ok := td.Partitions[int32(n)]; !ok {
		return nil, badRequest("bad_partition", "partition %d does not exist: topic %q has %d partitions (0 to %d)", n, td.Topic, len(all), len(all)-1)
	}
	return []int32{int32(n)}, nil
}

// rangeRead is what readRanges returns for one partition.
type rangeRead struct {
	records []*kgo.Record // offsets in [from, to), control records left out
	done    bool          // reached to
}

// readRanges reads [from, to) of each partition with a consuming client of
// its own. It returns what it has when ctx ends (done false).
func (c *Console) readRanges(ctx context.Context, topic string, ranges map[int32][2]int64) (map[int32]*rangeRead, error) {
	out := make(map[int32]*rangeRead, len(ranges))
	offs := map[int32]kgo.Offset{}
	for p, rg := range ranges {
		out[p] = &rangeRead{done: rg[0] >= rg[1]}
		if rg[0] < rg[1] {
			offs[p] = kgo.NewOffset().At(rg[0])
		}
	}
	if len(offs) == 0 {
		return out, nil
	}
	cl, err := kgo.NewClient(c.userOpts(ctx,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offs}),
		// Control records count towards reaching `to`, then are dropped.
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(250*time.Millisecond),
		kgo.FetchMaxBytes(8<<20),
		kgo.FetchMaxPartitionBytes(2<<20),
	)...)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	remaining := len(offs)
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			if ferr == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
				ferr = err
			}
		})
		if ferr != nil {
			return nil, ferr
		}
		var pause []int32
		fs.EachRecord(func(r *kgo.Record) {
			rr := out[r.Partition]
			to := ranges[r.Partition][1]
			if rr == nil || rr.done {
				return
			}
			if r.Offset < to && !r.Attrs.IsControl() {
				rr.records = append(rr.records, r)
			}
			if r.Offset >= to-1 {
				rr.done = true
				remaining--
				pause = append(pause, r.Partition)
			}
		})
		if len(pause) > 0 {
			cl.PauseFetchPartitions(map[string][]int32{topic: pause})
		}
	}
	return out, nil
}

// Limits of a page read.
const (
	defaultPageLimit = 50
	maxPageLimit     = 1000
	// maxScan bounds the records looked at per partition for one filtered
	// page, so that a filter that matches nothing answers quickly.
	maxScan = 20000
	// pageDeadline bounds the time a page read waits for records.
	pageDeadline = 5 * time.Second
)

type pagePartitionJSON struct {
	Partition   int32 `json:"partition"`
	StartOffset int64 `json:"start_offset"`
	EndOffset   int64 `json:"end_offset"`
	// NextOffset is where the next page of this partition starts: pass it
	// as ?offset= with the same order. Null when there is nothing further.
	NextOffset *int64 `json:"next_offset"`
}

// partScan is one partition's part of a page.
type partScan struct {
	partition int32
	rg        offsetRange
	matched   []*kgo.Record // in the page's order
	// boundary is the next page's offset if every matched record makes
	// it into the page; exhausted says there is nothing beyond it.
	boundary  int64
	exhausted bool
}

func (c *Console) getMessages(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	topic := r.PathValue("topic")
	order := q.Get("order")
	switch order {
	case "":
		order = "newest"
	case "newest", "oldest":
	default:
		return badRequest("bad_order", "order=%s: want newest or oldest", order)
	}
	limit := defaultPageLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxPageLimit {
			return badRequest("bad_limit", "limit=%s: want 1 to %d", s, maxPageLimit)
		}
		limit = n
	}
	var offset, millis *int64
	if s := q.Get("offset"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return badRequest("bad_offset", "offset=%s: want an offset, 0 or more", s)
		}
		offset = &n
	}
	if s := q.Get("timestamp"); s != "" {
		n, err := parseMillis(s)
		if err != nil {
			return badRequest("bad_timestamp", "timestamp=%s: want unix milliseconds or an RFC 3339 time (2024-05-01T12:00:00Z)", s)
		}
		millis = &n
	}
	if offset != nil && millis != nil {
		return badRequest("bad_offset", "give offset or timestamp, not both")
	}
	flt, err := parseFilter(q)
	if err != nil {
		return err
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return err
	}
	parts, err := partitionsOf(q, td)
	if err != nil {
		return err
	}
	if offset != nil && len(parts) != 1 {
		return badRequest("bad_offset", "offset=%d needs a partition (?partition=N): offsets are per partition", *offset)
	}
	ranges, err := c.partitionRanges(ctx, topic, parts)
	if err != nil {
		return err
	}
	// pos is each partition's first offset (oldest) or the offset below
	// which to read (newest).
	pos := map[int32]int64{}
	for _, p := range parts {
		rg := ranges[p]
		switch {
		case offset != nil:
			if *offset < rg.start || *offset > rg.end {
				return outOfRange(topic, p, *offset, rg)
			}
			pos[p] = *offset
		case order == "oldest":
			pos[p] = rg.start
		default:
			pos[p] = rg.end
		}
	}
	if millis != nil {
		at := *millis
		if order == "newest" {
			at++ // newest first from T: the records at or before T
		}
		listed, err := c.admin(ctx).ListOffsetsAfterMilli(ctx, at, topic)
		if err != nil {
			return err
		}
		for _, p := range parts {
			if lo, ok := listed.Lookup(topic, p); ok && lo.Err == nil && lo.Offset >= 0 {
				pos[p] = min(max(lo.Offset, ranges[p].start), ranges[p].end)
			}
		}
	}

	rctx, rcancel := context.WithTimeout(ctx, pageDeadline)
	defer rcancel()
	scans := make([]*partScan, 0, len(parts))
	scanned := 0
	partial := false
	for _, p := range parts {
		ps := &partScan{partition: p, rg: ranges[p]}
		n, part, err := c.scanPartition(rctx, topic, ps, pos[p], order, limit, flt)
		if err != nil {
			return err
		}
		scanned += n
		partial = partial || part
		scans = append(scans, ps)
	}

	page := mergePage(scans, order, limit)
	body := make([]byte, 0, 4096)
	body = append(body, `{"topic":`...)
	body = jsonenc.AppendString(body, topic)
	body = append(body, `,"order":"`...)
	body = append(body, order...)
	body = append(body, `","records":[`...)
	for i, rec := range page.records {
		if i > 0 {
			body = append(body, ',')
		}
		body = jsonenc.AppendRecord(body, rec)
	}
	body = append(body, `],"partitions":`...)
	pj, _ := json.Marshal(page.partitions)
	body = append(body, pj...)
	body = append(body, `,"next_offset":`...)
	if len(page.partitions) == 1 && page.partitions[0].NextOffset != nil {
		body = strconv.AppendInt(body, *page.partitions[0].NextOffset, 10)
	} else {
		body = append(body, "null"...)
	}
	body = append(body, `,"scanned":`...)
	body = strconv.AppendInt(body, int64(scanned), 10)
	body = append(body, `,"partial":`...)
	body = strconv.AppendBool(body, partial)
	if flt != nil {
		body = append(body, `,"filter":`...)
		body = jsonenc.AppendString(body, flt.text)
	}
	body = append(body, "}\n"...)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write(body)
	return nil
}

// scanPartition fills ps with up to limit matching records starting at
// pos, in windows, until it has them, the partition ends, maxScan records
// were looked at, or ctx ends (partial).
func (c *Console) scanPartition(ctx context.Context, topic string, ps *partScan, pos int64, order string, limit int, flt *filter) (scanned int, partial bool, err error) {
	rg := ps.rg
	window := int64(limit)
	if flt != nil {
		window = max(window, 500)
	}
	ps.boundary = pos
	for len(ps.matched) < limit && scanned < maxScan {
		var from, to int64
		if order == "oldest" {
			from, to = ps.boundary, min(ps.boundary+window, rg.end)
		} else {
			from, to = max(ps.boundary-window, rg.start), ps.boundary
		}
		if from >= to {
			ps.exhausted = true
			break
		}
		got, err := c.readRanges(ctx, topic, map[int32][2]int64{ps.partition: {from, to}})
		if err != nil {
			return scanned, partial, err
		}
		rr := got[ps.partition]
		recs := rr.records
		scanned += len(recs)
		if order == "newest" {
			for i, j := 0, len(recs)-1; i < j; i, j = i+1, j-1 {
				recs[i], recs[j] = recs[j], recs[i]
			}
		}
		for _, rec := range recs {
			if flt.match(rec) {
				ps.matched = append(ps.matched, rec)
			}
		}
		if !rr.done {
			// Out of time: the boundary is what we have seen.
			partial = true
			if len(recs) > 0 {
				last := recs[len(recs)-1]
				if order == "oldest" {
					ps.boundary = last.Offset + 1
				} else {
					ps.boundary = last.Offset
				}
			}
			break
		}
		if order == "oldest" {
			ps.boundary = to
		} else {
			ps.boundary = from
		}
	}
	if order == "oldest" && ps.boundary >= rg.end || order == "newest" && ps.boundary <= rg.start {
		ps.exhausted = true
	}
	return scanned, partial, nil
}

type pageResult struct {
	records    []*kgo.Record
	partitions []pagePartitionJSON
}

// mergePage merges the partitions' matches by timestamp (newest or oldest
// first), keeping each partition's records in offset order even where
// their timestamps are not, keeps limit, and works out each partition's
// next offset from the records that made it in.
func mergePage(scans []*partScan, order string, limit int) pageResult {
	var all []*kgo.Record
	heads := make([]int, len(scans))
	for len(all) < limit {
		best := -1
		for i, ps := range scans {
			if heads[i] >= len(ps.matched) {
				continue
			}
			if best < 0 {
				best = i
				continue
			}
			a, b := ps.matched[heads[i]].Timestamp, scans[best].matched[heads[best]].Timestamp
			if order == "newest" && a.After(b) || order != "newest" && a.Before(b) {
				best = i
			}
		}
		if best < 0 {
			break
		}
		all = append(all, scans[best].matched[heads[best]])
		heads[best]++
	}
	included := map[int32]int{}
	edge := map[int32]int64{}
	for _, rec := range all {
		included[rec.Partition]++
		if e, ok := edge[rec.Partition]; !ok || (order == "newest") == (rec.Offset < e) {
			edge[rec.Partition] = rec.Offset
		}
	}
	res := pageResult{records: all}
	for _, ps := range scans {
		pj := pagePartitionJSON{Partition: ps.partition, StartOffset: ps.rg.start, EndOffset: ps.rg.end}
		var next int64
		switch {
		case included[ps.partition] == len(ps.matched):
			if !ps.exhausted {
				next = ps.boundary
				pj.NextOffset = &next
			}
		case order == "newest":
			next = edge[ps.partition]
			if included[ps.partition] == 0 {
				next = ps.matched[0].Offset + 1
			}
			pj.NextOffset = &next
		default:
			next = edge[ps.partition] + 1
			if included[ps.partition] == 0 {
				next = ps.matched[0].Offset
			}
			pj.NextOffset = &next
		}
		res.partitions = append(res.partitions, pj)
	}
	return res
}

// parseMillis reads unix milliseconds or an RFC 3339 time.
func parseMillis(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return 0, errors.New("negative")
		}
		return n, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return 0, err
	}
	return t.UnixMilli(), nil
}
