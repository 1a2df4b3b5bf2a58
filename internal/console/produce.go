package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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

type produceReq struct {
	Records []produceRecord `json:"records"`
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
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return bodyError(err)
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/vnd.kafka") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: fmt.Sprintf("Content-Type %q: send application/json", ct)}
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil {
		if len(bytes.TrimSpace(body)) == 0 {
			return badRequest("bad_json", `request body is empty: send {"records":[{"value":...}]}`)
		}
		return bodyError(err)
	}
	if _, ok := probe["records"]; !ok {
		// Confluent REST Proxy v3: one record, v3 reply.
		return c.produceV3Body(w, r, body)
	}
	var req produceReq
	if err := strictUnmarshal(body, &req); err != nil {
		return err
	}
	switch {
	case len(req.Records) == 0:
		return badRequest("bad_json", "records is empty: send at least one record")
	case len(req.Records) > maxProduceRecords:
		return badRequest("too_many_records", "%d records in one request; the limit is %d", len(req.Records), maxProduceRecords)
	}
	recs := make([]*kgo.Record, len(req.Records))
	for i, pr := range req.Records {
		rec, err := pr.toRecord()
		if err != nil {
			return badRequest("bad_record", "records[%d]: %s", i, err)
		}
		recs[i] = rec
	}
	topic := r.PathValue("topic")
	ctx, cancel := c.requestCtx(r)
	defer cancel()
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
		if explicit(rec) {
			if rec.Partition < 0 || rec.Partition >= n {
				return nil, 0, badRequest("bad_partition", "records[%d]: partition %d does not exist: topic %q has %d partitions (0 to %d)", i, rec.Partition, topic, n, n-1)
			}
			// The request's context, so that the record fails with it.
			rec.Context = context.WithValue(ctx, explicitPartition{}, true)
		}
	}
	// ProduceSync reports in completion order; put them back in request order.
	index := make(map[*kgo.Record]int, len(recs))
	for i, rec := range recs {
		index[rec] = i
	}
	results := c.cl.ProduceSync(ctx, recs...)
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

// Confluent REST Proxy v3 (POST /v3/clusters/{cluster}/topics/{topic}/records):
//
//	{"partition_id":0,"headers":[{"name":"h","value":"<base64>"}],
//	 "key":{"type":"STRING","data":"k"},"value":{"type":"JSON","data":{"a":1}},
//	 "timestamp":"2024-05-01T12:00:00Z"}
//
// Types: BINARY (data is base64), JSON (data is any JSON, stored as its
// text; the default), STRING. Schema-registry formats are refused.
type v3Data struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
	// Schema registry fields, refused with a clear error.
	SchemaID      *int    `json:"schema_id"`
	SchemaVersion *int    `json:"schema_version"`
	Subject       *string `json:"subject"`
}

type v3Record struct {
	PartitionID *int32 `json:"partition_id"`
	Headers     []struct {
		Name  string  `json:"name"`
		Value *string `json:"value"`
	} `json:"headers"`
	Key       *v3Data `json:"key"`
	Value     *v3Data `json:"value"`
	Timestamp *string `json:"timestamp"`
}

func (d *v3Data) bytes(name string) ([]byte, string, error) {
	if d == nil {
		return nil, "", nil
	}
	if d.SchemaID != nil || d.SchemaVersion != nil || d.Subject != nil {
		return nil, "", fmt.Errorf("%s: schema registry formats are not supported; use type BINARY, JSON or STRING", name)
	}
	raw := bytes.TrimSpace(d.Data)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, strings.ToUpper(d.Type), nil
	}
	switch t := strings.ToUpper(d.Type); t {
	case "BINARY":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "", fmt.Errorf("%s.data: BINARY data must be a base64 string", name)
		}
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, "", fmt.Errorf("%s.data: %v", name, err)
		}
		return b, t, nil
	case "STRING":
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, "", fmt.Errorf("%s.data: STRING data must be a JSON string", name)
		}
		return []byte(s), t, nil
	case "", "JSON":
		var buf bytes.Buffer
		json.Compact(&buf, raw) // raw is valid: it was decoded
		return buf.Bytes(), "JSON", nil
	default:
		return nil, "", fmt.Errorf("%s.type %q: want BINARY, JSON or STRING", name, d.Type)
	}
}

func (c *Console) produceV3(w http.ResponseWriter, r *http.Request) error {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeV3Error(w, httpError(bodyError(err)))
		return nil
	}
	return c.produceV3Body(w, r, body)
}

func (c *Console) produceV3Body(w http.ResponseWriter, r *http.Request, body []byte) error {
	var vr v3Record
	if err := strictUnmarshal(body, &vr); err != nil {
		writeV3Error(w, httpError(err))
		return nil
	}
	rec := &kgo.Record{}
	var keyType, valueType string
	var err error
	if rec.Key, keyType, err = vr.Key.bytes("key"); err == nil {
		rec.Value, valueType, err = vr.Value.bytes("value")
	}
	if err != nil {
		writeV3Error(w, badRequest("bad_record", "%s", err))
		return nil
	}
	for i, h := range vr.Headers {
		var v []byte
		if h.Value != nil {
			if v, err = base64.StdEncoding.DecodeString(*h.Value); err != nil {
				writeV3Error(w, badRequest("bad_record", "headers[%d].value: want base64: %v", i, err))
				return nil
			}
		}
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: h.Name, Value: v})
	}
	if vr.PartitionID != nil {
		if *vr.PartitionID < 0 {
			writeV3Error(w, badRequest("bad_partition", "partition_id %d: want 0 or more", *vr.PartitionID))
			return nil
		}
		rec.Partition = *vr.PartitionID
		rec.Context = context.WithValue(context.Background(), explicitPartition{}, true)
	}
	if vr.Timestamp != nil {
		t, err := time.Parse(time.RFC3339Nano, *vr.Timestamp)
		if err != nil {
			writeV3Error(w, badRequest("bad_timestamp", "timestamp %q: want RFC 3339", *vr.Timestamp))
			return nil
		}
		rec.Timestamp = t
	}
	topic := r.PathValue("topic")
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	reports, status, err := c.produceRecords(ctx, topic, []*kgo.Record{rec})
	if err != nil {
		writeV3Error(w, httpError(err))
		return nil
	}
	if reports[0].Error != "" {
		writeV3Error(w, &apiError{Status: status, Code: reports[0].Code, Msg: reports[0].Error})
		return nil
	}
	out := map[string]any{
		"error_code":   http.StatusOK,
		"cluster_id":   r.PathValue("cluster"),
		"topic_name":   topic,
		"partition_id": *reports[0].Partition,
		"offset":       *reports[0].Offset,
		"timestamp":    time.UnixMilli(*reports[0].Timestamp).UTC().Format(time.RFC3339Nano),
	}
	if vr.Key != nil {
		out["key"] = map[string]any{"type": keyType, "size": len(rec.Key)}
	}
	if vr.Value != nil {
		out["value"] = map[string]any{"type": valueType, "size": len(rec.Value)}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// writeV3Error writes an error in REST Proxy v3's shape.
func writeV3Error(w http.ResponseWriter, ae *apiError) {
	writeJSON(w, ae.Status, map[string]any{"error_code": ae.Status, "message": ae.Msg, "code": ae.Code})
}
