package console

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"github.com/stromhq/strom/internal/jsonenc"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// A stream sends a topic's records to one client as they arrive:
//
//	Kafka --(fetch goroutine: poll, filter, encode)--> queue --(writer)--> client
//
// The queue is bounded in records and bytes. overflow=drop (default)
// drops the oldest queued records when it is full and tells the client
// how many with a "dropped" message; overflow=block stops polling until
// the writer makes room, so the consumer falls behind instead (kgo's own
// buffer is bounded by the fetch sizes below). A client that accepts
// nothing for StreamWriteTimeout is disconnected.
//
// Messages, as WebSocket text messages or SSE events:
//
//	record    {"topic":..,"partition":..,"offset":..,...}    (SSE event "message")
//	ready     {"type":"ready","topic":"t","offsets":{"0":12}} (SSE event "ready")
//	dropped   {"type":"dropped","dropped":40,"total_dropped":120}
//	error     {"type":"error","error":"...","code":"..."}    then the stream ends

const (
	streamFetchBytes = 1 << 20
	streamPollMax    = 256
	streamPing       = 20 * time.Second
	// streamIdleCheck: after this long without records, a stream checks
	// that its topic still exists.
	streamIdleCheck = 3 * time.Second
)

// stream is one live client.
type stream struct {
	topic string
	block bool
	flt   *filter

	mu struct {
		sync.Mutex
		items      [][]byte // ring buffer of encoded records
		head, n    int
		bytes      int
		dropped    int64 // since the last report
		total      int64 // dropped over the stream's life
		maxQueued  int   // high-water marks, for tests and metrics
		maxBytes   int
		sent       int64
		fetchErr   error
		fetchEnded bool
		lastSent   time.Time // the ready message, or the last records
	}
	maxItems, maxBytes int
	// client is the remote address's host, for the per-client limit;
	// evict ends the stream (admission, streamadmit.go).
	client string
	evict  context.CancelFunc
	notify chan struct{} // to the writer: records or an error
	room   chan struct{} // to the fetcher (block): room again
}

func newStream(topic string, flt *filter, block bool, maxItems, maxBytes int) *stream {
	s := &stream{topic: topic, flt: flt, block: block, maxItems: maxItems, maxBytes: maxBytes,
		notify: make(chan struct{}, 1), room: make(chan struct{}, 1)}
	s.mu.items = make([][]byte, maxItems)
	s.mu.lastSent = time.Now()
	return s
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues b. When the queue is full it drops the oldest records
// (drop) or reports false (block: the caller waits for room and retries).
// One record larger than the byte bound is still queued on its own.
func (s *stream) push(b []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	full := func() bool {
		return s.mu.n == s.maxItems || s.mu.n > 0 && s.mu.bytes+len(b) > s.maxBytes
	}
	if full() && s.block {
		return false
	}
	for full() {
		old := s.mu.items[s.mu.head]
		s.mu.items[s.mu.head] = nil
		s.mu.head = (s.mu.head + 1) % s.maxItems
		s.mu.n--
		s.mu.bytes -= len(old)
		s.mu.dropped++
		s.mu.total++
	}
	s.mu.items[(s.mu.head+s.mu.n)%s.maxItems] = b
	s.mu.n++
	s.mu.bytes += len(b)
	s.mu.maxQueued = max(s.mu.maxQueued, s.mu.n)
	s.mu.maxBytes = max(s.mu.maxBytes, s.mu.bytes)
	signal(s.notify)
	return true
}

// taken is what one take returns.
type taken struct {
	dropped, total int64 // dropped since the last take, and over the stream's life
	fetchErr       error
	fetchEnded     bool
}

// take empties the queue into dst.
func (s *stream) take(dst [][]byte) ([][]byte, taken) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.mu.n > 0 {
		dst = append(dst, s.mu.items[s.mu.head])
		s.mu.items[s.mu.head] = nil
		s.mu.head = (s.mu.head + 1) % s.maxItems
		s.mu.n--
	}
	s.mu.bytes = 0
	tk := taken{dropped: s.mu.dropped, total: s.mu.total, fetchErr: s.mu.fetchErr, fetchEnded: s.mu.fetchEnded}
	s.mu.dropped = 0
	signal(s.room)
	return dst, tk
}

func (s *stream) endFetch(err error) {
	s.mu.Lock()
	s.mu.fetchErr, s.mu.fetchEnded = err, true
	s.mu.Unlock()
	signal(s.notify)
}

// streamStats is a snapshot of a stream's queue, for tests.
type streamStats struct {
	Queued, MaxQueued, MaxBytes int
	Dropped, Sent               int64
}

// transport writes messages to one client.
type transport interface {
	// send writes one message; kind is "" for a record.
	send(ctx context.Context, kind string, msg []byte) error
	flush() error
	ping(ctx context.Context) error
	close(err error)
}

func (c *Console) stream(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	topic := r.PathValue("topic")
	sse := wantsSSE(r)
	ws := !sse && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if !sse && !ws {
		return badRequest("not_a_stream", "this endpoint streams: open a WebSocket, or send Accept: text/event-stream for Server-Sent Events")
	}
	from, err := parsePosition("from", q.Get("from"))
	if err != nil {
		return err
	}
	flt, err := parseFilter(q)
	if err != nil {
		return err
	}
	block := false
	switch q.Get("overflow") {
	case "", "drop":
	case "block":
		block = true
	default:
		return badRequest("bad_overflow", "overflow=%s: want drop or block", q.Get("overflow"))
	}
	maxBacklog, err := c.parseMaxBacklog(q.Get("max_backlog"))
	if err != nil {
		return err
	}
	ctx, cancel := c.requestCtx(r)
	offsets, err := c.streamOffsets(ctx, topic, q, from, maxBacklog)
	cancel()
	if err != nil {
		return err
	}
	// The stream ends when the client goes, the console closes, the
	// fetch goroutine fails, a newer stream takes its place (evict), or
	// its session ends.
	sctx, scancel := context.WithCancel(r.Context())
	defer scancel()
	// A stream of a session that ends (logout, expiry) ends with it.
	defer context.AfterFunc(c.who(sctx).ctx, scancel)()
	s := newStream(topic, flt, block, c.cfg.StreamQueueRecords, c.cfg.StreamQueueBytes)
	s.client, s.evict = clientOf(r), scancel
	if err := c.acquireStream(s); err != nil {
		return err
	}
	defer c.releaseStream(s)

	cl, err := kgo.NewClient(c.userOpts(sctx,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(streamFetchBytes),
		kgo.FetchMaxPartitionBytes(streamFetchBytes),
		kgo.FetchMaxWait(500*time.Millisecond),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
	)...)
	if err != nil {
		return err
	}
	defer cl.Close()

	var t transport
	if sse {
		if t, err = newSSE(w, c.cfg.StreamWriteTimeout); err != nil {
			return err
		}
	} else {
		conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
			OriginPatterns:  originHosts(c.cfg.AllowedOrigins),
			CompressionMode: websocket.CompressionDisabled,
		})
		if err != nil {
			return nil // Accept has answered the client
		}
		t = &wsTransport{conn: conn, timeout: c.cfg.StreamWriteTimeout}
	}
	stop := context.AfterFunc(c.ctx, scancel)
	defer stop()
	if wt, ok := t.(*wsTransport); ok {
		sctx = wt.conn.CloseRead(sctx)
	}

	c.trackStream(s, true)
	defer c.trackStream(s, false)
	c.metrics.streams.Inc()
	defer c.metrics.streams.Dec()

	ready := []byte(`{"type":"ready","topic":`)
	ready = jsonenc.AppendString(ready, topic)
	ready = append(ready, `,"offsets":{`...)
	first := true
	for _, p := range sortedKeys(offsets) {
		if !first {
			ready = append(ready, ',')
		}
		first = false
		ready = append(ready, '"')
		ready = strconv.AppendInt(ready, int64(p), 10)
		ready = append(ready, `":`...)
		ready = strconv.AppendInt(ready, offsets[p].EpochOffset().Offset, 10)
	}
	ready = append(ready, "}}"...)
	if err := t.send(sctx, "ready", ready); err == nil {
		err = t.flush()
	}

	fetchDone := make(chan struct{})
	go func() {
		defer close(fetchDone)
		s.endFetch(c.fetchLoop(sctx, cl, s))
	}()
	werr := c.writeLoop(sctx, t, s)
	// Close before cancelling sctx: the WebSocket's CloseRead drops the
	// connection without a close frame once its context ends, and the
	// client must see why (1008 with the reason, or 1001 when idle).
	t.close(werr)
	scancel()
	<-fetchDone
	return nil
}

// streamOffsets resolves the start position of each partition to an exact
// offset now, so that "latest" means the records produced after the
// stream was opened (the ready message), not after kgo's first fetch.
//
// maxBacklog > 0 bounds the records before the end of the partitions that
// the stream starts with: a live view asks for no more than its queue
// holds, so that a slow client does not drop the start of its history
// (dropping the oldest queued records would leave whole partitions
// without their history: the fetches return one partition after another).
func (c *Console) streamOffsets(ctx context.Context, topic string, q url.Values, from position, maxBacklog int64) (map[int32]kgo.Offset, error) {
	td, err := c.topicDetail(ctx, topic)
	if err != nil {
		return nil, err
	}
	parts, err := partitionsOf(q, td)
	if err != nil {
		return nil, err
	}
	if from.kind == posOffset && len(parts) != 1 {
		return nil, badRequest("bad_position", "from=%d needs a partition (?partition=N): offsets are per partition", from.offset)
	}
	ranges, err := c.partitionRanges(ctx, topic, parts)
	if err != nil {
		return nil, err
	}
	var listed map[int32]int64
	if from.kind == posTime {
		lo, err := c.admin(ctx).ListOffsetsAfterMilli(ctx, from.millis, topic)
		if err != nil {
			return nil, err
		}
		listed = map[int32]int64{}
		for _, p := range parts {
			if o, ok := lo.Lookup(topic, p); ok && o.Err == nil && o.Offset >= 0 {
				listed[p] = o.Offset
			} else {
				listed[p] = ranges[p].end
			}
		}
	}
	out := make(map[int32]kgo.Offset, len(parts))
	starts := make(map[int32]int64, len(parts))
	for _, p := range parts {
		rg := ranges[p]
		var at int64
		switch from.kind {
		case posLatest:
			at = rg.end
		case posEarliest:
			at = rg.start
		case posTime:
			at = listed[p]
		case posOffset:
			if from.offset < rg.start || from.offset > rg.end {
				return nil, outOfRange(topic, p, from.offset, rg)
			}
			at = from.offset
		}
		starts[p] = at
	}
	if maxBacklog > 0 {
		ends := make(map[int32]int64, len(parts))
		for _, p := range parts {
			ends[p] = ranges[p].end
		}
		starts = capBacklog(starts, ends, maxBacklog)
	}
	for p, at := range starts {
		out[p] = kgo.NewOffset().At(at)
	}
	return out, nil
}

// capBacklog raises the start offsets so that at most n records lie between
// them and the ends, sharing n between the partitions in proportion to
// their backlogs (so that, with partitions written at similar rates, every
// partition keeps about the same span of time).
func capBacklog(starts, ends map[int32]int64, n int64) map[int32]int64 {
	var total int64
	for p, at := range starts {
		total += max(0, ends[p]-at)
	}
	if total <= n {
		return starts
	}
	out := make(map[int32]int64, len(starts))
	for p, at := range starts {
		b := max(0, ends[p]-at)
		// b*n/total without overflow for any int64 offsets.
		keep := int64(float64(b) / float64(total) * float64(n))
		out[p] = max(at, ends[p]-keep)
	}
	return out
}

// parseMaxBacklog reads max_backlog: a number of records, or "queue" for
// what the stream's queue holds.
func (c *Console) parseMaxBacklog(s string) (int64, error) {
	switch s {
	case "":
		return 0, nil
	case "queue":
		return int64(c.cfg.StreamQueueRecords), nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, badRequest("bad_max_backlog", "max_backlog=%s: want a positive number of records, or queue", s)
	}
	return n, nil
}

func (c *Console) fetchLoop(ctx context.Context, cl *kgo.Client, s *stream) error {
	buf := make([]byte, 0, 1024)
	for {
		pctx, cancel := context.WithTimeout(ctx, streamIdleCheck)
		fs := cl.PollRecords(pctx, streamPollMax)
		idle := pctx.Err() != nil && fs.NumRecords() == 0
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if idle {
			// kgo retries a deleted topic for a long while; ask directly.
			if err := c.topicGone(ctx, s.topic); err != nil {
				return err
			}
			continue
		}
		var ferr error
		fs.EachError(func(_ string, _ int32, err error) {
			switch {
			case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, kgo.ErrClientClosed):
			case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
				ferr = notFound("unknown_topic", "topic %q was deleted", s.topic)
			default:
				// kgo retries retriable errors itself; anything it hands
				// back ends the stream with a reason.
				if ferr == nil && !kerr.IsRetriable(err) {
					ferr = err
				}
			}
		})
		if ferr != nil {
			return ferr
		}
		for it := fs.RecordIter(); !it.Done(); {
			r := it.Next()
			if !s.flt.match(r) {
				continue
			}
			buf = jsonenc.AppendRecord(buf[:0], r)
			msg := append([]byte(nil), buf...)
			for !s.push(msg) {
				select {
				case <-ctx.Done():
					return nil
				case <-s.room:
				}
			}
		}
	}
}

// topicGone returns a 404 error when the topic no longer exists.
func (c *Console) topicGone(ctx context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := c.topicDetail(ctx, topic); err != nil {
		if ae := httpError(err); ae.Code == "unknown_topic" {
			return notFound("unknown_topic", "topic %q was deleted", topic)
		}
	}
	return nil
}

func (c *Console) writeLoop(ctx context.Context, t transport, s *stream) error {
	ping := time.NewTicker(streamPing)
	defer ping.Stop()
	idle := time.NewTimer(c.cfg.StreamIdleTimeout)
	defer idle.Stop()
	var batch [][]byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ping.C:
			if err := t.ping(ctx); err != nil {
				return err
			}
			continue
		case <-idle.C:
			// Nothing to send for a long while: give the slot back; a
			// client that still wants the stream reconnects.
			return errStreamIdle
		case <-s.notify:
		}
		var tk taken
		batch, tk = s.take(batch[:0])
		if tk.dropped > 0 {
			c.metrics.dropped.Add(float64(tk.dropped))
			msg := fmt.Appendf(nil, `{"type":"dropped","dropped":%d,"total_dropped":%d}`, tk.dropped, tk.total)
			if err := t.send(ctx, "dropped", msg); err != nil {
				return err
			}
		}
		for i, m := range batch {
			if err := t.send(ctx, "", m); err != nil {
				return err
			}
			batch[i] = nil
		}
		if len(batch) > 0 {
			s.mu.Lock()
			s.mu.sent += int64(len(batch))
			s.mu.lastSent = time.Now()
			s.mu.Unlock()
			idle.Reset(c.cfg.StreamIdleTimeout)
			c.metrics.sent.Add(float64(len(batch)))
		}
		if tk.fetchEnded {
			if ferr := tk.fetchErr; ferr != nil {
				ae := httpError(ferr)
				msg := []byte(`{"type":"error","error":`)
				msg = jsonenc.AppendString(msg, ae.Msg)
				msg = append(msg, `,"code":`...)
				msg = jsonenc.AppendString(msg, ae.Code)
				msg = append(msg, '}')
				t.send(ctx, "error", msg)
				t.flush()
				return ferr
			}
			return t.flush()
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
}

func (c *Console) trackStream(s *stream, open bool) {
	c.life.Lock()
	defer c.life.Unlock()
	if c.life.open == nil {
		c.life.open = map[*stream]struct{}{}
	}
	if open {
		c.life.open[s] = struct{}{}
	} else {
		delete(c.life.open, s)
	}
}

func wantsSSE(r *http.Request) bool {
	for _, a := range r.Header.Values("Accept") {
		if strings.Contains(a, "text/event-stream") {
			return true
		}
	}
	return false
}

// originHosts turns allowed origins into coder/websocket's host patterns.
func originHosts(origins []string) []string {
	var out []string
	for _, o := range origins {
		if u, err := url.Parse(o); err == nil && u.Host != "" {
			out = append(out, u.Host)
		}
	}
	return out
}

func sortedKeys[V any](m map[int32]V) []int32 {
	out := make([]int32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// wsTransport sends each message as one WebSocket text message.
type wsTransport struct {
	conn    *websocket.Conn
	timeout time.Duration
}

func (t *wsTransport) send(ctx context.Context, _ string, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.conn.Write(ctx, websocket.MessageText, msg)
}

func (t *wsTransport) flush() error { return nil }

func (t *wsTransport) ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	return t.conn.Ping(ctx)
}

func (t *wsTransport) close(err error) {
	if err == nil {
		t.conn.Close(websocket.StatusNormalClosure, "")
		return
	}
	if errors.Is(err, errStreamIdle) {
		// Going away, not a policy violation: the client may reconnect.
		t.conn.Close(websocket.StatusGoingAway, "idle")
		return
	}
	if ae := httpError(err); ae.Status < 500 {
		t.conn.Close(websocket.StatusPolicyViolation, trimReason(ae.Msg))
		return
	}
	t.conn.CloseNow()
}

// trimReason fits a close reason into a control frame (123 bytes).
func trimReason(s string) string {
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// sseTransport writes Server-Sent Events, flushing after each batch.
type sseTransport struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	timeout time.Duration
	buf     []byte
}

func newSSE(w http.ResponseWriter, timeout time.Duration) (*sseTransport, error) {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := &sseTransport{w: w, rc: http.NewResponseController(w), timeout: timeout}
	// A retry hint: reconnect after 2 s.
	t.buf = append(t.buf, "retry: 2000\n\n"...)
	return t, nil
}

func (t *sseTransport) send(_ context.Context, kind string, msg []byte) error {
	if kind != "" {
		t.buf = append(t.buf, "event: "...)
		t.buf = append(t.buf, kind...)
		t.buf = append(t.buf, '\n')
	}
	t.buf = append(t.buf, "data: "...)
	t.buf = append(t.buf, msg...)
	t.buf = append(t.buf, '\n', '\n')
	if len(t.buf) >= 64<<10 {
		return t.flush()
	}
	return nil
}

func (t *sseTransport) flush() error {
	if len(t.buf) == 0 {
		return nil
	}
	t.rc.SetWriteDeadline(time.Now().Add(t.timeout))
	_, err := t.w.Write(t.buf)
	t.buf = t.buf[:0]
	if err == nil {
		err = t.rc.Flush()
	}
	return err
}

func (t *sseTransport) ping(context.Context) error {
	t.buf = append(t.buf, ": ping\n\n"...)
	return t.flush()
}

func (t *sseTransport) close(error) {}
