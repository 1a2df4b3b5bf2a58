package console_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

func TestClusterAndBrokers(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	e.produce(&kgo.Record{Topic: topic, Value: []byte("a")}, &kgo.Record{Topic: topic, Value: []byte("b")})
	var c console.ClusterJSON
	if s := e.do("GET", "/api/v1/cluster", nil, &c); s != 200 {
		t.Fatalf("status %d", s)
	}
	if len(c.Brokers) != 1 || c.Brokers[0].Port == 0 || c.Topics < 1 || c.Partitions < 2 || c.Records < 2 {
		t.Errorf("cluster = %+v", c)
	}
	var b struct{ Brokers []console.BrokerJSON }
	e.do("GET", "/api/v1/brokers", nil, &b)
	if len(b.Brokers) != 1 || b.Brokers[0].Host == "" {
		t.Errorf("brokers = %+v", b)
	}
}

func TestTopicLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	name := "lifecycle-" + fmt.Sprint(time.Now().UnixNano())
	out := e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": name, "partitions": 3, "configs": map[string]string{"retention.ms": "3600000"}}, 201, "")
	if out["partitions"] != float64(3) {
		t.Errorf("create reply %v", out)
	}
	e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": name}, 409, "topic_exists")
	e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": "bad name!"}, 400, "invalid_topic")
	e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": ""}, 400, "invalid_topic")
	e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": "x", "partitions": 0}, 400, "invalid_partitions")
	e.wantStatus("POST", "/api/v1/topics", `{"name":`, 400, "bad_json")
	e.wantStatus("POST", "/api/v1/topics", `{"name":"x","partitons":3}`, 400, "bad_json")
	e.wantStatus("POST", "/api/v1/topics", `{"name":3}`, 400, "bad_json")
	e.wantStatus("POST", "/api/v1/topics", ``, 400, "bad_json")
	e.wantStatus("POST", "/api/v1/topics", map[string]any{"name": name + "-cfg", "configs": map[string]string{"retention.ms": "soon"}}, 400, "invalid_config")

	e.produce(&kgo.Record{Topic: name, Partition: 0, Value: []byte("x")})
	var list struct{ Topics []console.TopicJSON }
	e.do("GET", "/api/v1/topics", nil, &list)
	i := slices.IndexFunc(list.Topics, func(t console.TopicJSON) bool { return t.Name == name })
	if i < 0 || list.Topics[i].Partitions != 3 || list.Topics[i].Records != 1 {
		t.Fatalf("topic %s in list: %+v", name, list.Topics)
	}
	var d console.TopicDetailJSON
	e.do("GET", "/api/v1/topics/"+name, nil, &d)
	if len(d.PartitionsDetail) != 3 || d.Records != 1 || d.SizeBytes == nil || *d.SizeBytes <= 0 {
		t.Errorf("describe = %+v", d)
	}
	for _, p := range d.PartitionsDetail {
		if p.Leader < 0 || len(p.Replicas) != 1 || p.EndOffset < p.StartOffset {
			t.Errorf("partition %+v", p)
		}
	}

	var cfgs struct{ Configs []console.ConfigJSON }
	e.do("GET", "/api/v1/topics/"+name+"/configs", nil, &cfgs)
	ret := configValue(cfgs.Configs, "retention.ms")
	if ret == nil || ret.Value == nil || *ret.Value != "3600000" || ret.Default {
		t.Errorf("retention.ms = %+v", ret)
	}
	e.do("PATCH", "/api/v1/topics/"+name+"/configs", map[string]any{"set": map[string]string{"retention.ms": "7200000"}}, &cfgs)
	if ret := configValue(cfgs.Configs, "retention.ms"); ret == nil || *ret.Value != "7200000" {
		t.Errorf("after PATCH retention.ms = %+v", ret)
	}
	e.wantStatus("PATCH", "/api/v1/topics/"+name+"/configs", map[string]any{"set": map[string]string{"retention.ms": "abc"}}, 400, "invalid_config")
	e.wantStatus("PATCH", "/api/v1/topics/"+name+"/configs", map[string]any{}, 400, "bad_json")
	e.wantStatus("PATCH", "/api/v1/topics/nope-"+name+"/configs", map[string]any{"set": map[string]string{"retention.ms": "1"}}, 404, "unknown_topic")

	e.wantStatus("DELETE", "/api/v1/topics/"+name, nil, 200, "")
	eventually(t, 5*time.Second, func() error {
		if s := e.do("GET", "/api/v1/topics/"+name, nil, nil); s != 404 {
			return fmt.Errorf("describe after delete: status %d", s)
		}
		return nil
	})
	e.wantStatus("DELETE", "/api/v1/topics/"+name, nil, 404, "unknown_topic")
	e.wantStatus("GET", "/api/v1/topics/"+name+"/configs", nil, 404, "unknown_topic")
}

func configValue(cs []console.ConfigJSON, name string) *console.ConfigJSON {
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i]
		}
	}
	return nil
}

type pageReply struct {
	Records    []recordOut
	Partitions []console.PagePartitionJSON
	NextOffset *int64 `json:"next_offset"`
	Scanned    int
	Partial    bool
}

type recordOut struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     int64
	Key           any
	KeyEncoding   string `json:"key_encoding"`
	Value         any
	ValueEncoding string `json:"value_encoding"`
	Headers       []struct {
		Key         string
		Value       *string
		ValueBase64 *string `json:"value_base64"`
	}
	Size int
}

func TestMessagesPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	base := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	var recs []*kgo.Record
	for i := range 40 {
		recs = append(recs, &kgo.Record{
			Topic: topic, Partition: int32(i % 2), Key: fmt.Appendf(nil, "k%d", i%4),
			Value:     fmt.Appendf(nil, `{"n":%d,"sensor":"s%d"}`, i, i%4),
			Headers:   []kgo.RecordHeader{{Key: "parity", Value: []byte([]string{"even", "odd"}[i%2])}},
			Timestamp: base.Add(time.Duration(i) * time.Second),
		})
	}
	e.cl.Close()
	cl, _ := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	defer cl.Close()
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/topics/" + topic + "/messages"
	var p pageReply

	// Newest first over both partitions.
	e.do("GET", path+"?limit=5", nil, &p)
	if len(p.Records) != 5 {
		t.Fatalf("newest: %d records", len(p.Records))
	}
	for i, r := range p.Records {
		if want := base.Add(time.Duration(39-i) * time.Second).UnixMilli(); r.Timestamp != want {
			t.Errorf("newest[%d].timestamp = %d, want %d", i, r.Timestamp, want)
		}
		if r.ValueEncoding != "json" || r.KeyEncoding != "text" || len(r.Headers) != 1 {
			t.Errorf("newest[%d] = %+v", i, r)
		}
	}

	// Oldest first from an offset of one partition, then the next page.
	e.do("GET", path+"?partition=1&offset=3&order=oldest&limit=4", nil, &p)
	if got := offsets(p.Records); !slices.Equal(got, []int64{3, 4, 5, 6}) || p.NextOffset == nil || *p.NextOffset != 7 {
		t.Errorf("oldest from 3: offsets %v next %v", got, p.NextOffset)
	}
	e.do("GET", path+fmt.Sprintf("?partition=1&offset=%d&order=oldest&limit=100", *p.NextOffset), nil, &p)
	if got := offsets(p.Records); len(got) != 13 || got[0] != 7 || got[12] != 19 || p.NextOffset != nil {
		t.Errorf("oldest rest: offsets %v next %v", got, p.NextOffset)
	}

	// Newest first below an offset (paging backwards).
	e.do("GET", path+"?partition=0&offset=10&limit=3", nil, &p)
	if got := offsets(p.Records); !slices.Equal(got, []int64{9, 8, 7}) || p.NextOffset == nil || *p.NextOffset != 7 {
		t.Errorf("newest below 10: offsets %v next %v", got, p.NextOffset)
	}

	// From a time: records 20.. (timestamps base+20s on) oldest first.
	e.do("GET", path+fmt.Sprintf("?timestamp=%d&order=oldest&limit=4", base.Add(20*time.Second).UnixMilli()), nil, &p)
	for i, r := range p.Records {
		if want := base.Add(time.Duration(20+i) * time.Second).UnixMilli(); r.Timestamp != want {
			t.Errorf("by time[%d].timestamp = %d, want %d", i, r.Timestamp, want)
		}
	}
	e.do("GET", path+fmt.Sprintf("?timestamp=%s&order=newest&limit=2", base.Add(20*time.Second).UTC().Format(time.RFC3339Nano)), nil, &p)
	if len(p.Records) != 2 || p.Records[0].Timestamp != base.Add(20*time.Second).UnixMilli() {
		t.Errorf("newest at time: %+v", p.Records)
	}

	// Filters.
	e.do("GET", path+"?where=n+>=+30&where=sensor+==+s2&order=oldest&limit=50", nil, &p)
	if got := values(p.Records, "n"); !slices.Equal(got, []float64{30, 34, 38}) {
		t.Errorf("where: n = %v", got)
	}
	e.do("GET", path+"?key=k1&limit=50", nil, &p)
	if len(p.Records) != 10 {
		t.Errorf("key=k1: %d records", len(p.Records))
	}
	e.do("GET", path+"?header=parity%3Dodd&key_prefix=k&limit=50", nil, &p)
	if len(p.Records) != 20 || p.Records[0].Partition != 1 {
		t.Errorf("header filter: %d records", len(p.Records))
	}

	// Mistakes.
	e.wantStatus("GET", path+"?partition=0&offset=999", nil, 400, "offset_out_of_range")
	e.wantStatus("GET", path+"?partition=0&offset=-1", nil, 400, "bad_offset")
	e.wantStatus("GET", path+"?offset=3", nil, 400, "bad_offset")
	e.wantStatus("GET", path+"?partition=7", nil, 400, "bad_partition")
	e.wantStatus("GET", path+"?partition=x", nil, 400, "bad_partition")
	e.wantStatus("GET", path+"?order=sideways", nil, 400, "bad_order")
	e.wantStatus("GET", path+"?limit=0", nil, 400, "bad_limit")
	e.wantStatus("GET", path+"?timestamp=yesterday", nil, 400, "bad_timestamp")
	e.wantStatus("GET", path+"?where=n+>>+3", nil, 400, "bad_filter")
	e.wantStatus("GET", path+"?where=n", nil, 400, "bad_filter")
	e.wantStatus("GET", path+"?header=novalue", nil, 400, "bad_filter")
	e.wantStatus("GET", "/api/v1/topics/no-such-topic-anywhere/messages", nil, 404, "unknown_topic")
}

func offsets(rs []recordOut) []int64 {
	var out []int64
	for _, r := range rs {
		out = append(out, r.Offset)
	}
	return out
}

func values(rs []recordOut, field string) []float64 {
	var out []float64
	for _, r := range rs {
		if m, ok := r.Value.(map[string]any); ok {
			if f, ok := m[field].(float64); ok {
				out = append(out, f)
			}
		}
	}
	return out
}

type produceReply struct {
	Topic   string
	Results []console.DeliveryJSON
}

// consumeAll reads n records of topic from the start with franz-go.
func consumeAll(t *testing.T, topic string, n int) []*kgo.Record {
	t.Helper()
	return consumeUntil(t, topic, func(got []*kgo.Record) bool { return len(got) >= n })
}

// consumeUntil reads topic from its start until enough says the records
// read so far are enough (within 15 s), and returns them by partition and
// offset.
func consumeUntil(t *testing.T, topic string, enough func([]*kgo.Record) bool) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var out []*kgo.Record
	for !enough(out) {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d records, not enough", len(out))
		}
		out = append(out, fs.Records()...)
	}
	slices.SortFunc(out, func(a, b *kgo.Record) int {
		if a.Partition != b.Partition {
			return int(a.Partition - b.Partition)
		}
		return int(a.Offset - b.Offset)
	})
	return out
}

func TestProduceThenConsume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(3)
	body := `{"records":[
		{"key":"s3","value":{"sensor":"s3","value":21.7},"headers":{"source":"http","n":7},"partition":2},
		{"value":"plain text ünïcode","partition":0},
		{"key":42,"value":[1,2,3],"partition":0},
		{"key_base64":"AAEC","value_base64":"/wD+","headers":[{"key":"bin","value_base64":"AP8="}],"partition":1,"timestamp":1700000000000},
		{"key":"nullvalue","value":null,"partition":1}
	]}`
	var rep produceReply
	if s := e.do("POST", "/api/v1/topics/"+topic+"/records", body, &rep); s != 200 {
		t.Fatalf("status %d: %+v", s, rep)
	}
	if len(rep.Results) != 5 {
		t.Fatalf("results %+v", rep.Results)
	}
	for i, r := range rep.Results {
		if r.Error != "" || r.Partition == nil || r.Offset == nil {
			t.Errorf("result %d: %+v", i, r)
		}
	}
	if *rep.Results[0].Partition != 2 || *rep.Results[2].Partition != 0 || *rep.Results[3].Partition != 1 || *rep.Results[3].Timestamp != 1700000000000 {
		t.Errorf("partitions/timestamps not kept: %+v", rep.Results)
	}

	got := consumeAll(t, topic, 5)
	byValue := map[string]*kgo.Record{}
	for _, r := range got {
		byValue[string(r.Key)+"|"+string(r.Value)] = r
	}
	want := []struct{ key, value string }{
		{"s3", `{"sensor":"s3","value":21.7}`},
		{"", "plain text ünïcode"},
		{"42", "[1,2,3]"},
		{"\x00\x01\x02", "\xff\x00\xfe"},
		{"nullvalue", ""},
	}
	for _, w := range want {
		if byValue[w.key+"|"+w.value] == nil {
			t.Errorf("record %q=%q not consumed; got %v", w.key, w.value, got)
		}
	}
	if r := byValue["s3|"+want[0].value]; r != nil {
		if len(r.Headers) != 2 || r.Headers[0].Key != "source" || string(r.Headers[0].Value) != "http" || string(r.Headers[1].Value) != "7" {
			t.Errorf("headers %+v", r.Headers)
		}
	}
	for _, r := range got {
		if string(r.Key) == "nullvalue" && r.Value != nil {
			t.Errorf("null value stored as %q", r.Value)
		}
		if string(r.Value) == "plain text ünïcode" && r.Key != nil {
			t.Errorf("absent key stored as %q", r.Key)
		}
	}

	// And read back through the API: encodings say what was stored.
	var p pageReply
	e.do("GET", "/api/v1/topics/"+topic+"/messages?partition=1&order=oldest", nil, &p)
	if len(p.Records) != 2 || p.Records[0].ValueEncoding != "base64" || p.Records[0].Value != "/wD+" || p.Records[0].Headers[0].ValueBase64 == nil || p.Records[1].Value != nil {
		t.Errorf("partition 1 page: %+v", p.Records)
	}
}

// TestProduceKcat reads what the HTTP API produced with kcat (librdkafka),
// a client that shares no code with the console.
func TestProduceKcat(t *testing.T) {
	t.Parallel()
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if inCI() {
			t.Fatal("kcat not found; CI must have it: `make deps` installs it")
		}
		t.Skip("kcat not found; `make deps` installs it")
	}
	e := newEnv(t)
	topic := e.topic(1)
	var rep produceReply
	e.do("POST", "/api/v1/topics/"+topic+"/records", `{"records":[{"key":"a","value":{"x":1}},{"key":"b","value":"two"},{"key":"c","value":3.5}]}`, &rep)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-b", kafkaAddr, "-C", "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s|%o\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	if want := "a={\"x\":1}|0\nb=two|1\nc=3.5|2\n"; string(out) != want {
		t.Errorf("kcat read %q, want %q", out, want)
	}
}

func TestProduceMistakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.MaxBodyBytes = 4 << 20 })
	topic := e.topic(2)
	path := "/api/v1/topics/" + topic + "/records"
	e.wantStatus("POST", path, `{"records":[{"value":1}`, 400, "bad_json")
	e.wantStatus("POST", path, `not json`, 400, "bad_json")
	e.wantStatus("POST", path, ``, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[]}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":null}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":{"value":1}}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[1]}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[{"value":1}],"extra":1}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[{"value":1}]} {}`, 400, "bad_json")
	e.wantStatus("POST", path, `[{"value":1}]`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[{"value":1},{"partition":"x"}]}`, 400, "bad_json")
	// One record over the limit: refused, nothing produced.
	over := `{"records":[` + strings.Repeat(`{"value":1},`, 10000) + `{"value":1}]}`
	e.wantStatus("POST", path, over, 400, "too_many_records")
	e.wantStatus("POST", path, `{"records":[{"value":1,"vaule":2}]}`, 400, "bad_json")
	e.wantStatus("POST", path, `{"records":[{"value":"a","value_base64":"YQ=="}]}`, 400, "bad_record")
	e.wantStatus("POST", path, `{"records":[{"value_base64":"***"}]}`, 400, "bad_record")
	e.wantStatus("POST", path, `{"records":[{"value":1,"partition":2}]}`, 400, "bad_partition")
	e.wantStatus("POST", path, `{"records":[{"value":1,"partition":-1}]}`, 400, "bad_record")
	e.wantStatus("POST", path, `{"records":[{"value":1,"headers":"h"}]}`, 400, "bad_record")
	e.wantStatus("POST", path, `{"records":[{"value":1,"headers":[{"value":"v"}]}]}`, 400, "bad_record")
	e.wantStatus("POST", "/api/v1/topics/no-such-topic-here/records", `{"records":[{"value":1}]}`, 404, "unknown_topic")

	// Content type other than JSON.
	req, _ := http.NewRequest("POST", e.url+path, strings.NewReader(`{"records":[{"value":1}]}`))
	req.Header.Set("Content-Type", "text/plain")
	if resp, err := e.http.Do(req); err != nil || resp.StatusCode != 415 {
		t.Errorf("text/plain body: %v %v", resp.StatusCode, err)
	}

	// A record larger than the cluster takes: 413 with the reason per record.
	big := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{'x'}, 1<<20+100))
	out := e.wantStatus("POST", path, `{"records":[{"value_base64":"`+big+`"}]}`, 413, "")
	if res := out["results"].([]any)[0].(map[string]any); res["code"] != "record_too_large" || !strings.Contains(res["error"].(string), "larger than") {
		t.Errorf("oversize result %v", res)
	}
	// One good and one too large: 207, each with its own report.
	var rep produceReply
	if s := e.do("POST", path, `{"records":[{"value":"ok"},{"value_base64":"`+big+`"}]}`, &rep); s != 207 {
		t.Errorf("mixed: status %d", s)
	}
	if len(rep.Results) != 2 || rep.Results[0].Offset == nil || rep.Results[1].Code != "record_too_large" {
		t.Errorf("mixed: %+v", rep.Results)
	}
	// A body over MaxBodyBytes.
	huge := strings.Repeat("x", 5<<20)
	e.wantStatus("POST", path, `{"records":[{"value":"`+huge+`"}]}`, 413, "body_too_large")
}

func TestProduceConfluentV3(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	body := `{"partition_id":1,"headers":[{"name":"h","value":"dg=="}],
		"key":{"type":"STRING","data":"k1"},"value":{"type":"JSON","data":{"a":[1,2]}},"timestamp":"2024-05-01T12:00:00Z"}`
	var v3 map[string]any
	if s := e.do("POST", "/v3/clusters/any/topics/"+topic+"/records", body, &v3); s != 200 {
		t.Fatalf("v3: status %d %v", s, v3)
	}
	if v3["error_code"] != float64(200) || v3["partition_id"] != float64(1) || v3["offset"] != float64(0) || v3["topic_name"] != topic {
		t.Errorf("v3 reply %v", v3)
	}
	// The same shape at our own endpoint; BINARY data is base64.
	if s := e.do("POST", "/api/v1/topics/"+topic+"/records", `{"partition_id":0,"value":{"type":"BINARY","data":"AAE="}}`, &v3); s != 200 || v3["offset"] != float64(0) {
		t.Errorf("v3 at /api/v1: %d %v", s, v3)
	}
	got := consumeAll(t, topic, 2)
	if string(got[0].Value) != "\x00\x01" || string(got[1].Key) != "k1" || string(got[1].Value) != `{"a":[1,2]}` ||
		len(got[1].Headers) != 1 || string(got[1].Headers[0].Value) != "v" || got[1].Timestamp.UnixMilli() != 1714564800000 {
		t.Errorf("consumed %+v %+v", got[0], got[1])
	}
	// Errors in v3's shape.
	if s := e.do("POST", "/v3/clusters/any/topics/nope-nope/records", `{"value":{"data":1}}`, &v3); s != 404 || v3["error_code"] != float64(404) {
		t.Errorf("v3 unknown topic: %d %v", s, v3)
	}
	if s := e.do("POST", "/v3/clusters/any/topics/"+topic+"/records", `{"value":{"type":"AVRO","data":1}}`, &v3); s != 400 || v3["error_code"] != float64(400) {
		t.Errorf("v3 bad type: %d %v", s, v3)
	}
	if s := e.do("POST", "/v3/clusters/any/topics/"+topic+"/records", `{"value":{"schema_id":3,"data":1}}`, &v3); s != 400 {
		t.Errorf("v3 schema: %d %v", s, v3)
	}
}

func TestRoutingAndSafety(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var idx struct{ Endpoints []map[string]string }
	e.do("GET", "/api", nil, &idx)
	if len(idx.Endpoints) < 15 {
		t.Errorf("GET /api lists %d endpoints", len(idx.Endpoints))
	}
	req, _ := http.NewRequest("GET", e.url+"/api", nil)
	req.Header.Set("Accept", "text/html")
	if resp, err := e.http.Do(req); err != nil || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /api as HTML: %v", err)
	}
	e.wantStatus("GET", "/api/v1/nothing", nil, 404, "not_found")
	e.wantStatus("PUT", "/api/v1/topics", nil, 405, "method_not_allowed")

	// A cross-origin POST (a page elsewhere posting to the console) is
	// refused; the same origin is fine.
	req, _ = http.NewRequest("POST", e.url+"/api/v1/topics", strings.NewReader(`{"name":"evil"}`))
	req.Header.Set("Origin", "http://evil.example")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := e.http.Do(req); err != nil || resp.StatusCode != 403 {
		t.Errorf("cross-origin POST: %v %v", resp.StatusCode, err)
	}

	// The front end.
	resp, err := e.http.Get(e.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || resp.Header.Get("Content-Security-Policy") == "" {
		t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	for _, p := range []string{"/assets/app.js", "/assets/style.css", "/favicon.svg"} {
		resp, err := e.http.Get(e.url + p)
		if err != nil || resp.StatusCode != 200 {
			t.Errorf("GET %s: %v %v", p, resp.StatusCode, err)
			continue
		}
		resp.Body.Close()
		req, _ := http.NewRequest("GET", e.url+p, nil)
		req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
		if r2, err := e.http.Do(req); err != nil || r2.StatusCode != 304 {
			t.Errorf("GET %s with its ETag: %v %v", p, r2.StatusCode, err)
		}
	}
	if resp, _ := e.http.Get(e.url + "/nope.js"); resp.StatusCode != 404 {
		t.Errorf("GET /nope.js: %d", resp.StatusCode)
	}
}

// A console whose cluster is down answers with a 5xx that names the
// problem, quickly, and never a 500.
func TestClusterDown(t *testing.T) {
	t.Parallel()
	e := newEnvAt(t, "127.0.0.1:1", func(c *console.Config) { c.RequestTimeout = 2 * time.Second })
	var out map[string]any
	s := e.do("GET", "/api/v1/topics", nil, &out)
	if s != 502 && s != 504 {
		t.Errorf("status %d %v", s, out)
	}
}

func TestStats(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.SampleInterval = 100 * time.Millisecond })
	topic := e.topic(1)
	e.do("GET", "/api/v1/stats", nil, nil) // starts the sampler
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				e.cl.Produce(context.Background(), &kgo.Record{Topic: topic, Value: []byte("x")}, nil)
			}
		}
	}()
	defer func() { close(stop); <-done }()
	eventually(t, 10*time.Second, func() error {
		var s console.StatsJSON
		e.do("GET", "/api/v1/stats?topic="+topic, nil, &s)
		col := s.Topics[topic]
		if len(s.T) < 3 || len(col) != len(s.T) || len(s.RecordsPerSec) != len(s.T) {
			return fmt.Errorf("stats %+v", s)
		}
		var nonzero bool
		for _, v := range col {
			nonzero = nonzero || v != nil && *v > 0
		}
		if !nonzero {
			return fmt.Errorf("no throughput for %s: %+v", topic, col)
		}
		return nil
	})
	var c console.ClusterJSON
	e.do("GET", "/api/v1/cluster", nil, &c)
	if c.RecordsPerSec == nil {
		t.Error("cluster records_per_sec is null after samples")
	}
}
