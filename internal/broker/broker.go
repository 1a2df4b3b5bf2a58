// Package broker is Strom's composition root: it opens the cluster state
// on a data directory, starts the Kafka listener and the HTTP listener
// (health, metrics, the web console and its API), and stops them in the
// reverse order.
//
// Start order: cluster (recovery happens here) → group coordinator (replays
// __consumer_offsets) → Kafka listener → HTTP.
// Shutdown order: stop accepting (waiting joins and syncs answer at once) →
// answer in-flight requests → HTTP → group coordinator → cluster close (logs
// sealed, checkpoints and the clean-shutdown marker written). Every
// goroutine started here is stopped by Shutdown.
package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/stromhq/strom/internal/cluster"
	"github.com/stromhq/strom/internal/console"
	"github.com/stromhq/strom/internal/coordinator/group"
	"github.com/stromhq/strom/internal/kafka/handler"
	"github.com/stromhq/strom/internal/kafka/server"
	"github.com/stromhq/strom/internal/metadata"
	"github.com/stromhq/strom/internal/storage/vfs"
)

// Config configures a broker. Zero values take the embedded defaults.
type Config struct {
	DataDir        string // ./data
	KafkaAddr      string // :9092
	AdvertisedAddr string // localhost:<kafka port>
	HTTPAddr       string // :8080; "-" disables the HTTP listener
	// Props are broker configs under their Kafka names (from --config).
	Props  map[string]string
	Logger *slog.Logger
	// FS holds the data directory: every file under DataDir is opened
	// through it (logs, indexes, checkpoints, the metadata store, producer
	// snapshots, __consumer_offsets). Nil is the operating system's. Tests
	// pass a vfs.MemFS to cut power at a chosen moment; DescribeLogDirs
	// still asks the OS for the disk's size (-1 when the path is not there).
	FS vfs.FS
}

// Broker is a running single-node broker.
type Broker struct {
	cfg     Config
	log     *slog.Logger
	cluster *cluster.Cluster
	groups  *group.Coordinator
	kafka   *server.Server
	handler *handler.Handler
	kafkaLn net.Listener
	httpSrv *http.Server
	httpLn  net.Listener
	console *console.Console // nil when HTTP is disabled
	wg      sync.WaitGroup
	serveMu sync.Mutex
	errs    []error
}

// Start opens the data directory and starts serving.
func Start(cfg Config) (*Broker, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = "data"
	}
	if cfg.KafkaAddr == "" {
		cfg.KafkaAddr = ":9092"
	}
	if cfg.HTTPAddr == "" {
		cfg.HTTPAddr = ":8080"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	bc, err := metadata.NewBrokerConfig(cfg.Props)
	if err != nil {
		return nil, err
	}
	scfg, err := kafkaServerConfig(bc)
	if err != nil {
		return nil, err
	}
	scfg.Logger = cfg.Logger
	b := &Broker{cfg: cfg, log: cfg.Logger}
	files, err := raiseFileLimit()
	if err != nil {
		cfg.Logger.Warn("open-file limit unknown; partitions are bounded by max.broker.partitions alone", "err", err)
	}
	b.cluster, err = cluster.Open(cluster.Config{DataDir: cfg.DataDir, FS: cfg.FS, Broker: bc, Logger: cfg.Logger, FileLimit: files})
	if err != nil {
		return nil, err
	}
	b.groups, err = group.Open(group.ClusterConfig(b.cluster, cfg.Logger))
	if err != nil {
		b.cluster.Close()
		return nil, fmt.Errorf("group coordinator: %w", err)
	}
	b.cluster.OnTopicDeleted(b.groups.TopicDeleted)
	b.kafkaLn, err = net.Listen("tcp", cfg.KafkaAddr)
	if err != nil {
		b.groups.Close()
		b.cluster.Close()
		return nil, fmt.Errorf("kafka listener: %w", err)
	}
	host, port, err := advertised(cfg.AdvertisedAddr, b.kafkaLn.Addr())
	if err != nil {
		b.kafkaLn.Close()
		b.groups.Close()
		b.cluster.Close()
		return nil, err
	}
	h := handler.New(b.cluster, handler.Config{AdvertisedHost: host, AdvertisedPort: port, Logger: cfg.Logger, Groups: b.groups})
	b.handler = h
	b.kafka = server.New(scfg, h)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		if err := b.kafka.Serve(b.kafkaLn); err != nil && !errors.Is(err, server.ErrServerClosed) {
			b.recordErr(fmt.Errorf("kafka listener: %w", err))
		}
	}()
	if cfg.HTTPAddr != "-" {
		b.httpLn, err = net.Listen("tcp", cfg.HTTPAddr)
		if err != nil {
			b.Shutdown(context.Background())
			return nil, fmt.Errorf("http listener: %w", err)
		}
		b.httpSrv = &http.Server{Handler: b.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			if err := b.httpSrv.Serve(b.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				b.recordErr(fmt.Errorf("http listener: %w", err))
			}
		}()
	}
	return b, nil
}

// kafkaServerConfig maps the broker settings to the Kafka listener's limits,
// refusing combinations the listener cannot honour.
func kafkaServerConfig(bc *metadata.BrokerConfig) (server.Config, error) {
	maxRequest := bc.Int("socket.request.max.bytes")
	if maxRequest < 1 || maxRequest > math.MaxInt32 {
		return server.Config{}, fmt.Errorf("%w: socket.request.max.bytes=%d: want 1 to %d", metadata.ErrInvalidConfig, maxRequest, math.MaxInt32)
	}
	// A request of the maximum size must fit in the budget.
	queued := bc.Int("queued.max.request.bytes")
	if queued != -1 && queued < maxRequest {
		return server.Config{}, fmt.Errorf("%w: queued.max.request.bytes=%d: want -1 (no limit) or at least socket.request.max.bytes (%d)",
			metadata.ErrInvalidConfig, queued, maxRequest)
	}
	readTimeout := bc.Millis("socket.request.read.timeout.ms")
	if readTimeout <= 0 {
		readTimeout = -1 // none
	}
	return server.Config{
		MaxRequestBytes:       int32(maxRequest),
		MaxQueuedRequestBytes: queued, // -1: the listener's "no limit"
		RequestReadTimeout:    readTimeout,
		MaxConnections:        int(bc.Int("max.connections")),
		MaxConnectionsPerIP:   int(bc.Int("max.connections.per.ip")),
		IdleTimeout:           bc.Millis("connections.max.idle.ms"),
	}, nil
}

func (b *Broker) recordErr(err error) {
	b.serveMu.Lock()
	b.errs = append(b.errs, err)
	b.serveMu.Unlock()
	b.log.Error("listener failed", "err", err)
}

// advertised picks the host and port given to clients: the configured
// address, or localhost at the listener's port.
func advertised(addr string, ln net.Addr) (string, int32, error) {
	_, lport, _ := net.SplitHostPort(ln.String())
	host, port := "localhost", lport
	if addr != "" {
		h, p, err := net.SplitHostPort(addr)
		if err != nil {
			return "", 0, fmt.Errorf("advertised address %q: want host:port", addr)
		}
		host, port = h, p
		if port == "" || port == "0" {
			port = lport
		}
	}
	n, err := strconv.Atoi(port)
	if err != nil || n <= 0 || n > 65535 {
		return "", 0, fmt.Errorf("advertised address %q: bad port", addr)
	}
	return host, int32(n), nil
}

// KafkaAddr is the Kafka listener's address.
func (b *Broker) KafkaAddr() net.Addr { return b.kafkaLn.Addr() }

// HTTPAddr is the HTTP listener's address (nil when disabled).
func (b *Broker) HTTPAddr() net.Addr {
	if b.httpLn == nil {
		return nil
	}
	return b.httpLn.Addr()
}

// KafkaStats returns the Kafka listener's counters: connections, protocol
// errors, panics, the request budget (for tests and tools in this process;
// /metrics exports the same).
func (b *Broker) KafkaStats() server.Stats { return b.kafka.Stats() }

// Cluster exposes the broker's state (for the console and tests).
func (b *Broker) Cluster() *cluster.Cluster { return b.cluster }

// Groups exposes the group coordinator (for the console and tests: group
// states, committed offsets, lag).
func (b *Broker) Groups() *group.Coordinator { return b.groups }

func (b *Broker) httpHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(newCollector(b))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "ok")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	// Go's profiler, for finding where a broker spends its time
	// (go tool pprof http://host:8080/debug/pprof/profile).
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// The console is a Kafka client of this broker, through its own
	// listener, like any other client.
	con, err := console.New(console.Config{Brokers: []string{dialAddr(b.kafkaLn.Addr())}, Registerer: reg, Logger: b.log})
	if err != nil {
		b.log.Error("console disabled", "err", err)
		return mux
	}
	b.console = con
	mux.Handle("/", con.Handler())
	return mux
}

// dialAddr is an address this process can dial to reach a listener:
// loopback when the listener is on every interface.
func dialAddr(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// Shutdown stops the listeners, answers the requests already read, and
// closes the cluster cleanly. It returns the first error met.
func (b *Broker) Shutdown(ctx context.Context) error {
	var first error
	// The console first: its streams are clients of the Kafka listener,
	// and SSE streams would hold the HTTP server's Shutdown open.
	if b.console != nil {
		if err := b.console.Close(ctx); err != nil {
			first = err
		}
	}
	if b.handler != nil {
		b.handler.Stop()
	}
	if b.kafka != nil {
		if err := b.kafka.Shutdown(ctx); err != nil {
			first = err
		}
	}
	if b.httpSrv != nil {
		if err := b.httpSrv.Shutdown(ctx); err != nil && first == nil {
			first = err
		}
	}
	b.wg.Wait()
	if err := b.groups.Close(); err != nil && first == nil {
		first = err
	}
	if err := b.cluster.Close(); err != nil && first == nil {
		first = err
	}
	b.serveMu.Lock()
	defer b.serveMu.Unlock()
	if first == nil && len(b.errs) > 0 {
		first = b.errs[0]
	}
	return first
}
