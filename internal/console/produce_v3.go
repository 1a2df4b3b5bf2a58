package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

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
	if err := checkContentType(r); err != nil {
		writeV3Error(w, httpError(err))
		return nil
	}
	ctx, cancel := c.requestCtx(r)
	defer cancel()
	body, release, err := c.readProduceBody(ctx, w, r)
	if err != nil {
		writeV3Error(w, httpError(err))
		return nil
	}
	defer release()
	return c.produceV3Body(ctx, w, r, body)
}

// produceV3Body produces the one v3 record of body, which the caller read
// and holds the produce budget for.
func (c *Console) produceV3Body(ctx context.Context, w http.ResponseWriter, r *http.Request, body []byte) error {
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
