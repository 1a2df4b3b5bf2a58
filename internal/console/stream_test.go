package console_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/stromhq/strom/internal/console"
)

// msg is one stream message: a record or a control message.
type msg struct {
	Type         string
	Topic        string
	Partition    int32
	Offset       int64
	Timestamp    int64
	Key          any
	Value        any
	Offsets      map[string]int64
	Dropped      int64
	TotalDropped int64 `json:"total_dropped"`
	Error        string
	Code         string
}

// wsStream opens a WebSocket stream and returns a function reading the
// next message.
func wsStream(t *testing.T, e *testEnv, topic, query string) (next func() msg, closeFn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	url := "ws" + strings.TrimPrefix(e.url, "http") + "/api/v1/topics/" + topic + "/stream?" + query
	conn, resp, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		cancel()
		t.Fatalf("dial %s: %v (%v)", url, err, resp)
	}
	conn.SetReadLimit(8 << 20)
	next = func() msg {
		t.Helper()
		rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
		defer rcancel()
		_, b, err := conn.Read(rctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("message %s: %v", b, err)
		}
		return m
	}
	return next, func() { conn.Close(websocket.StatusNormalClosure, ""); cancel() }
}

// sseStream opens an SSE stream and returns a reader of the next event.
func sseStream(t *testing.T, e *testEnv, topic, query string) (next func() (event string, m msg), closeFn func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/api/v1/topics/"+topic+"/stream?"+query, nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		cancel()
		t.Fatalf("SSE: status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	next = func() (string, msg) {
		t.Helper()
		event, data := "message", ""
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if data == "" {
					continue
				}
				var m msg
				if err := json.Unmarshal([]byte(data), &m); err != nil {
					t.Fatalf("event data %s: %v", data, err)
				}
				return event, m
			case strings.HasPrefix(line, "event: "):
				event = line[len("event: "):]
			case strings.HasPrefix(line, "data: "):
				data = line[len("data: "):]
			}
		}
		t.Fatalf("SSE stream ended: %v", sc.Err())
		return "", msg{}
	}
	return next, func() { cancel(); resp.Body.Close() }
}

func values10(e *testEnv, topic string, from, n int) {
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	e.produce(recs...)
}

func TestStreamWebSocket(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	values10(e, topic, 0, 5)

	// From the beginning: the old records in order, then new ones.
	next, closeWS := wsStream(t, e, topic, "from=earliest")
	if m := next(); m.Type != "ready" || m.Offsets["0"] != 0 {
		t.Fatalf("first message %+v", m)
	}
	for i := range 5 {
		if m := next(); m.Offset != int64(i) || m.Value.(map[string]any)["i"] != float64(i) || m.Topic != topic {
			t.Fatalf("record %d: %+v", i, m)
		}
	}
	values10(e, topic, 5, 5)
	for i := 5; i < 10; i++ {
		if m := next(); m.Offset != int64(i) {
			t.Fatalf("live record %d: %+v", i, m)
		}
	}
	closeWS()

	// Latest (the default): only what comes after the ready message.
	next, closeWS = wsStream(t, e, topic, "")
	if m := next(); m.Type != "ready" || m.Offsets["0"] != 10 {
		t.Fatalf("ready %+v", m)
	}
	values10(e, topic, 10, 1)
	if m := next(); m.Offset != 10 {
		t.Fatalf("latest got %+v", m)
	}
	closeWS()

	// From an offset of a partition, with a key filter.
	next, closeWS = wsStream(t, e, topic, "from=4&partition=0&key=k1")
	next()
	for _, want := range []int64{4, 7, 10} {
		if m := next(); m.Offset != want || m.Key != "k1" {
			t.Fatalf("filtered from 4: got %+v, want offset %d", m, want)
		}
	}
	closeWS()

	// From a time.
	var p struct{ Records []struct{ Timestamp int64 } }
	e.do("GET", "/api/v1/topics/"+topic+"/messages?partition=0&offset=6&order=oldest&limit=1", nil, &p)
	next, closeWS = wsStream(t, e, topic, fmt.Sprintf("from=@%d", p.Records[0].Timestamp))
	if m := next(); m.Offsets["0"] > 6 {
		t.Fatalf("from time: ready %+v", m)
	}
	closeWS()
}

func TestStreamSSE(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(2)
	values10(e, topic, 0, 20)
	next, closeSSE := sseStream(t, e, topic, "from=earliest&where=i+%3E%3D+10")
	defer closeSSE()
	if ev, m := next(); ev != "ready" || len(m.Offsets) != 2 {
		t.Fatalf("ready: %s %+v", ev, m)
	}
	last := map[int32]int64{0: -1, 1: -1}
	seen := 0
	for seen < 10 {
		ev, m := next()
		if ev != "message" {
			t.Fatalf("event %s %+v", ev, m)
		}
		if i := m.Value.(map[string]any)["i"].(float64); i < 10 {
			t.Errorf("filter let i=%v through", i)
		}
		if m.Offset <= last[m.Partition] {
			t.Errorf("partition %d: offset %d after %d", m.Partition, m.Offset, last[m.Partition])
		}
		last[m.Partition] = m.Offset
		seen++
	}
	values10(e, topic, 20, 3)
	for range 3 {
		if _, m := next(); m.Value.(map[string]any)["i"].(float64) < 20 {
			t.Errorf("live SSE record %+v", m)
		}
	}
}

func TestStreamMistakes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.MaxStreams = 1 })
	topic := e.topic(2)
	path := "/api/v1/topics/" + topic + "/stream"
	e.wantStatus("GET", path, nil, 400, "not_a_stream")
	sse := func(q string, status int, code string) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+path+q, nil)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body struct{ Error, Code string }
		json.NewDecoder(resp.Body).Decode(&body)
		if resp.StatusCode != status || body.Code != code || body.Error == "" {
			t.Errorf("SSE %s: %d %+v, want %d %s", q, resp.StatusCode, body, status, code)
		}
	}
	sse("?from=yesterday", 400, "bad_position")
	sse("?from=5", 400, "bad_position") // an offset needs a partition
	sse("?from=99&partition=0", 400, "offset_out_of_range")
	sse("?partition=9", 400, "bad_partition")
	sse("?where=x+%3D%3D", 400, "bad_filter")
	sse("?overflow=maybe", 400, "bad_overflow")
	req, _ := http.NewRequest("GET", e.url+"/api/v1/topics/no-such-stream-topic/stream", nil)
	req.Header.Set("Accept", "text/event-stream")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 404 {
		t.Errorf("unknown topic: %v %v", resp.StatusCode, err)
	}

	// MaxStreams is 1: a second stream is refused while the first is open.
	next, closeWS := wsStream(t, e, topic, "")
	next()
	sse("", 503, "too_many_streams")
	closeWS()
	eventually(t, 5*time.Second, func() error {
		if n := len(e.con.OpenStreams()); n != 0 {
			return fmt.Errorf("%d streams still open", n)
		}
		if n := e.con.StreamsAdmitted(); n != 0 {
			return fmt.Errorf("%d stream slots still held", n)
		}
		return nil
	})
	next, closeWS = wsStream(t, e, topic, "")
	next()
	closeWS()
}

// TestStreamSlowReader is a client that reads nothing while a lot is
// produced: the server's queue for it stays within its bounds, the
// excess is dropped and counted, and the client is told.
func TestStreamSlowReader(t *testing.T) {
	t.Parallel()
	const queue, queueBytes = 16, 32 << 10
	e := newEnv(t, func(c *console.Config) {
		c.StreamQueueRecords = queue
		c.StreamQueueBytes = queueBytes
	})
	topic := e.topic(1)

	// A raw connection with a small receive buffer, so that the kernel's
	// buffers fill quickly too.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := d.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /api/v1/topics/%s/stream HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n", topic)
	eventually(t, 5*time.Second, func() error {
		if len(e.con.OpenStreams()) != 1 {
			return fmt.Errorf("stream not open yet")
		}
		return nil
	})
	time.Sleep(200 * time.Millisecond) // the ready message is out

	value := strings.Repeat("v", 2000)
	var recs []*kgo.Record
	for i := range 3000 {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `{"i":%d,"pad":%q}`, i, value)})
	}
	e.produce(recs...)
	var st console.StreamStats
	eventually(t, 20*time.Second, func() error {
		ss := e.con.OpenStreams()
		if len(ss) != 1 {
			return fmt.Errorf("%d streams", len(ss))
		}
		st = ss[0]
		if st.Dropped == 0 {
			return fmt.Errorf("nothing dropped yet: %+v", st)
		}
		return nil
	})
	if st.MaxQueued > queue || st.MaxBytes > queueBytes {
		t.Errorf("queue grew past its bounds: %+v (bounds %d records, %d bytes)", st, queue, queueBytes)
	}
	t.Logf("slow reader: %+v", st)

	// Now read: records in order, with a dropped message in between.
	br := bufio.NewReaderSize(conn, 1<<16)
	conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	sawDropped, last := false, -1
	for last < 2999 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read after %d: %v (dropped event seen: %v)", last, err, sawDropped)
		}
		if strings.HasPrefix(line, "event: dropped") {
			sawDropped = true
		}
		if !strings.HasPrefix(line, "data: {\"topic\"") {
			continue
		}
		var m struct{ Value struct{ I int } }
		if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &m); err != nil {
			t.Fatal(err)
		}
		if m.Value.I <= last {
			t.Fatalf("record %d after %d", m.Value.I, last)
		}
		last = m.Value.I
	}
	if !sawDropped {
		t.Error("no dropped event reached the client")
	}
}

// With overflow=block nothing is dropped: a slow reader gets every
// record, in order, while the queue stays bounded.
func TestStreamBlock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *console.Config) { c.StreamQueueRecords = 8 })
	topic := e.topic(1)
	values10(e, topic, 0, 300)
	next, closeWS := wsStream(t, e, topic, "from=earliest&overflow=block")
	defer closeWS()
	next()
	for i := range 300 {
		m := next()
		if m.Type != "" || m.Offset != int64(i) {
			t.Fatalf("record %d: %+v", i, m)
		}
		if i%50 == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	for _, st := range e.con.OpenStreams() {
		if st.Dropped != 0 || st.MaxQueued > 8 {
			t.Errorf("block mode: %+v", st)
		}
	}
}

// Deleting the topic under a stream ends it with an error message.
func TestStreamTopicDeleted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	next, closeWS := wsStream(t, e, topic, "")
	defer closeWS()
	next()
	e.wantStatus("DELETE", "/api/v1/topics/"+topic, nil, 200, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		m := next()
		if m.Type == "error" {
			if m.Code != "unknown_topic" {
				t.Errorf("error message %+v", m)
			}
			return
		}
	}
	t.Error("no error message after the topic was deleted")
}

// Close ends open streams (an SSE stream would otherwise hold the HTTP
// server's Shutdown open) and returns promptly.
func TestCloseEndsStreams(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	topic := e.topic(1)
	next, closeSSE := sseStream(t, e, topic, "")
	defer closeSSE()
	next()
	nextWS, closeWS := wsStream(t, e, topic, "")
	defer closeWS()
	nextWS()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.con.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	if n := len(e.con.OpenStreams()); n != 0 {
		t.Errorf("%d streams open after Close", n)
	}
	e.wantStatus("GET", "/api/v1/topics", nil, 503, "shutting_down")
}
