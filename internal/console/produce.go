package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// maxProduceRecords bounds the records of one produce request.
const maxProduceRecords = 10000

// produceRecord is one record of POST /api/v1/topics/{topic}/records.
type produceRecord struct {
	Key         json.RawMessage `json:"key"`
	Value       json.RawMessage `json:"value"`
	KeyBase64   *string         `json:"key_base64"`
	ValueBase64 *string         `json:"value_base64"`
	// Headers is {"name":"value",...} (order kept) or
	// [{"key":"name","value":"v"} | {"key":"name","value_base64":"..."}].
	Headers   json.RawMessage `json:"headers"`
	Partition *int32          `json:"partition"`
	// Timestamp in unix milliseconds; the broker's time when absent.
	Timestamp *int64 `json:"timestamp"`
}

// deliveryJSON is one record's delivery report.
type deliveryJSON struct {
	Partition *int32 `json:"partition,omitempty"`
	Offset    *int64 `json:"offset,omitempty"`
	Timestamp *int64 `json:"timestamp,omitempty"`
	Error     string `json:"error,omitempty"`
	Code      string `json:"code,omitempty"`
}

// explicitPartition marks a record whose partition the request chose.
type explicitPartition struct{}

// partitioner keeps a record's requested partition and otherwise hashes
// the key as Kafka's Java client does (murmur2), spreading keyless records.
type partitioner struct{}

func (*partitioner) ForTopic(t string) kgo.TopicPartitioner {
	return &topicPartitioner{inner: kgo.StickyKeyPartitioner(nil).ForTopic(t)}
}

type topicPartitioner struct{ inner kgo.TopicPartitioner }

func explicit(r *kgo.Record) bool {
	return r.Context != nil && r.Context.Value(explicitPartition{}) != nil
}

func (p *topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	return explicit(r) || p.inner.RequiresConsistency(r)
}

func (p *topicPartitioner) Partition(r *kgo.Record, n int) int {
	if explicit(r) && int(r.Partition) < n {
		return int(r.Partition)
	}
	return p.inner.Partition(r, n)
}

func (p *topicPartitioner) OnNewBatch() {
	if nb, ok := p.inner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

func (c *Console) produce(w http.ResponseWriter, r *http.Request) error {
	if err := checkContentType(r); err != nil {
		return err
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	body, release, err := c.readProduceBody(ctx, w, r)
	if err != nil {
		return err
	}
	defer release()
	recs, err := decodeRecords(body)
	if errors.Is(err, errNotBatch) {
		// Confluent REST Proxy v3: one record, v3 reply.
		return c.produceV3Body(ctx, w, r, body)
	}
	if err != nil {
		return err
	}
	topic := r.PathValue("topic")
	reports, status, err := c.produceRecords(ctx, topic, recs)
	if err != nil {
		return err
	}
	reply := map[string]any{"topic": topic, "results": reports}
	if status >= 400 {
		// Nothing was delivered: an error body like any other, with the
		// per-record reports beside it.
		reply["error"], reply["code"] = reports[0].Error, reports[0].Code
		if len(reports) > 1 {
			reply["error"] = fmt.Sprintf("none of the %d records was delivered; the first: %s", len(reports), reports[0].Error)
		}
	}
	writeJSON(w, status, reply)
	return nil
}

func checkContentType(r *http.Request) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/vnd.kafka") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: fmt.Sprintf("Content-Type %q: send application/json", ct)}
	}
	return nil
}

// readProduceBody reads a produce request's body, charged to the
// console's produce budget: first the whole share (Content-Length, or
// MaxBodyBytes for a chunked body, trimmed to its size once read), waiting
// while the budget is spent, then the bytes. The caller calls release once
// nothing built from the body is needed any more. A request that waits
// past its context gets 503 with Retry-After.
func (c *Console) readProduceBody(ctx context.Context, w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	limit := c.cfg.MaxBodyBytes
	n := r.ContentLength
	if n > limit {
		return nil, nil, bodyError(&http.MaxBytesError{Limit: limit})
	}
	if n < 0 {
		n = limit
	}
	if err := c.produceBudget.acquire(ctx, n); err != nil {
		if c.ctx.Err() != nil {
			return nil, nil, &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Msg: "the console is shutting down"}
		}
		w.Header().Set("Retry-After", "1")
		return nil, nil, &apiError{Status: http.StatusServiceUnavailable, Code: "produce_busy",
			Msg: fmt.Sprintf("too many produce requests in flight (%d bytes at once at most); try again", c.cfg.MaxProduceBytes)}
	}
	held := n
	release = func() { c.produceBudget.release(held) }
	if r.ContentLength >= 0 {
		// Exactly the announced size: the server's body reader stops there.
		body = make([]byte, n)
		_, err = io.ReadFull(r.Body, body)
	} else {
		body, err = io.ReadAll(r.Body)
	}
	if err != nil {
		release()
		return nil, nil, bodyError(err)
	}
	if int64(len(body)) < held {
		c.produceBudget.release(held - int64(len(body)))
		held = int64(len(body))
	}
	return body, release, nil
}

// errNotBatch: the body is a JSON object without "records", so it is one
// record in Confluent REST Proxy v3's shape.
var errNotBatch = errors.New("not a batch of records")

// decodeRecords decodes {"records":[...]} one record at a time, building
// each Kafka record as it goes and stopping at the first mistake or at
// record maxProduceRecords+1: a body of a million tiny records costs no
// more than the limit's worth of records. Other top-level fields are an
// error; an object without "records" is errNotBatch.
func decodeRecords(body []byte) ([]*kgo.Record, error) {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, badRequest("bad_json", `request body is empty: send {"records":[{"value":...}]}`)
	}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	t, err := d.Token()
	if err != nil {
		return nil, bodyError(err)
	}
	if t != json.Delim('{') {
		return nil, badRequest("bad_json", `request body: want a JSON object {"records":[...]}`)
	}
	var recs []*kgo.Record
	batch, other := false, ""
	for d.More() {
		t, err := d.Token()
		if err != nil {
			return nil, bodyError(err)
		}
		if key, _ := t.(string); key == "records" {
			batch = true
			if recs, err = decodeRecordArray(d); err != nil {
				return nil, err
			}
			continue
		} else if other == "" {
			other = key
		}
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			return nil, bodyError(err)
		}
	}
	if _, err := d.Token(); err != nil { // the closing brace
		return nil, bodyError(err)
	}
	switch {
	case !batch:
		return nil, errNotBatch
	case other != "":
		return nil, badRequest("bad_json", "request body: unknown field %q (beside records)", other)
	case d.More():
		return nil, badRequest("bad_json", "request body: more than one JSON value")
	case len(recs) == 0:
		return nil, badRequest("bad_json", "records is empty: send at least one record")
	}
	return recs, nil
}

// decodeRecordArray decodes the value of "records": null or an array of
// at most maxProduceRecords records.
func decodeRecordArray(d *json.Decoder) ([]*kgo.Record, error) {
	t, err := d.Token()
	if err != nil {
		return nil, bodyError(err)
	}
	if t == nil {
		return nil, nil
	}
	if t != json.Delim('[') {
		return nil, badRequest("bad_json", "records: want an array of records, got %v", t)
	}
	var recs []*kgo.Record
	for i := 0; d.More(); i++ {
		if i == maxProduceRecords {
			return nil, badRequest("too_many_records", "more than %d records in one request; the limit is %d: send them in several requests", maxProduceRecords, maxProduceRecords)
		}
		var pr produceRecord
		if err := d.Decode(&pr); err != nil {
			if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
				field := fmt.Sprintf("records[%d]", i)
				if te.Field != "" {
					field += "." + te.Field
				}
				return nil, badRequest("bad_json", "%s: want %s, got %s", field, te.Type, te.Value)
			}
			return nil, bodyError(err)
		}
		rec, err := pr.toRecord()
		if err != nil {
			return nil, badRequest("bad_record", "records[%d]: %s", i, err)
		}
		recs = append(recs, rec)
	}
	if _, err := d.Token(); err != nil { // the closing bracket
		return nil, bodyError(err)
	}
	return recs, nil
}

// produceRecords checks the topic and partitions, produces recs and
// returns one report per record and the reply's status: 200 when all were
// delivered, the first error's status when none was, 207 otherwise.
func (c *Console) produceRecords(ctx context.Context, topic string, recs []*kgo.Record) ([]deliveryJSON, int, error) {
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return nil, 0, err
	}
	n := int32(len(td.Partitions))
	for i, rec := range recs {
		rec.Topic = topic
		exp := explicit(rec)
		// The request's context, so that a record not sent by the
		// request's deadline fails with it instead of holding the reply
		// (franz-go waits for a record whatever ProduceSync's context).
		rec.Context = ctx
		if exp {
			if rec.Partition < 0 || rec.Partition >= n {
				return nil, 0, badRequest("bad_partition", "records[%d]: partition %d does not exist: topic %q has %d partitions (0 to %d)", i, rec.Partition, topic, n, n-1)
			}
			rec.Context = context.WithValue(ctx, explicitPartition{}, true)
		}
	}
	// ProduceSync reports in completion order; put them back in request order.
	index := make(map[*kgo.Record]int, len(recs))
	for i, rec := range recs {
		index[rec] = i
	}
	results := c.client(ctx).ProduceSync(ctx, recs...)
	reports := make([]deliveryJSON, len(results))
	ok, firstErr := 0, (*apiError)(nil)
	slices.SortFunc(results, func(a, b kgo.ProduceResult) int { return index[a.Record] - index[b.Record] })
	for i, res := range results {
		if res.Err != nil {
			ae := httpError(res.Err)
			if ae.Code == "record_too_large" {
				ae.Msg = fmt.Sprintf("record is %d bytes, larger than the cluster accepts (%v)", len(res.Record.Key)+len(res.Record.Value), res.Err)
			}
			reports[i] = deliveryJSON{Error: ae.Msg, Code: ae.Code}
			if firstErr == nil {
				firstErr = ae
			}
			continue
		}
		ok++
		p, off, ts := res.Record.Partition, res.Record.Offset, res.Record.Timestamp.UnixMilli()
		reports[i] = deliveryJSON{Partition: &p, Offset: &off, Timestamp: &ts}
	}
	c.metrics.produced.Add(float64(ok))
	switch {
	case ok == len(results):
		return reports, http.StatusOK, nil
	case ok == 0:
		return reports, firstErr.Status, nil
	}
	return reports, http.StatusMultiStatus, nil
}

// toRecord builds the Kafka record, explaining the first problem found.
func (pr produceRecord) toRecord() (*kgo.Record, error) {
	rec := &kgo.Record{}
	var err error
	if rec.Key, err = pick("key", pr.Key, pr.KeyBase64); err != nil {
		return nil, err
	}
	if rec.Value, err = pick("value", pr.Value, pr.ValueBase64); err != nil {
		return nil, err
	}
	if rec.Headers, err = parseHeaders(pr.Headers); err != nil {
		return nil, err
	}
	if pr.Partition != nil {
		if *pr.Partition < 0 {
			return nil, fmt.Errorf("partition %d: want 0 or more (or leave it out)", *pr.Partition)
		}
		rec.Partition = *pr.Partition
		rec.Context = context.WithValue(context.Background(), explicitPartition{}, true)
	}
	if pr.Timestamp != nil {
		if *pr.Timestamp < 0 {
			return nil, fmt.Errorf("timestamp %d: want unix milliseconds", *pr.Timestamp)
		}
		rec.Timestamp = time.UnixMilli(*pr.Timestamp)
	}
	return rec, nil
}

// pick returns the bytes of a key or value given as JSON or as base64.
func pick(name string, js json.RawMessage, b64 *string) ([]byte, error) {
	if b64 != nil {
		if len(js) > 0 && string(bytes.TrimSpace(js)) != "null" {
			return nil, fmt.Errorf("both %s and %s_base64 given; send one", name, name)
		}
		b, err := base64.StdEncoding.DecodeString(*b64)
		if err != nil {
			return nil, fmt.Errorf("%s_base64: %v", name, err)
		}
		return b, nil
	}
	return bytesFromJSON(js), nil
}

// parseHeaders reads headers as an object (order kept) or an array.
func parseHeaders(raw json.RawMessage) ([]kgo.RecordHeader, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	switch raw[0] {
	case '{':
		d := json.NewDecoder(bytes.NewReader(raw))
		d.Token() // {
		var hs []kgo.RecordHeader
		for d.More() {
			t, err := d.Token()
			if err != nil {
				return nil, fmt.Errorf("headers: %v", err)
			}
			name, _ := t.(string)
			var v json.RawMessage
			if err := d.Decode(&v); err != nil {
				return nil, fmt.Errorf("headers.%s: %v", name, err)
			}
			hs = append(hs, kgo.RecordHeader{Key: name, Value: bytesFromJSON(v)})
		}
		return hs, nil
	case '[':
		var arr []struct {
			Key         string          `json:"key"`
			Name        string          `json:"name"`
			Value       json.RawMessage `json:"value"`
			ValueBase64 *string         `json:"value_base64"`
		}
		if err := strictUnmarshal(raw, &arr); err != nil {
			return nil, fmt.Errorf("headers: %v", err)
		}
		hs := make([]kgo.RecordHeader, 0, len(arr))
		for i, h := range arr {
			name := h.Key
			if name == "" {
				name = h.Name
			}
			if name == "" {
				return nil, fmt.Errorf("headers[%d]: no key", i)
			}
			v, err := pick(fmt.Sprintf("headers[%d].value", i), h.Value, h.ValueBase64)
			if err != nil {
				return nil, err
			}
			hs = append(hs, kgo.RecordHeader{Key: name, Value: v})
		}
		return hs, nil
	}
	return nil, fmt.Errorf(`headers: want an object {"name":"value"} or an array [{"key":"name","value":"v"}]`)
}

// strictUnmarshal is decodeBody for bytes already read.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return bodyError(err)
	}
	if d.More() {
		return badRequest("bad_json", "request body: more than one JSON value")
	}
	return nil
}
