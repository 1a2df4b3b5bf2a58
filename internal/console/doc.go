// Package console is Strom's web console and HTTP API: a JSON REST API
// over topics, messages, consumer groups and brokers, HTTP produce, live
// topic streams over WebSocket or Server-Sent Events, and the embedded
// single-page front end (web/ builds it into dist/).
//
// The console is a Kafka client. Everything it shows or changes goes
// through franz-go (kgo, kadm) to the brokers it was given, so the same
// code serves `strom serve` (the broker hands it its own Kafka address)
// and `strom console --brokers ...` against any Kafka-compatible cluster.
// It never imports the broker's packages (internal/lint keeps that wall).
//
// Files: console.go (Config, Console, the route table, middleware),
// hosts.go (HostGuard: the Host check against DNS rebinding),
// errors.go (the one place Kafka errors become HTTP statuses),
// records.go (record <-> JSON), cluster.go, clusterstatus.go (the cluster
// page: brokers, the metadata quorum from DescribeQuorum, under-replicated
// and offline partitions), transactions.go (ListTransactions +
// DescribeTransactions, DescribeProducers), cleaner.go (a compacted
// topic's cleaner state, read from the broker's metrics), topics.go, messages.go (pages
// of records), produce.go (HTTP produce), produce_v3.go (Confluent REST
// Proxy v3's shape), budget.go (the produce byte budget), stream.go
// (WebSocket and SSE), streamadmit.go (stream limits per console and per
// client, idle streams evicted and timed out), filter.go and filterexpr.go
// (server-side record filters; where expressions with and/or/not, read by
// a recursive-descent parser), stats.go
// (the in-process history of throughput and lag), groups.go, metrics.go,
// assets.go (the embedded bundle), apidoc.go (GET /api), demo.go (the
// sensor generator behind `strom demo`), session.go (Login: sessions,
// the principal each request runs as, CSRF), tokens.go (API tokens).
//
// Concurrency: a Console is safe for concurrent use by the HTTP server. It
// owns one shared kgo client for admin requests and producing; each page
// read and each stream opens a short-lived consuming client of its own, so
// one slow reader never holds up another. Each stream has a fetch goroutine
// and a write goroutine joined by a bounded queue (records and bytes):
// when the client cannot keep up, either the oldest queued records are
// dropped and counted (overflow=drop, the default for live views) or the
// fetch goroutine stops fetching until there is room (overflow=block).
// Either way a slow browser never grows the server's memory. HTTP
// produce is bounded the same way: a request takes its body's share of
// the console-wide produce budget (MaxProduceBytes) before it reads the
// body, waiting in line (at most RequestTimeout, then 503 with
// Retry-After), and decodes the records one at a time, stopping at the
// 10,000-record limit, so a body of tiny records never becomes hundreds
// of megabytes of parsed values. Close ends
// every stream and the sampler; after Close the handler answers 503.
//
// Who may ask: every request whose Host header is not localhost, an IP
// address, the listen address's name or a configured name gets 403
// host_not_allowed, reads included (HostGuard: a DNS-rebinding page is
// same-origin with itself and could read the answers). On top of that,
// state-changing requests and streams from a page of another Origin are
// refused (CSRF).
//
// Login (Config.Login, session.go): without it the console is open and
// every request talks to Kafka through the console's own client (the
// broker's User:ANONYMOUS over PLAINTEXT). With it, every API call but
// GET /api, GET /api/v1/session and POST /api/v1/login needs a session
// cookie or an API token, and runs as that user: a login is checked by
// authenticating to the broker with SASL (PLAIN or SCRAM) as the user,
// and the session keeps that authenticated Kafka client, so the broker's
// ACLs decide every call and the console holds no authorization logic.
// Invariants: a session's client is closed exactly once, when the session
// ends (logout, expiry, eviction, Close), and its requests and streams end
// with it; sessions and tokens are found by the SHA-256 of their secret,
// never kept in clear; at most MaxSessions clients exist, at most
// maxLoginsInFlight logins are checked at once. A state-changing call
// made with a cookie must carry the session's CSRF token (X-CSRF-Token),
// besides the Origin check; a Bearer token needs none (a browser never
// sends it on its own). Under Login the console has no identity of its
// own the broker would accept, so the throughput sampler and the lag
// metrics are off.
//
// Metrics the protocol has no request for (the log cleaner's state) come
// from Config.Metrics: the text of a broker's /metrics, through MetricsURL
// (`strom console --metrics-url`, as `strom topic cleaner` reads it) or
// MetricsGatherer (the broker that serves the console hands it a registry
// of the cleaner's gauges), parsed by internal/cleanermetrics. Nothing
// else is read outside the Kafka protocol. In a cluster those are the
// metrics of one broker: partitions whose logs it does not hold show as
// not reported.
//
// Errors: a user's mistake (bad JSON, unknown topic, offset out of range,
// oversize record, bad filter) is a 4xx with a JSON body
// {"error": "...", "code": "..."}; a Kafka cluster that fails is a 502 or
// 504; 500 means a bug in this package.
package console
