package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
)

// DefaultMaxBodyBytes is the request body limit when Config leaves it 0.
const DefaultMaxBodyBytes = 8 << 20

// Config configures a Console. Zero values take the defaults in brackets.
type Config struct {
	// Brokers are the seed brokers, host:port. Required.
	Brokers []string
	// ClientOpts are extra franz-go options for every client the console
	// opens: TLS, SASL, client id.
	ClientOpts []kgo.Opt
	// Registerer receives the console's Prometheus metrics (none if nil).
	Registerer prometheus.Registerer
	Logger     *slog.Logger

	// RequestTimeout bounds the Kafka work of one API request [15s].
	RequestTimeout time.Duration
	// MaxBodyBytes bounds a request body [8 MiB].
	MaxBodyBytes int64
	// MaxStreams bounds the live streams open at once [64], and
	// MaxStreamsPerClient those from one remote address [16]. At either
	// limit a new stream replaces the one idle longest, if it has been
	// idle StreamEvictIdle [30s]; StreamIdleTimeout ends a stream that
	// has sent nothing for that long [10m] (streamadmit.go).
	MaxStreams          int
	MaxStreamsPerClient int
	StreamEvictIdle     time.Duration
	StreamIdleTimeout   time.Duration
	// StreamQueueRecords and StreamQueueBytes bound each stream's queue
	// between Kafka and the client [512 records, 4 MiB].
	StreamQueueRecords int
	StreamQueueBytes   int
	// StreamWriteTimeout closes a stream whose client accepts nothing for
	// this long [30s].
	StreamWriteTimeout time.Duration
	// SampleInterval and SampleHistory shape the throughput and lag
	// history kept in memory [2s, 450 samples: 15 minutes].
	SampleInterval time.Duration
	SampleHistory  int
	// AllowedOrigins are extra origins (scheme://host[:port]) allowed to
	// send state-changing requests and open streams; the console's own
	// origin always is.
	AllowedOrigins []string
	// ListenAddr is the address the handler is served on; its host, when
	// a name, is one the console answers to (see HostGuard).
	ListenAddr string
	// AllowedHosts are the other host names the Host header may carry
	// (see HostGuard; "*" allows any, which is unsafe). Every request,
	// reads included, with another Host is refused with 403.
	AllowedHosts []string
	// MaxProduceBytes bounds the body bytes of the produce requests being
	// handled at once, across the console [32 MiB]; -1 for no limit.
	// Otherwise at least MaxBodyBytes. A request waits for its share,
	// at most RequestTimeout, then gets 503 with Retry-After.
	MaxProduceBytes int64
	// Metrics reads the broker's Prometheus metrics, for what the Kafka
	// protocol has no request for: the log cleaner's state of compacted
	// partitions (cleaner.go). Nil: the compaction view says it has none.
	// MetricsURL reads a broker's /metrics as `strom topic cleaner` does;
	// a broker that runs the console hands it MetricsGatherer of its
	// registry.
	Metrics MetricsSource
	// Login, when set, requires a login (or an API token) for every API
	// call, and makes each call to Kafka as the logged-in user (SASL with
	// the user's password, see session.go); Brokers must then be a SASL
	// listener. Nil: the console is open and talks to Kafka with
	// ClientOpts alone (the broker's ANONYMOUS over PLAINTEXT).
	Login *Login
}

func (c *Config) defaults() {
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 15 * time.Second
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = 64
	}
	if c.MaxStreamsPerClient <= 0 {
		c.MaxStreamsPerClient = 16
	}
	if c.StreamEvictIdle <= 0 {
		c.StreamEvictIdle = 30 * time.Second
	}
	if c.StreamIdleTimeout <= 0 {
		c.StreamIdleTimeout = 10 * time.Minute
	}
	if c.StreamQueueRecords <= 0 {
		c.StreamQueueRecords = 512
	}
	if c.StreamQueueBytes <= 0 {
		c.StreamQueueBytes = 4 << 20
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = 30 * time.Second
	}
	if c.SampleInterval <= 0 {
		c.SampleInterval = 2 * time.Second
	}
	if c.SampleHistory <= 0 {
		c.SampleHistory = 450
	}
	if c.MaxProduceBytes == 0 {
		c.MaxProduceBytes = 32 << 20
	}
	if c.Login != nil {
		l := *c.Login
		l.defaults()
		c.Login = &l
	}
}

// Console serves the API and the web front end. Create it with New, mount
// Handler, and Close it before the Kafka cluster it talks to goes away.
type Console struct {
	cfg Config
	log *slog.Logger
	// self is the console's own Kafka identity (ClientOpts alone): every
	// request's without Login, the sampler's. Under Login requests run as
	// their session's principal instead (session.go).
	self     *principal
	sessions sessions
	dtNames  dtNames  // names of the delegation tokens made here (dtokens.go)
	dtLogins dtLogins // delegation tokens being logged in (dtokens.go)
	// loginSlots holds a token per login being checked (session.go).
	loginSlots chan struct{}
	handler    http.Handler
	metrics    *metrics
	stats      *sampler
	part       *partitioner
	hosts      *HostGuard
	// produceBudget bounds the bytes of produce bodies held at once.
	produceBudget *byteBudget

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the sampler and every stream
	closed atomic.Bool

	// groups caches whether the cluster has the consumer group APIs.
	groups struct {
		sync.Mutex
		ok      bool
		checked time.Time
	}

	// life guards goroutine starts against Close: wg.Add happens under it
	// only while closing is false.
	life struct {
		sync.Mutex
		closing  bool
		admitted map[*stream]struct{} // at most cfg.MaxStreams
		open     map[*stream]struct{}
	}
}

// New creates a console. It does not contact the cluster: a broker that
// is down makes requests fail, not New.
func New(cfg Config) (*Console, error) {
	cfg.defaults()
	if len(cfg.Brokers) == 0 {
		return nil, errors.New("console: no seed brokers")
	}
	if cfg.MaxProduceBytes != -1 && cfg.MaxProduceBytes < cfg.MaxBodyBytes {
		return nil, fmt.Errorf("console: produce budget %d bytes: want -1 (no limit) or at least the body limit (%d)", cfg.MaxProduceBytes, cfg.MaxBodyBytes)
	}
	if cfg.Login != nil {
		if _, err := cfg.Login.mechanism("", ""); err != nil {
			return nil, err
		}
	}
	c := &Console{cfg: cfg, log: cfg.Logger, part: &partitioner{}, hosts: NewHostGuard(cfg.ListenAddr, cfg.AllowedHosts)}
	c.sessions.mu.byKey = map[[32]byte]*session{}
	c.loginSlots = make(chan struct{}, maxLoginsInFlight)
	c.produceBudget = newByteBudget(cfg.MaxProduceBytes)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// No RecordDeliveryTimeout: kgo measures it from the record's
	// timestamp, which a request may set in the past. Each record carries
	// its request's context instead.
	self, err := c.newPrincipal("", nil)
	if err != nil {
		c.cancel()
		return nil, err
	}
	c.self = self
	c.metrics = newMetrics(c, cfg.Registerer)
	c.stats = newSampler(c)
	c.handler = c.routes()
	// Under Login the console has no identity of its own the broker
	// would let in: no background sampling (the history stays empty).
	if cfg.Login == nil {
		c.stats.start()
	} else {
		c.startSweeper()
	}
	return c, nil
}

// clientOpts are the options of every client: the seeds and the caller's
// options, then extra.
func (c *Console) clientOpts(extra ...kgo.Opt) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.Brokers...),
		kgo.ClientID("strom-console"),
		kgo.MetadataMinAge(250 * time.Millisecond),
		kgo.DialTimeout(5 * time.Second),
		kgo.RetryTimeout(c.cfg.RequestTimeout),
	}
	opts = append(opts, c.cfg.ClientOpts...)
	return append(opts, extra...)
}

// Handler is the console's HTTP handler: the front end at /, the API
// under /api and /v3. Mount it at the root of a mux; it answers 404 for
// paths it does not know, and 403 to a Host it does not answer to (see
// HostGuard).
func (c *Console) Handler() http.Handler { return c.handler }

// Close ends every stream and background goroutine and closes the Kafka
// clients. It waits for them, at most until ctx is done.
func (c *Console) Close(ctx context.Context) error {
	if c.closed.Swap(true) {
		return nil
	}
	c.life.Lock()
	c.life.closing = true
	c.life.Unlock()
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("console: close: %w", ctx.Err())
	}
	c.sessions.remove(func(*session) bool { return true })
	c.self.end()
	c.self.cl.Close()
	return err
}

// route is one API endpoint; the table drives both the mux and GET /api.
type route struct {
	method, path string
	summary      string
	handle       func(http.ResponseWriter, *http.Request) error
}

func (c *Console) apiRoutes() []route {
	return []route{
		{"GET", "/api/v1/cluster", "Cluster overview: id, controller, brokers, topic and partition counts, records per second now", c.getCluster},
		{"GET", "/api/v1/cluster/status", "Brokers (which is the controller), the metadata quorum (DescribeQuorum: leader, epoch, each voter's log end and lag), under-replicated and offline partitions", c.getClusterStatus},
		{"GET", "/api/v1/brokers", "Brokers with host, port and rack", c.getBrokers},
		{"GET", "/api/v1/topics", "Topics with partitions, record counts, sizes and records per second", c.listTopics},
		{"POST", "/api/v1/topics", `Create a topic: {"name":"t","partitions":3,"replication_factor":1,"configs":{"retention.ms":"86400000"}}`, c.createTopic},
		{"GET", "/api/v1/topics/{topic}", "Describe a topic: partitions with leader, leader epoch, replicas, in-sync and offline replicas, start and end offsets, sizes", c.getTopic},
		{"DELETE", "/api/v1/topics/{topic}", "Delete a topic", c.deleteTopic},
		{"GET", "/api/v1/topics/{topic}/configs", "A topic's configs with their values and sources", c.getTopicConfigs},
		{"PATCH", "/api/v1/topics/{topic}/configs", `Change configs: {"set":{"retention.ms":"3600000"},"delete":["cleanup.policy"]}`, c.patchTopicConfigs},
		{"GET", "/api/v1/topics/{topic}/messages", "A page of records: ?partition=&offset=|timestamp=&order=newest|oldest&limit= plus filters", c.getMessages},
		{"POST", "/api/v1/topics/{topic}/records", `Produce: {"records":[{"key":"k","value":{"a":1},"headers":{"h":"v"},"partition":0}]} or one Confluent v3 record`, c.produce},
		{"GET", "/api/v1/topics/{topic}/stream", "Live records over WebSocket, or SSE with Accept: text/event-stream: ?from=latest|earliest|<offset>|@<unix ms>&partition=&overflow=drop|block plus filters", c.stream},
		{"GET", "/api/v1/topics/{topic}/cleaner", "A compacted topic's log cleaner state per partition (dirty ratio, dirty bytes, last clean time and duration), read from the broker's metrics", c.getTopicCleaner},
		{"GET", "/api/v1/topics/{topic}/producers", "Producers writing to each partition (DescribeProducers): producer id and epoch, last sequence and time, the open transaction's first offset", c.getTopicProducers},
		{"GET", "/api/v1/transactions", "Transactions (ListTransactions + DescribeTransactions): ?state=open (default: Ongoing, PrepareCommit, PrepareAbort)|all|<State,...>; producer id and epoch, state, start, duration, partitions", c.listTransactions},
		{"GET", "/api/v1/groups", "Consumer groups with state, members and total lag", c.listGroups},
		{"GET", "/api/v1/groups/{group}", "Describe a group: members and lag per partition", c.getGroup},
		{"POST", "/api/v1/groups/{group}/reset", `Reset an empty group's offsets: {"topic":"t","partitions":[0],"to":"earliest|latest|<offset>|@<unix ms>","dry_run":false}`, c.resetGroup},
		{"GET", "/api/v1/stats", "Records per second per topic and lag per group over the last minutes (in-process history): ?topic=&group=", c.getStats},
		{"POST", "/v3/clusters/{cluster}/topics/{topic}/records", "Produce one record in Confluent REST Proxy v3's shape", c.produceV3},
		{"GET", "/api/v1/session", "Whether the console needs a login, and who is logged in (with the CSRF token to send in X-CSRF-Token)", c.getSession},
		{"POST", "/api/v1/login", `Log in: {"user":"alice","password":"..."}; the broker checks the password (SASL); sets the session cookie`, c.login},
		{"POST", "/api/v1/logout", "Log out: ends the session and its Kafka client", c.logout},
		{"POST", "/api/v1/tokens", `Create an API token for scripts (Authorization: Bearer <token>), as the logged-in user: {"name":"sensor-1","ttl_seconds":86400}; the token is shown once`, c.createToken},
		{"GET", "/api/v1/tokens", "The logged-in user's API tokens (never the secrets)", c.listTokens},
		{"DELETE", "/api/v1/tokens/{id}", "Revoke an API token", c.deleteToken},
	}
}

// publicRoutes answer without a login: how to log in, and the API's
// index. Everything else under Login needs a session or a token.
var publicRoutes = map[string]bool{
	"GET /api/v1/session": true,
	"POST /api/v1/login":  true,
	"GET /api":            true,
}

func (c *Console) routes() http.Handler {
	mux := http.NewServeMux()
	rs := c.apiRoutes()
	paths := map[string][]string{}
	for _, r := range rs {
		mux.Handle(r.method+" "+r.path, c.api(r.method+" "+r.path, r.handle))
		paths[r.path] = append(paths[r.path], r.method)
	}
	// Other methods on a known path: a JSON 405 instead of the mux's text.
	for path, methods := range paths {
		allow := strings.Join(methods, ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: "method_not_allowed",
				Msg: fmt.Sprintf("%s %s: method not allowed (use %s)", r.Method, r.URL.Path, allow)})
		})
	}
	mux.Handle("GET /api", c.api("GET /api", c.apiIndex))
	mux.Handle("GET /api/{$}", c.api("GET /api", c.apiIndex))
	unknown := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, notFound("not_found", "%s %s: no such endpoint (see GET /api)", r.Method, r.URL.Path))
	}
	mux.HandleFunc("/api/", unknown)
	mux.HandleFunc("/v3/", unknown)
	mux.Handle("/", assetHandler())
	return c.hosts.Wrap(mux)
}

// api wraps an endpoint: closed check, origin check for state-changing
// methods, body limit, timing, panic recovery, and error rendering.
func (c *Console) api(name string, h func(http.ResponseWriter, *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				c.log.Error("console: handler panic", "route", name, "panic", p, "stack", string(debug.Stack()))
				if !sw.wrote {
					writeJSON(sw, http.StatusInternalServerError, map[string]string{"error": "internal error", "code": "internal"})
				}
			}
			c.metrics.observe(name, sw.status, time.Since(start))
		}()
		if c.closed.Load() {
			writeError(sw, &apiError{Status: http.StatusServiceUnavailable, Code: "shutting_down", Msg: "the console is shutting down"})
			return
		}
		changes := r.Method != http.MethodGet && r.Method != http.MethodHead
		if changes && !c.sameOrigin(r) {
			writeError(sw, &apiError{Status: http.StatusForbidden, Code: "cross_origin",
				Msg: fmt.Sprintf("cross-origin %s from %s refused (add it to the allowed origins)", r.Method, r.Header.Get("Origin"))})
			return
		}
		if c.cfg.Login != nil && !publicRoutes[name] {
			x := c.authRequest(r)
			if x == nil {
				writeError(sw, &apiError{Status: http.StatusUnauthorized, Code: "unauthenticated", Msg: "log in first (POST /api/v1/login), or send an API token (Authorization: Bearer ...)"})
				return
			}
			if changes && !csrfOK(x, r) {
				writeError(sw, &apiError{Status: http.StatusForbidden, Code: "csrf",
					Msg: fmt.Sprintf("%s without this session's CSRF token (%s header) refused", r.Method, csrfHeader)})
				return
			}
			r = withSession(r, x)
		}
		r.Body = http.MaxBytesReader(sw, r.Body, c.cfg.MaxBodyBytes)
		if err := h(sw, r); err != nil {
			ae := httpError(err)
			if ae.Status >= 500 {
				c.log.Warn("console: request failed", "route", name, "status", ae.Status, "err", err)
			}
			if sw.wrote {
				return // a stream that already started: nothing to add
			}
			writeError(sw, ae)
		}
	})
}

// sameOrigin reports whether a state-changing request may proceed: no
// Origin header (not a browser, or a same-origin GET-like navigation), the
// console's own origin, or one of the allowed origins. Browsers always
// send Origin on cross-origin POST, PATCH and DELETE.
func (c *Console) sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	return slices.ContainsFunc(c.cfg.AllowedOrigins, func(a string) bool { return strings.EqualFold(strings.TrimRight(a, "/"), o) })
}

// statusWriter remembers the status for metrics and whether anything was
// written. It keeps Flush, Hijack and deadlines reachable through Unwrap.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// requestCtx is the context of an API request's Kafka work: the request's
// own, bounded by RequestTimeout and ended by Close or by the end of the
// session it runs as (logout, expiry).
func (c *Console) requestCtx(r *http.Request) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(r.Context(), c.cfg.RequestTimeout)
	stop := context.AfterFunc(c.who(ctx).ctx, cancel)
	return ctx, func() { stop(); cancel() }
}

// decodeBody decodes a JSON request body into v, strictly: unknown fields
// and trailing data are errors that name what is wrong.
func decodeBody(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") && !strings.HasPrefix(ct, "application/vnd.kafka") {
		return &apiError{Status: http.StatusUnsupportedMediaType, Code: "bad_content_type", Msg: fmt.Sprintf("Content-Type %q: send application/json", ct)}
	}
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return bodyError(err)
	}
	if d.More() {
		return badRequest("bad_json", "request body: more than one JSON value")
	}
	return nil
}

// bodyError explains a JSON decoding error.
func bodyError(err error) error {
	if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return &apiError{Status: http.StatusRequestEntityTooLarge, Code: "body_too_large", Msg: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	}
	if errors.Is(err, io.EOF) {
		return badRequest("bad_json", "request body is empty: send a JSON object")
	}
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		return badRequest("bad_json", "request body is not valid JSON: %v (at byte %d)", se, se.Offset)
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "request body"
		}
		return badRequest("bad_json", "%s: want %s, got %s", field, te.Type, te.Value)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return badRequest("bad_json", "request body is truncated JSON")
	}
	return badRequest("bad_json", "request body: %v", err)
}
